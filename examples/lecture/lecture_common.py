"""Shared by the lecture scripts: where pictures go, and how they are written."""

import argparse
from pathlib import Path

from layers import Graph


def out_dir(description: str) -> Path:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=str(Path(__file__).with_name("pictures")),
                        help="folder for the .dot and .svg pictures (default: examples/lecture/pictures)")
    path = Path(parser.parse_args().out)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_picture(graph: Graph, folder: Path, name: str) -> None:
    """Write NAME.dot always, and NAME.svg when Graphviz is installed."""
    (folder / f"{name}.dot").write_text(graph.to_dot())
    try:
        graph.render(str(folder / f"{name}.svg"))
        print(f"picture: {folder / name}.svg")
    except RuntimeError as e:
        print(f"picture: {folder / name}.dot ({e})")


def fmt(values) -> str:
    """Numbers to two decimals, as the lecture writes them."""
    return ", ".join(f"{float(v):.2f}" for v in values)

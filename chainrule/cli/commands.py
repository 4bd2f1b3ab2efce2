"""The command lines: ``chainrule train|predict|evaluate|sweep|sample|gradcheck`` and ``python -m solver``.

Each is a thin shell over functions a notebook can call (``chainrule.runs``, ``chainrule.load_run``):
argument parsing, exit codes, one-line errors (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import chainrule
from chainrule import data as datasets
from chainrule import runs, sweeps
from chainrule.cli import gradcheck, launch
from chainrule.cli.shell import OneLineParser, quiet_on_broken_pipe
from chainrule.config import ConfigError, read_config, resolve, self_contained
from chainrule.files import RunLock
from chainrule.loggers.runs import add_artifacts
from chainrule.report import write_json
from chainrule.sweeps.folder import TrialStatus
from chainrule.trained import pictures
from chainrule.trained.evaluation import read_inputs, write_predictions
from chainrule.trained.model import TrainedModel, load_run

ERRORS = (ConfigError, OSError, KeyError, ValueError, TypeError, ImportError)  # OSError: files, disk full
TRAIN_EXAMPLES = """examples:
  {prog} examples/spiral.toml
  {prog} examples/spiral.toml --set optim.lr=0.05 --set solver.epochs=10
  {prog} --resume runs/spiral                        # continue a run (its own config)
  {prog} --resume runs/spiral --set solver.epochs=80 # continue a finished run for more epochs
  {prog} examples/spiral.toml --gradcheck"""


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="path to a .toml or .json config (optional with --resume)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key; the value is parsed as TOML (repeatable)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (interrupted or finished)")
    p.add_argument("--gradcheck", action="store_true",
                   help="gradient-check the whole model (data loss + L2) on a few rows in float64, then exit")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def train(args: argparse.Namespace) -> int:
    if args.gradcheck:
        if args.config is None:
            raise ConfigError("--gradcheck needs a config file")
        return gradcheck.gradcheck_model(args)
    run = runs.setup(args.config, args.set, args.resume)
    try:
        return runs.train(run)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last checkpoint is in {run.run_dir}; continue with: "
              f"chainrule train --resume {run.run_dir}", file=sys.stderr)
        return 130


def predict(args: argparse.Namespace) -> int:
    out = check_out(args.out, Path(args.run_dir) / "predictions.csv", Path(args.run_dir), [Path(args.input)], "--out",
                    RUN_FILES + (EXPORTED,))
    model = load_run(args.run_dir, args.which)
    X, _ = read_inputs(args.input, model.task)
    source = f"input {args.input!r}"  # bad rows are an error naming the file
    write_predictions(out, model.task.prediction_table(model.scores(X, source=source), model.class_names))
    print(f"{len(X)} predictions written to {out}")
    return 0


RUN_FILES = ("checkpoint.npz", "checkpoint.json", "config.toml", "history.csv", "steps.csv", "metrics.json")
EXPORTED = "model.onnx"  # export's own output; predict must not replace it


def check_out(raw: str | None, default: Path, run_dir: Path, inputs: list[Path], option: str,
              protected: tuple[str, ...]) -> Path:
    """The file to write for ``--out raw`` (``default`` without one), or a ConfigError: a name ending in / is a
    folder that must exist (``default``'s name is written in it); a link is written through (the linked file
    gets the new content); anything else that is not a regular file (a folder, a device) is refused; the folder
    must exist (the run's own is checked when the run is loaded); an input or one of the run's ``protected``
    files is refused (replacing the command's own earlier output is fine). What a killed earlier write of the
    same file left behind (``.NAME.*.tmp``) is removed."""
    out = default if raw is None else Path(raw)
    if raw is not None and raw.endswith(("/", os.sep)):
        if not out.is_dir():
            raise ConfigError(f"{option} {raw!r} names a folder (it ends in /), which does not exist")
        out = out / default.name
    if out.is_dir():
        raise ConfigError(f"{option} {str(out)!r} is a folder; give the name of a file to write, or end it with / "
                          f"to write {default.name} in it")
    out = out.resolve() if out.is_symlink() else out
    if out.exists() and not out.is_file():
        raise ConfigError(f"{option} {str(out)!r} is not a regular file (a device, a pipe or a socket); give the "
                          "name of a file to write")
    if not out.parent.is_dir() and out.parent.resolve() != run_dir.resolve():
        raise ConfigError(f"{option} {str(out)!r}: the folder {str(out.parent)!r} does not exist")
    target = out.resolve()
    for path in inputs:
        if path.exists() and target == path.resolve():
            raise ConfigError(f"{option} {str(out)!r} is the input file; write the output somewhere else")
    for name in protected:
        if target == (run_dir / name).resolve():
            raise ConfigError(f"{option} {str(out)!r} is the run's {name}, which the run needs; "
                              "write the output somewhere else")
    if out.parent.is_dir():
        for stale in out.parent.glob(f".{out.name}.*.tmp"):
            stale.unlink(missing_ok=True)
    return out


def evaluation_data(model: TrainedModel, source: str | None) -> tuple[Any, Any, str]:
    """Labelled inputs: the run's own test split (else its validation split), a config's, or a file's."""
    if source is None or source.endswith((".toml", ".json")):
        cfg = model.config if source is None else self_contained(resolve(read_config(source)), Path(source).parent)
        # raw: the model applies the run's own preprocessing
        data = datasets.load(cfg["data"], Path("."), model.task)
        split = "test" if "X_test" in data else "val"
        what, labels = f"the {split} split of {source or 'the run'}", np.asarray(data[f"y_{split}"])
        if "class_names" in data and model.class_names:  # that file's names, numbered as the run numbers them
            texts = [str(data["class_names"][i]) for i in labels.ravel()]
            labels = model.task.targets_from_text(texts, what, model.class_names).reshape(labels.shape)
        return data[f"X_{split}"], labels, what
    X, y = read_inputs(source, model.task, names=model.class_names)
    if y is None:
        raise ValueError(f"--data: {source!r} has no {model.task.target_word} to evaluate against (a csv's column "
                         "'label', or an npz's array y)")
    if y.ndim == 1 and y.dtype.kind not in "iu":  # an npz's float or text labels: read as a csv's column is
        y = model.task.targets_from_text([str(v) for v in y.tolist()], f"--data: {source!r}",
                                         model.class_names or False)
    return X, y, source


def evaluate(args: argparse.Namespace) -> int:
    """The report, and its files in the run folder; refused while another process trains the run (its report
    would describe a checkpoint that is about to change); a read-only folder gets the report, and a note."""
    run_dir = Path(args.run_dir)
    with holding(run_dir):
        model = load_run(args.run_dir, args.which)
        X, y, what = evaluation_data(model, args.data)
        if len(X) == 0:
            raise ValueError(f"evaluate: {what} has no rows to evaluate")
        result = {"data": what, "which": args.which, **model.evaluate(X, y, what)}
        names = model.class_names or []
        for row in result.get("per_class", []) if names else []:
            row["name"] = names[row["class"]]
        written: list[Path] = []
        pictures_written: list[Path] | None = []
        try:  # the files first: a reader that stops early (| head) must not lose them
            write_json(run_dir / "evaluation.json", result)
            written.append(run_dir / "evaluation.json")
            pictures_written = pictures.draw(run_dir, model, X, y, result)
            written += pictures_written or []
        except OSError as e:
            print(f"evaluate: could not write into {args.run_dir} ({e.strerror or e}): the report is printed, not "
                  "saved", file=sys.stderr)
        print(f"{args.which} parameters of {args.run_dir} on {what}\n{model.task.format_report(result)}")
        if written:
            print(f"wrote {', '.join(map(str, written[:-1]))}{' and ' if len(written) > 1 else ''}{written[-1]}")
            add_artifacts(run_dir, written)
        if pictures_written is None:
            print("no pictures: matplotlib is not installed (pip install -e '.[plot]')", file=sys.stderr)
    return 0


@contextlib.contextmanager
def holding(run_dir: Path) -> Iterator[None]:
    """The run's lock while a command writes into it: a ConfigError naming the process that trains it; a
    folder where no lock can be made (read-only) is used without one."""
    try:
        lock = RunLock(run_dir).acquire() if run_dir.is_dir() else None
    except PermissionError:
        lock = None
    except OSError as e:
        if e.errno != errno.EROFS:
            raise
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def sweep(args: argparse.Namespace) -> int:
    try:
        rows = sweeps.sweep(args.config, trials=args.trials, workers=args.workers, address=args.address,
                            resume=args.resume, sets=args.set, verbose=True)
    except KeyboardInterrupt:  # sweeps.sweep has said where the sweep is and how to continue it
        return 130
    ok = [r for r in rows if r["status"] is TrialStatus.OK and r["metric"] is not None]
    if ok:
        best = max(ok, key=lambda r: r["metric"])
        print(f"best trial {best['trial']}: {best['metric']:.4f}  ({len(ok)} of {len(rows)} trials ok)")
    return 0 if ok else 1


def export(args: argparse.Namespace) -> int:
    from chainrule.trained.export import write_onnx

    out = check_out(args.out, Path(args.run_dir) / "model.onnx", Path(args.run_dir), [], "--out", RUN_FILES)
    print(f"wrote {write_onnx(load_run(args.run_dir, args.which), out, args.opset)}")
    add_artifacts(Path(args.run_dir), [out])  # to the run's MLflow run, when it has one
    return 0


def runs_command(args: argparse.Namespace) -> int:
    from chainrule.runs_table import format_table, table

    rows, keys = table(Path(args.dir), args.sort)
    if args.json:
        print(json.dumps({"runs": rows, "differing_keys": keys}, indent=2))
    elif rows:
        print(format_table(rows, keys))
    else:
        print(f"no run folders under {args.dir}", file=sys.stderr)
    return 0


def sample(args: argparse.Namespace) -> int:
    from chainrule.trained.sampling import attention_maps, sampled

    model = load_run(args.run_dir, args.which)
    if args.attention is not None:
        args.attention = check_out(args.attention, Path("attention.png"), Path(args.run_dir), [], "--attention",
                                   RUN_FILES + (EXPORTED,))
        text, maps = attention_maps(model, args.prime)
        if not pictures.write_attention(Path(args.attention), text, maps):
            raise ImportError("--attention needs matplotlib: pip install -e '.[plot]'")
    for piece in sampled(model, args.prime, args.length, args.temperature, args.seed):  # as drawn: Ctrl-C keeps it
        print(piece, end="", flush=True)
    print()
    if args.attention is not None:
        print(f"wrote {args.attention}: {len(maps)} attention layers over {len(text)} characters", file=sys.stderr)
    return 0


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    try:
        return command(args)
    except BrokenPipeError:
        raise  # the reader went away: quiet_on_broken_pipe ends the command
    except ERRORS as e:
        if args.debug:
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


def parser() -> OneLineParser:
    p = OneLineParser(prog="chainrule", description="Train, check and use chainrule networks.",
                      epilog="run 'chainrule COMMAND --help' for a command's options and examples")
    p.add_argument("--version", action="version", version=f"chainrule {chainrule.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter
    t = sub.add_parser("train", help="train from a config, or continue a run", formatter_class=fmt,
                       epilog=TRAIN_EXAMPLES.format(prog="chainrule train"))
    add_train_arguments(t)
    pr = sub.add_parser("predict", help="predict with a trained run", formatter_class=fmt,
                        epilog="examples:\n  chainrule predict runs/digits new.npz --out predictions.csv\n"
                               "  chainrule predict runs/mnist data/mnist --which last")
    pr.add_argument("run_dir", metavar="RUN_DIR")
    pr.add_argument("input", metavar="INPUT", help="npz, csv, MNIST IDX images or folder, CIFAR-10 .bin or folder")
    pr.add_argument("--out", metavar="FILE", help="CSV of index, label and class probabilities, or a regression "
                                                  "run's index and values (default RUN_DIR/predictions.csv)")
    ev = sub.add_parser("evaluate", help="accuracy, per-class metrics and confusion matrix of a run (R², RMSE "
                                         "and MAE of a regression run)",
                        formatter_class=fmt, epilog="examples:\n  chainrule evaluate runs/digits\n"
                                                    "  chainrule evaluate runs/digits --data other.toml\n"
                                                    "  chainrule evaluate runs/digits --data labelled.npz")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--data", metavar="CONFIG_OR_FILE", help="a config (its test split) or a labelled input file; "
                                                              "default: the run's own test split")
    for command in (pr, ev):
        command.add_argument("--which", choices=("best", "last"), default="best",
                             help="the best epoch's parameters (default) or the last ones")
        command.add_argument("--debug", action="store_true", help="show tracebacks")
    add_sweep_export_sample(sub, fmt)
    ru = sub.add_parser("runs", help="a table of the run folders under a folder", formatter_class=fmt,
                        epilog="examples:\n  chainrule runs\n  chainrule runs runs/digits_sweep-sweep --sort best_val\n"
                               "  chainrule runs --json")
    ru.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="where the run folders are (default runs)")
    ru.add_argument("--sort", metavar="KEY", help="a column (run, status, epochs, best_val, test, seconds) or a "
                                                  "config key such as optim.lr")
    ru.add_argument("--json", action="store_true", help="the rows as JSON, each with its whole flattened config")
    ru.add_argument("--debug", action="store_true", help="show tracebacks")
    sub.add_parser("gradcheck", help="gradient-check layers and losses (see 'chainrule gradcheck --help')",
                   add_help=False)
    return p


def add_sweep_export_sample(sub: Any, fmt: type[argparse.HelpFormatter]) -> None:
    """The sweep, export and sample commands and their options."""
    sw = sub.add_parser("sweep", help="a hyperparameter sweep from a config's [sweep] section", formatter_class=fmt,
                        epilog="examples:\n  chainrule sweep examples/digits_sweep.toml\n"
                               "  chainrule sweep examples/digits_sweep.toml --workers 2 --trials 8\n"
                               "  chainrule sweep examples/digits_sweep.toml --address tcp://127.0.0.1:8786\n"
                               "  chainrule sweep --resume runs/digits_sweep-sweep")
    sw.add_argument("config", nargs="?", help="a config with a [sweep] section (optional with --resume)")
    sw.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config key")
    sw.add_argument("--trials", type=int, help="number of trials (random and tpe samplers)")
    sw.add_argument("--workers", type=int, help="trials at once (default: the number of cores)")
    sw.add_argument("--address", help="a Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a local process pool)")
    sw.add_argument("--resume", metavar="SWEEP_DIR", help="continue the sweep in SWEEP_DIR")
    sw.add_argument("--debug", action="store_true", help="show tracebacks")
    ex = sub.add_parser("export", help="a trained run as an ONNX model (standardization included)",
                        formatter_class=fmt, epilog="examples:\n  chainrule export runs/digits\n"
                                                    "  chainrule export runs/digits --which last --out digits.onnx")
    ex.add_argument("run_dir", metavar="RUN_DIR")
    ex.add_argument("--which", choices=("best", "last"), default="best")
    ex.add_argument("--out", metavar="FILE", help="the .onnx file (default RUN_DIR/model.onnx)")
    ex.add_argument("--opset", type=int, default=17, help="the ONNX opset (17 to 21; default 17)")
    ex.add_argument("--debug", action="store_true", help="show tracebacks")
    sa = sub.add_parser("sample", help="text drawn from a trained character model", formatter_class=fmt,
                        epilog="examples:\n  chainrule sample runs/chars\n"
                               "  chainrule sample runs/chars --prime 'The chain rule' --length 300 --temperature 0.7\n"
                               "  chainrule sample runs/chars_gpt --prime 'The chain rule' --attention attention.png")
    sa.add_argument("run_dir", metavar="RUN_DIR")
    sa.add_argument("--prime", default="", help="text the sample starts from (default: one random character)")
    sa.add_argument("--length", type=int, default=200, help="characters to draw (default 200)")
    sa.add_argument("--temperature", type=float, default=1.0, help="below 1: likelier characters (default 1)")
    sa.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    sa.add_argument("--which", choices=("best", "last"), default="best")
    sa.add_argument("--attention", metavar="FILE.png", help="also draw each head's attention weights over the prime")
    sa.add_argument("--debug", action="store_true", help="show tracebacks")


def main(argv: list[str] | None = None) -> int:
    """``chainrule COMMAND ...``"""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gradcheck"]:
        prog = "chainrule gradcheck"
        return one_line_interrupt(prog, lambda: quiet_on_broken_pipe(lambda: gradcheck.main(argv[1:], prog=prog)))

    def command() -> int:
        args = parser().parse_args(argv)
        chosen = {"train": train, "predict": predict, "evaluate": evaluate, "sweep": sweep,
                  "sample": sample, "export": export, "runs": runs_command}[args.command]
        return quiet_on_broken_pipe(lambda: run_command(chosen, args, "chainrule"))

    return one_line_interrupt("chainrule", command)


def solver_main(argv: list[str] | None = None) -> int:
    """``python -m solver CONFIG ...``: the same as ``chainrule train``."""

    def command() -> int:
        p = OneLineParser(prog="python -m solver", description="Train a network from a TOML or JSON config.",
                          epilog=TRAIN_EXAMPLES.format(prog="python -m solver"),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
        add_train_arguments(p)
        args = p.parse_args(argv)
        if args.config is None and args.resume is None:
            p.error("give a config file, or --resume RUN_DIR")
        return quiet_on_broken_pipe(lambda: run_command(train, args, "solver"))

    return one_line_interrupt("solver", command)


def one_line_interrupt(prog: str, command: Callable[[], int]) -> int:
    """Run a command line: Ctrl-C where the command does not handle it itself is one line and status 130."""
    launch.ready()
    try:
        return command()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130

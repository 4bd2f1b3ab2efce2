"""A trained model loaded from its run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chainrule import checkpoint as ckpt
from chainrule.build import build_model, import_modules, model_rng
from chainrule.config import read_config, resolve
from layers import Sequential


def model_from_run(run_dir: str | Path, which: str = "best") -> Sequential:
    """Rebuild a finished run's model from its folder: config.toml, then the checkpoint's best (or last)
    parameters and buffers, in eval mode. Data are read only for their shape."""
    run_dir = Path(run_dir)
    cfg = resolve(read_config(str(run_dir / "config.toml")))
    meta, arrays = ckpt.read_checkpoint(run_dir)
    sample_shape = meta.get("input_shape")
    if sample_shape is None:
        raise ValueError(f"{str(run_dir)!r}: the checkpoint does not record the input shape; retrain to load it")
    import_modules(cfg["model"]["imports"], run_dir)
    sample = np.zeros((1, *sample_shape), dtype=cfg["model"]["dtype"])
    model = build_model(cfg["model"], sample, model_rng(cfg))
    prefixes = {"best": ("best/", "best_buffer/"), "last": ("param/", "buffer/")}[which]
    ckpt.load_arrays("parameters", model.params, arrays, prefixes[0])
    ckpt.load_arrays("buffers", model.buffers, arrays, prefixes[1])
    return model.eval()  # type: ignore[return-value]

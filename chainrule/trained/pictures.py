"""Pictures of a convolutional run: the first layer's filters, and saliency maps of a few test examples.

Saliency is the gradient of the predicted class's score with respect to the raw input, computed with one
backward pass through the network (the layer API gives d score / d input for free), in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chainrule.report import pyplot, save_figure
from chainrule.trained.evaluation import write_confusion_png
from chainrule.trained.model import TrainedModel
from layers import Conv1D, Conv2D, Layer, Sequential


def first_conv(network: Layer) -> Layer | None:
    """The network's first layer when it is a convolution, else None."""
    first = network[0] if isinstance(network, Sequential) and len(network) else network
    return first if isinstance(first, (Conv1D, Conv2D)) else None


def saliency(model: TrainedModel, X: Any) -> tuple[NDArray, NDArray]:
    """The predicted classes of ``X`` and d score[predicted] / d X (raw inputs' shape), one backward pass."""
    x = model.transform(X)
    with model.network.mode(False):
        scores = model.network.forward(x)
        predicted = np.argmax(scores, axis=1)
        dout = np.zeros_like(scores)
        dout[np.arange(len(x)), predicted] = 1
        dx = np.asarray(model.network.backward(dout), dtype=np.float64)
    if model.preprocessing:  # the network saw (X - mean) / std: chain rule back to the raw input
        dx = dx / model.preprocessing["std"]
    return predicted, dx.reshape(np.shape(X)[0], *model.input_shape)


def write_filters(path: Path, conv: Layer) -> bool:
    """filters.png: each filter of a first Conv2D as a small image (RGB when it reads 3 channels, else the
    mean over its channels) on a shared, symmetric colour scale; of a first Conv1D, each filter's taps."""
    plt = pyplot()
    if plt is None:
        return False
    W = np.asarray(conv.params["W"], dtype=np.float64)
    count = W.shape[0]
    cols = min(8, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.4 * rows + 0.6), squeeze=False)
    limit = float(np.abs(W).max()) or 1.0
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= count:
            ax.axis("off")
            continue
        if W.ndim == 4 and W.shape[1] == 3:
            w = W[i].transpose(1, 2, 0)
            ax.imshow((w - w.min()) / (np.ptp(w) or 1.0), interpolation="nearest")
        elif W.ndim == 4:
            ax.imshow(W[i].mean(axis=0), cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        else:
            for c in range(W.shape[1]):
                ax.plot(W[i, c], marker="o", ms=2, lw=1)
            ax.axhline(0, color="gray", lw=0.5)
            ax.set_ylim(-limit, limit)
        ax.set_title(str(i), fontsize=8)
    kind = "weights, blue < 0 < red" if W.ndim == 4 and W.shape[1] != 3 else "taps" if W.ndim == 3 else "RGB"
    fig.suptitle(f"first layer: {count} filters of shape {tuple(W.shape[1:])} ({kind})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True


def write_saliency(path: Path, model: TrainedModel, X: Any, y: Any, count: int = 6) -> bool:
    """saliency.png: for the first ``count`` examples, the input beside |d score / d input| (the largest over
    channels), titled with the true and predicted class."""
    plt = pyplot()
    if plt is None or len(X) == 0:
        return False
    X = np.asarray(X)[:count]
    predicted, grads = saliency(model, X)
    X = X.reshape(len(X), *model.input_shape)
    fig, axes = plt.subplots(2, len(X), figsize=(2.0 * len(X), 4.2), squeeze=False)
    for i in range(len(X)):
        top, bottom = axes[0, i], axes[1, i]
        truth = "" if y is None else f"true {int(np.asarray(y)[i])}, "
        top.set_title(f"{truth}predicted {int(predicted[i])}", fontsize=8)
        heat = np.abs(grads[i]).max(axis=0)
        if X[i].ndim == 3:  # (C, H, W) images
            image = X[i].transpose(1, 2, 0) if X[i].shape[0] == 3 else X[i].mean(axis=0)
            top.imshow(image if image.ndim == 3 else image, cmap=None if image.ndim == 3 else "gray")
            bottom.imshow(heat, cmap="hot")
        else:  # (C, L) sequences
            top.plot(X[i].T, lw=1)
            bottom.plot(heat, color="tab:red", lw=1)
            bottom.set_ylim(bottom=0)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input", fontsize=9)
    axes[1, 0].set_ylabel("|d score / d input|", fontsize=9)
    fig.suptitle("saliency: the gradient of the predicted class's score with respect to the input", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True


def draw(run_dir: Path, model: TrainedModel, X: Any, y: Any, result: dict[str, Any]) -> list[Path] | None:
    """The pictures of ``evaluate`` that the model's task asks for (``Task.pictures``), as NAME.png in
    ``run_dir``: the files written ([] when the task draws none, or a picture does not apply, as filters to
    a net without convolutions), or None without matplotlib."""
    if not model.task.pictures:
        return []
    if pyplot() is None:
        return None
    written = []
    for name in model.task.pictures:
        path = run_dir / f"{name}.png"
        if PICTURES[name](path, model, X, y, result):
            written.append(path)
    return written


def confusion_picture(path: Path, model: TrainedModel, X: Any, y: Any, result: dict[str, Any]) -> bool:
    return write_confusion_png(path, np.array(result["confusion"]))


def filters_picture(path: Path, model: TrainedModel, X: Any, y: Any, result: dict[str, Any]) -> bool:
    conv = first_conv(model.network)
    return conv is not None and write_filters(path, conv)


def saliency_picture(path: Path, model: TrainedModel, X: Any, y: Any, result: dict[str, Any]) -> bool:
    return first_conv(model.network) is not None and write_saliency(path, model, X, y)


#: Each picture a task may ask for, by name: a function (path, model, X, y, report) -> whether it was written.
PICTURES = {"confusion": confusion_picture, "filters": filters_picture, "saliency": saliency_picture}


def write_attention(path: Path, text: str, maps: list[tuple[str, NDArray]]) -> bool:
    """FILE.png: each head's attention weights over ``text``, a panel per head (columns) and attention layer
    (rows); row i of a panel is what character i attended to. False without matplotlib."""
    plt = pyplot()
    if plt is None:
        return False
    heads = max(len(weights) for _, weights in maps)
    size = min(max(2.2, 0.16 * len(text) + 1), 6)
    fig, axes = plt.subplots(len(maps), heads, figsize=(size * heads, size * len(maps)), squeeze=False)
    labels = [repr(c)[1:-1] or " " for c in text]
    for row, (name, weights) in enumerate(maps):
        for head, ax in enumerate(axes[row]):
            if head >= len(weights):
                ax.axis("off")
                continue
            ax.imshow(weights[head], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{name}, head {head}", fontsize=8)
            ticks = range(len(text)) if len(text) <= 40 else []
            ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=6)
            ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=6)
    fig.suptitle("attention weights: row = the character attending, column = the character attended to",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return True

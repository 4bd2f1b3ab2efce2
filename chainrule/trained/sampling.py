"""``chainrule sample``: text drawn from a trained character model, one character at a time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.special import softmax

from chainrule.trained.model import TrainedModel
from layers import MultiHeadAttention


def sample_text(model: TrainedModel, prime: str = "", length: int = 200, temperature: float = 1.0,
                seed: int = 0) -> str:
    """``prime`` followed by ``length`` characters drawn from the model (``sampled``, joined)."""
    return "".join(sampled(model, prime, length, temperature, seed))


def sampled(model: TrainedModel, prime: str = "", length: int = 200, temperature: float = 1.0,
            seed: int = 0) -> Iterator[str]:
    """The prime (or one character drawn uniformly without one), then ``length`` characters, each as soon as it
    is drawn: at each step the model reads the last ``seq_len`` characters (the length it was trained on) from a
    zero state, and the next character is drawn from the softmax of its last scores divided by ``temperature``
    (lower: more likely characters; higher: more varied), with a seeded Generator. Everything is checked before
    the first character: characters the model never saw are a ValueError naming them."""
    if "vocabulary" not in model.preprocessing:
        raise ValueError("chainrule sample: this run is not a character model (its data source is not 'text')")
    if not (isinstance(length, int) and length >= 0):
        raise ValueError(f"--length: expected an integer >= 0, got {length!r}")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"--temperature: expected a positive number, got {temperature!r}")
    vocabulary = [chr(int(c)) for c in model.preprocessing["vocabulary"]]
    window, rng = model.input_shape[0], np.random.default_rng(seed)
    codes = encoder(model, prime) or [int(rng.integers(len(vocabulary)))]
    return drawn(model, vocabulary, codes, window, length, temperature, rng)


def drawn(model: TrainedModel, vocabulary: list[str], codes: list[int], window: int, length: int,
          temperature: float, rng: np.random.Generator) -> Iterator[str]:
    yield "".join(vocabulary[c] for c in codes)
    for _ in range(length):
        scores = model.scores(np.array([codes[-window:]], dtype=np.int64))[0, -1]
        codes.append(int(rng.choice(len(vocabulary), p=softmax(scores.astype(np.float64) / temperature))))
        yield vocabulary[codes[-1]]


def encoder(model: TrainedModel, text: str) -> list[int]:
    """``text`` as the model's character indices; characters it never saw are a ValueError naming them."""
    if "vocabulary" not in model.preprocessing:
        raise ValueError("chainrule sample: this run is not a character model (its data source is not 'text')")
    index = {chr(int(c)): i for i, c in enumerate(model.preprocessing["vocabulary"])}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise ValueError(f"--prime: the model never saw {', '.join(map(repr, unknown))}; it knows "
                         f"{len(index)} characters")
    return [index[c] for c in text]


def attention_maps(model: TrainedModel, prime: str) -> tuple[str, list[tuple[str, np.ndarray]]]:
    """The prime as the model reads it (its last ``seq_len`` characters) and every MultiHeadAttention's weights
    over it, (H, T, T) each, by the layer's name in the network, in order."""
    if not prime:
        raise ValueError("--attention: give the text to draw the weights over with --prime")
    text = prime[-model.input_shape[0]:]
    model.scores(np.array([encoder(model, text)], dtype=np.int64))
    maps = [(name, layer.weights[0]) for name, layer in model.network.named_layers()
            if isinstance(layer, MultiHeadAttention)]
    if not maps:
        raise ValueError("--attention: this model has no MultiHeadAttention layer (a TransformerBlock holds one)")
    return text, maps

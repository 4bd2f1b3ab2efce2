"""Attention and transformers: positional encodings, multi-head self-attention, and the pre-norm transformer
block, each a layer with a caching forward and a backward written gate by gate.

Sequences are batch first, x (N, T, D) with D = ``embed_dim``; heads split D into H blocks of Dh = D / H.
Parameters follow the project's ``x @ W + b`` layout; the docstrings say how they map to PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax

from .activations import GELU
from .base import Array, Layer, as_float_array, check_dout, check_flags, check_sizes
from .dropout import Dropout
from .embedding import TemporalAffine
from .init import float_dtype, init_weight, make_rng
from .normalization import LayerNorm


def check_sequence(layer: Layer, x: Any, embed_dim: int, max_len: int | None = None) -> Array:
    """``x`` as a floating (N, T, embed_dim) array, at most ``max_len`` steps, or an error naming the layer."""
    x = as_float_array(layer, x)
    if x.ndim != 3 or x.shape[2] != embed_dim:
        raise ValueError(f"{layer!r}: expected x of shape (N, T, {embed_dim}), got {x.shape}")
    if max_len is not None and x.shape[1] > max_len:
        raise ValueError(f"{layer!r}: the sequence has {x.shape[1]} steps, more than max_len = {max_len}; "
                         f"build the layer with max_len >= {x.shape[1]} or crop the sequence")
    return x


class PositionalEmbedding(Layer, leaf=True):
    """A learned position vector added to each step: out[:, t] = x[:, t] + P[t], x (N, T, D), T <= max_len.

    Parameter ``P`` (max_len, D), drawn from N(0, 0.02^2) (GPT-2's scale). dP[t] = sum over the batch of
    dout[:, t] for t < T, 0 beyond; dx = dout. Caches T.
    """

    def __init__(self, max_len: int, embed_dim: int, *, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        check_sizes(self, max_len=max_len, embed_dim=embed_dim)
        self.max_len, self.embed_dim = max_len, embed_dim
        dt = float_dtype(dtype, "PositionalEmbedding")
        self.params = {"P": (0.02 * make_rng(rng).standard_normal((max_len, embed_dim))).astype(dt)}
        self.grads = {"P": np.zeros_like(self.params["P"])}
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"PositionalEmbedding(max_len={self.max_len}, embed_dim={self.embed_dim})"

    def forward(self, x: Array) -> Array:
        x = check_sequence(self, x, self.embed_dim, self.max_len)
        self.shape = x.shape
        return x + self.params["P"][:x.shape[1]]

    def backward(self, dout: Array) -> Array:
        shape = self.cached(self.shape)
        check_dout(self, dout, shape)
        dP = np.zeros_like(self.params["P"])
        dP[:shape[1]] = dout.sum(axis=0)
        self.grads["P"] = dP
        return dout.copy()

    @classmethod
    def infer(cls, x: Array) -> dict[str, Any]:
        return {"embed_dim": int(x.shape[-1])}

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(6, 4, rng=rng, dtype=np.float64), (rng.standard_normal((batch, 5, 4)),)


class SinusoidalPositionalEncoding(Layer, leaf=True):
    """The course's fixed table added to each step: out[:, t] = x[:, t] + P[t], with
    P[pos, 2i] = sin(pos / 10000^(2i/D)) and P[pos, 2i+1] = cos(pos / 10000^(2i/D)); no parameters.
    dx = dout. Caches T."""

    def __init__(self, embed_dim: int, max_len: int = 5000) -> None:
        super().__init__()
        check_sizes(self, embed_dim=embed_dim, max_len=max_len)
        self.embed_dim, self.max_len = embed_dim, max_len
        position = np.arange(max_len)[:, None]
        angle = position / 10000.0 ** (np.arange(0, embed_dim, 2) / embed_dim)
        self.table = np.zeros((max_len, embed_dim))
        self.table[:, 0::2] = np.sin(angle)
        self.table[:, 1::2] = np.cos(angle[:, :embed_dim // 2])
        self.shape: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"SinusoidalPositionalEncoding(embed_dim={self.embed_dim}, max_len={self.max_len})"

    def forward(self, x: Array) -> Array:
        x = check_sequence(self, x, self.embed_dim, self.max_len)
        self.shape = x.shape
        return x + self.table[:x.shape[1]].astype(x.dtype, copy=False)

    def backward(self, dout: Array) -> Array:
        check_dout(self, dout, self.cached(self.shape))
        return dout.copy()

    @classmethod
    def infer(cls, x: Array) -> dict[str, Any]:
        return {"embed_dim": int(x.shape[-1])}

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3) -> tuple[Layer, tuple[Array, ...]]:
        return cls(5, 8), (rng.standard_normal((batch, 6, 5)),)


class MultiHeadAttention(Layer, leaf=True):
    """Multi-head self-attention over x (N, T, D) to (N, T, D), the lecture's graph for each head h:

        q, k, v = x Wq_h, x Wk_h, x Wv_h               three products (one, x @ W_qkv + b_qkv, for all)
        s = q k^T / sqrt(Dh)                            a scaled dot product, (N, H, T, T)
        a = softmax(s + mask)                            causal: -inf where a later step would be seen
        c = dropout(a) v                                 a weighted sum of the values, (N, H, T, Dh)
        out = concat_h(c) W_out + b_out

    Parameters: ``W_qkv`` (D, 3D) with its columns in blocks q, k, v and the heads contiguous in each block,
    ``b_qkv`` (3D,), ``W_out`` (D, D), ``b_out`` (D,) (no biases with ``bias=False``): PyTorch's
    ``MultiheadAttention(D, H, batch_first=True)`` has ``in_proj_weight = W_qkv.T`` and
    ``out_proj.weight = W_out.T``. Dropout on the attention weights draws from the layer's own Generator
    (``rng``), in training only. Caches x, q, k, v (N, H, T, Dh), the attention weights a and the dropout mask
    (N, H, T, T each: the memory grows with T^2 per head), and the merged context (N, T, D).
    """

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, dropout: float = 0.0,
                 bias: bool = True, *, rng: np.random.Generator | int | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        check_sizes(self, embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        check_flags(self, causal=causal, bias=bias)
        if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1):
            raise ValueError(f"MultiHeadAttention: dropout must be a number in [0, 1), got {dropout!r}")
        self.embed_dim, self.num_heads, self.causal, self.dropout, self.bias = embed_dim, num_heads, causal, \
            float(dropout), bias
        dt, source = float_dtype(dtype, "MultiHeadAttention"), make_rng(rng)
        D = embed_dim
        self.params = {"W_qkv": init_weight((D, 3 * D), D, D, scheme="xavier", scale=None, rng=source, dtype=dt),
                       "W_out": init_weight((D, D), D, D, scheme="xavier", scale=None, rng=source, dtype=dt)}
        if bias:
            self.params.update(b_qkv=np.zeros(3 * D, dt), b_out=np.zeros(D, dt))
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.rng = np.random.default_rng(source.integers(2**63))
        self.cache: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        extra = "".join([", causal=True" * self.causal, f", dropout={self.dropout:g}" * (self.dropout > 0),
                         ", bias=False" * (not self.bias)])
        return f"MultiHeadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads}{extra})"

    @property
    def weights(self) -> Array:
        """The attention weights of the last forward, (N, H, T, T): row i of a head is what step i attended to."""
        return self.cached(self.cache)[4]

    def split_heads(self, t: Array) -> Array:
        """(N, T, D) -> (N, H, T, Dh)."""
        N, T, _ = t.shape
        return t.reshape(N, T, self.num_heads, self.embed_dim // self.num_heads).transpose(0, 2, 1, 3)

    def forward(self, x: Array) -> Array:
        x = check_sequence(self, x, self.embed_dim)
        if x.dtype != self.params["W_qkv"].dtype:
            raise TypeError(f"{self!r}: x has dtype {x.dtype} but the parameters are {self.params['W_qkv'].dtype}")
        N, T, D = x.shape
        qkv = x @ self.params["W_qkv"]
        if self.bias:
            qkv += self.params["b_qkv"]
        q, k, v = (self.split_heads(qkv[..., i * D:(i + 1) * D]) for i in range(3))
        scores = q @ k.transpose(0, 1, 3, 2) * x.dtype.type(1 / np.sqrt(D // self.num_heads))
        if self.causal:
            scores += causal_mask(T, x.dtype)
        a = softmax(scores, axis=-1).astype(x.dtype, copy=False)
        keep = None
        if self.training and self.dropout > 0:
            keep = (self.rng.random(a.shape, dtype=x.dtype) >= x.dtype.type(self.dropout)) \
                * x.dtype.type(1 / (1 - self.dropout))
        context = ((a if keep is None else a * keep) @ v).transpose(0, 2, 1, 3).reshape(N, T, D)
        self.cache = (x, q, k, v, a, keep, context)
        out = context @ self.params["W_out"]
        return out + self.params["b_out"] if self.bias else out

    def backward(self, dout: Array) -> Array:
        x, q, k, v, a, keep, context = self.cached(self.cache)
        check_dout(self, dout, x.shape)
        N, T, D = x.shape
        rows = dout.reshape(N * T, D)
        self.grads["W_out"] = context.reshape(N * T, D).T @ rows
        dcontext = self.split_heads(dout @ self.params["W_out"].T)  # back through the merge of the heads
        dropped = a if keep is None else a * keep
        dv = dropped.transpose(0, 1, 3, 2) @ dcontext  # the weighted sum, into the values...
        da = dcontext @ v.transpose(0, 1, 3, 2)  # ...and into the weights
        if keep is not None:
            da *= keep
        dscores = a * (da - (da * a).sum(axis=-1, keepdims=True))  # the softmax; masked entries have a = 0
        dscores *= x.dtype.type(1 / np.sqrt(D // self.num_heads))
        dq, dk = dscores @ k, dscores.transpose(0, 1, 3, 2) @ q  # the scaled dot product
        dqkv = np.concatenate([t.transpose(0, 2, 1, 3).reshape(N, T, D) for t in (dq, dk, dv)], axis=-1)
        self.grads["W_qkv"] = x.reshape(N * T, D).T @ dqkv.reshape(N * T, 3 * D)
        if self.bias:
            self.grads["b_qkv"], self.grads["b_out"] = dqkv.sum(axis=(0, 1)), rows.sum(axis=0)
        return dqkv @ self.params["W_qkv"].T

    @classmethod
    def infer(cls, x: Array) -> dict[str, Any]:
        return {"embed_dim": int(x.shape[-1])}

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0: two heads over 8 features with biases; 1: causal; 2: dropout 0.3 on the weights; 3: no
        biases."""
        layer = cls(8, 2, causal=variant == 1, dropout=0.3 if variant == 2 else 0.0, bias=variant != 3, rng=rng,
                    dtype=np.float64)
        for name in ("b_qkv", "b_out"):
            if name in layer.params:
                layer.params[name][:] = 0.5 * rng.standard_normal(layer.params[name].shape)
        return layer, (rng.standard_normal((batch, 5, 8)),)

    variants = 4


def causal_mask(T: int, dtype: Any) -> Array:
    """(T, T): 0 where step j <= i may be seen from step i, -inf above the diagonal."""
    return np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)


class TransformerBlock(Layer):
    """A pre-norm transformer block, a layer made of layers named as GPT's and PyTorch's:

        h = x + attn(ln1(x))
        out = h + fc2(gelu(fc1(ln2(h))))

    ``ln1``, ``ln2``: LayerNorm(D); ``attn``: MultiHeadAttention(D, num_heads, causal, dropout); ``fc1``:
    TemporalAffine(D, mlp_ratio * D); ``gelu``: GELU; ``fc2``: TemporalAffine(mlp_ratio * D, D). With
    ``dropout`` > 0, also ``drop1`` after the attention, ``drop`` after the GELU and ``drop2`` after fc2, as
    PyTorch's ``TransformerEncoderLayer(D, H, dim_feedforward=mlp_ratio*D, dropout, activation="gelu",
    batch_first=True, norm_first=True)`` has them. Backward adds the residual paths' gradients: dh = dout +
    ln2'(fc1'(gelu'(fc2'(dout)))), dx = dh + ln1'(attn'(dh)).
    """

    def __init__(self, embed_dim: int, num_heads: int, mlp_ratio: int = 4, dropout: float = 0.0,
                 causal: bool = False, *, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        check_sizes(self, mlp_ratio=mlp_ratio)
        source, D = make_rng(rng), embed_dim
        self.embed_dim, self.num_heads, self.mlp_ratio, self.dropout, self.causal = embed_dim, num_heads, \
            mlp_ratio, dropout, causal
        self.ln1 = LayerNorm(D, dtype=dtype)
        self.attn = MultiHeadAttention(D, num_heads, causal, dropout, rng=source, dtype=dtype)
        self.ln2 = LayerNorm(D, dtype=dtype)
        self.fc1 = TemporalAffine(D, mlp_ratio * D, rng=source, dtype=dtype)
        self.gelu = GELU()
        self.fc2 = TemporalAffine(mlp_ratio * D, D, rng=source, dtype=dtype)
        drops = [Dropout(dropout, rng=source) if dropout > 0 else None for _ in range(3)]
        self.drop1, self.drop, self.drop2 = drops

    def __repr__(self) -> str:
        extra = "".join([f", mlp_ratio={self.mlp_ratio}" * (self.mlp_ratio != 4),
                         f", dropout={self.dropout:g}" * (self.dropout > 0), ", causal=True" * self.causal])
        return f"TransformerBlock(embed_dim={self.embed_dim}, num_heads={self.num_heads}{extra})"

    def forward(self, x: Array) -> Array:
        h = x + through(self.drop1, self.attn.forward(self.ln1.forward(x)))
        inner = through(self.drop, self.gelu.forward(self.fc1.forward(self.ln2.forward(h))))
        return h + through(self.drop2, self.fc2.forward(inner))

    def backward(self, dout: Array) -> Array:
        dinner = back(self.drop, self.fc2.backward(back(self.drop2, dout)))
        dh = dout + self.ln2.backward(self.fc1.backward(self.gelu.backward(dinner)))
        return dh + self.ln1.backward(self.attn.backward(back(self.drop1, dh)))

    @classmethod
    def infer(cls, x: Array) -> dict[str, Any]:
        return {"embed_dim": int(x.shape[-1])}

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Variant 0: two heads over 8 features, an MLP of 16; 1: causal."""
        block = cls(8, 2, mlp_ratio=2, causal=variant == 1, rng=rng, dtype=np.float64)
        for layer in (block.ln1, block.ln2):
            layer.params["gamma"][:] = 1 + 0.1 * rng.standard_normal(8)
            layer.params["beta"][:] = 0.1 * rng.standard_normal(8)
        return block, (rng.standard_normal((batch, 4, 8)),)

    variants = 2


def through(dropout: Dropout | None, x: Array) -> Array:
    """A dropout's forward, or x itself where the block has none."""
    return x if dropout is None else dropout.forward(x)


def back(dropout: Dropout | None, dout: Array) -> Array:
    """A dropout's backward, or dout itself where the block has none."""
    return dout if dropout is None else dropout.backward(dout)

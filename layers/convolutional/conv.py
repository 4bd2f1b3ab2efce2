"""Convolution over one or two spatial axes: Conv1D on (N, C, L) and Conv2D on (N, C, H, W).

Windows are gathered with strides into one matrix (im2col) and multiplied by the weights in one product
(one per group); backward multiplies back and adds the windows into the input one kernel offset at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..base import Array, Layer, as_float_array, check_dout, check_flags
from ..init import float_dtype, init_weight, make_rng
from ..kernels import compiled
from .windows import Geometry, as_tuple


class ConvND(Layer, register=False):
    """out[n, f] = b[f] + sum over c in f's group and kernel offsets k of W[f, c, k] * xpad[n, c, s * o + d * k].

    x : ndarray (N, C_in, *spatial), floating, the parameters' dtype; out : (N, C_out, *out_spatial) with
    out = (size + 2 padding - dilation (kernel - 1) - 1) // stride + 1 along each axis (PyTorch's rule).
    Parameters: ``W`` (C_out, C_in // groups, *kernel), He initialization by default (fan in C_in // groups
    times the kernel's size), and ``b`` (C_out,) zeros unless ``bias=False``. Local gradient: dW is the
    product of the output gradient with the windows' columns, db the sum of dout over N and positions, dx the
    columns' gradients added back where they were read. Caches the columns: C_in * prod(kernel) *
    prod(out_spatial) values per example. The output is a view in (N, C_out, *out) order of an array laid out
    (C_out, N, *out), as the product gives it.
    """

    variants = 4  # the examples' geometries (EXAMPLES_1D, EXAMPLES_2D)

    nd = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, *, init: str = "he",
                 scale: float | None = None, rng: np.random.Generator | int | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        for key, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")
        check_flags(self, bias=bias)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.geometry = Geometry(as_tuple(kernel_size, self.nd, "kernel_size", name, 1),
                                 as_tuple(stride, self.nd, "stride", name, 1),
                                 as_tuple(padding, self.nd, "padding", name, 0),
                                 as_tuple(dilation, self.nd, "dilation", name, 1))
        kernel = self.geometry.kernel
        dt = float_dtype(dtype, name)
        fan_in = in_channels // groups * int(np.prod(kernel))
        W = init_weight((out_channels, in_channels // groups, *kernel), fan_in, out_channels * int(np.prod(kernel)),
                        scheme=init, scale=scale, rng=make_rng(rng), dtype=dt)
        self.params = {"W": W, **({"b": np.zeros(out_channels, dtype=dt)} if bias else {})}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache: tuple[Array, tuple[int, ...], tuple[int, ...]] | None = None

    def __repr__(self) -> str:
        g = self.geometry
        extra = "".join(f", {k}={v if len(set(v)) > 1 else v[0]}" for k, v, default in (
            ("stride", g.stride, 1), ("padding", g.padding, 0), ("dilation", g.dilation, 1)) if set(v) != {default})
        extra += f", groups={self.groups}" if self.groups != 1 else ""
        kernel = g.kernel if len(set(g.kernel)) > 1 else g.kernel[0]
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={kernel}{extra})"

    def check_input(self, x: Any) -> Array:
        x = as_float_array(self, x)
        W = self.params["W"]
        if x.ndim != 2 + self.nd or x.shape[1] != self.in_channels:
            spatial = ("L",) if self.nd == 1 else ("H", "W")
            raise ValueError(f"{self!r}: expected x of shape (N, {self.in_channels}, {', '.join(spatial)}), "
                             f"got {x.shape}")
        if x.dtype != W.dtype:
            raise TypeError(f"{self!r}: x has dtype {x.dtype} but the parameters are {W.dtype}; "
                            f"build the layer with dtype={x.dtype} or call .astype(np.{x.dtype})")
        return x

    def forward(self, x: Array) -> Array:
        x = self.check_input(x)
        g, G, F = self.geometry, self.groups, self.out_channels
        out_spatial = g.output_shape(self, x.shape[2:])
        padded = g.pad_shape(x.shape)
        kernels = compiled("windows", x.size)
        cols = kernels.columns(x, g, out_spatial) if kernels else g.columns(g.pad(x), out_spatial)
        cols = cols.reshape(G, self.in_channels // G * g.kernel_size, -1)
        out = np.matmul(self.params["W"].reshape(G, F // G, -1), cols).reshape(F, -1)  # (F, N * out positions)
        if "b" in self.params:
            out += self.params["b"][:, None]
        self.cache = (cols, padded, out_spatial)
        return out.reshape(F, x.shape[0], *out_spatial).swapaxes(0, 1)

    def backward(self, dout: Array) -> Array:
        cols, padded, out_spatial = self.cached(self.cache)
        dz = self.output_gradient(dout, padded[0], out_spatial)
        W = self.params["W"].reshape(self.groups, self.out_channels // self.groups, -1)
        g, kernels = self.geometry, compiled("windows", int(np.prod(padded)))
        dcols = np.matmul(W.transpose(0, 2, 1), dz)  # (G, C/G * K, N * out positions)
        dcols = dcols.reshape(self.in_channels, *g.kernel, padded[0], *out_spatial)
        if kernels:
            return kernels.add_columns(dcols, g, g.unpad_shape(padded))
        return g.unpad(g.add_columns(dcols, padded))

    def backward_params(self, dout: Array) -> None:
        cols, padded, out_spatial = self.cached(self.cache)
        self.output_gradient(dout, padded[0], out_spatial)

    def output_gradient(self, dout: Array, N: int, out_spatial: tuple[int, ...]) -> Array:
        """Fill dW (and db) from dout; return dout as (G, F/G, N * out positions) for the input gradient."""
        cols = self.cached(self.cache)[0]
        check_dout(self, dout, (N, self.out_channels, *out_spatial))
        dz = dout.swapaxes(0, 1).reshape(self.groups, self.out_channels // self.groups, -1)
        # cols dz^T, transposed: 10% faster than dz cols^T at the CIFAR-shaped net's second convolution
        self.grads["W"] = np.matmul(cols, dz.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(self.params["W"].shape)
        if "b" in self.params:
            self.grads["b"] = dz.sum(axis=2).reshape(-1)
        return dz


def conv_example(cls: Any, rng: np.random.Generator, batch: int, channels: tuple[int, int],
                 spatial: tuple[int, ...], geometry: tuple) -> tuple[Layer, tuple[Array, ...]]:
    """A float64 convolution of ``geometry`` (kernel, stride, padding, dilation, groups) with a random bias,
    and its input."""
    kernel, stride, padding, dilation, groups = geometry
    layer = cls(*channels, kernel, stride, padding, dilation, groups, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(channels[1])
    return layer, (rng.standard_normal((batch, channels[0], *spatial)),)



class Conv1D(ConvND, leaf=True):
    """One-dimensional convolution on x (N, C_in, L); the arguments, layout and rules of ``ConvND``."""

    nd = 1

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Geometry ``variant`` of ``EXAMPLES_1D`` (strides, paddings, dilations, groups)."""
        return conv_example(cls, rng, batch, (4, 6), (9,), EXAMPLES_1D[variant])


class Conv2D(ConvND, leaf=True):
    """Two-dimensional convolution on x (N, C_in, H, W); sizes are an int or an (H, W) pair. See ``ConvND``."""

    nd = 2

    @classmethod
    def example(cls, rng: np.random.Generator, batch: int = 3, variant: int = 0) -> tuple[Layer, tuple[Array, ...]]:
        """Geometry ``variant`` of ``EXAMPLES_2D`` (strides, paddings, dilations, groups)."""
        return conv_example(cls, rng, batch, (2, 4), (5, 4), EXAMPLES_2D[variant])


#: The examples' geometries, by variant: (kernel_size, stride, padding, dilation, groups).
EXAMPLES_1D = [(3, 1, 0, 1, 1), (3, 2, 1, 2, 2), (1, 1, 0, 1, 1), (4, 3, 2, 1, 2)]
EXAMPLES_2D = [((3, 2), (2, 1), (1, 0), 1, 1), (3, 1, 1, 1, 2), (2, 2, 0, (1, 2), 1), (1, 1, 0, 1, 2)]

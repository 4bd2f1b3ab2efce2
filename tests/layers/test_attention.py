"""Attention and transformers: against PyTorch in float64 (outputs, input gradients, every parameter; without
torch, against PyTorch's stored answers: tests/torch_reference.py), and against values worked by hand."""

import numpy as np
import pytest

from layers import (
    GELU,
    LayerNorm,
    MultiHeadAttention,
    PositionalEmbedding,
    SinusoidalPositionalEncoding,
    Softmax,
    TransformerBlock,
    Transpose,
)
from tests.torch_reference import torch_reference


def torch_grads(call, inputs, dout):
    """PyTorch's output and input gradient for ``dout``, as numpy; ``call`` runs the module on a tensor (its
    parameters' gradients are then the module's own ``.grad``)."""
    import torch

    x = torch.tensor(inputs, requires_grad=True)
    out = call(x)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), x.grad.numpy()


def set_torch(param, value):
    import torch

    with torch.no_grad():
        param.copy_(torch.tensor(np.ascontiguousarray(value)))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_and_softmax_match_pytorch(approximate):
    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((4, 3, 5)) * 3, rng.standard_normal((4, 3, 5))

    def compute(torch):
        arrays = {}
        for i, theirs in enumerate((torch.nn.GELU(approximate=approximate), torch.nn.Softmax(-1), torch.nn.Softmax(1))):
            arrays[f"out{i}"], arrays[f"dx{i}"] = torch_grads(theirs, x, dout)
        return arrays

    theirs = torch_reference(f"gelu_softmax_{approximate}", compute)
    for i, ours in enumerate((GELU(approximate), Softmax(), Softmax(axis=1))):
        np.testing.assert_allclose(ours.forward(x), theirs[f"out{i}"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.backward(dout), theirs[f"dx{i}"], rtol=1e-10, atol=1e-12)


def test_layer_norm_normalizes_the_last_axis_of_any_rank_as_pytorch():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((2, 3, 4, 6)), rng.standard_normal((2, 3, 4, 6))
    ours = LayerNorm(6, dtype=np.float64)
    ours.params["gamma"][:], ours.params["beta"][:] = rng.standard_normal(6), rng.standard_normal(6)

    def compute(torch):
        theirs = torch.nn.LayerNorm(6).double()
        set_torch(theirs.weight, ours.params["gamma"])
        set_torch(theirs.bias, ours.params["beta"])
        out, dx = torch_grads(theirs, x, dout)
        return {"out": out, "dx": dx, "gamma": theirs.weight.grad.numpy(), "beta": theirs.bias.grad.numpy()}

    theirs = torch_reference("layer_norm", compute)
    np.testing.assert_allclose(ours.forward(x), theirs["out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dout), theirs["dx"], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.grads["gamma"], theirs["gamma"], rtol=1e-10)
    np.testing.assert_allclose(ours.grads["beta"], theirs["beta"], rtol=1e-10)


def torch_attention(torch, ours):
    theirs = torch.nn.MultiheadAttention(ours.embed_dim, ours.num_heads, bias=ours.bias, batch_first=True).double()
    set_torch(theirs.in_proj_weight, ours.params["W_qkv"].T)
    set_torch(theirs.out_proj.weight, ours.params["W_out"].T)
    if ours.bias:
        set_torch(theirs.in_proj_bias, ours.params["b_qkv"])
        set_torch(theirs.out_proj.bias, ours.params["b_out"])
    return theirs


@pytest.mark.parametrize("causal, bias", [(False, True), (True, True), (False, False)])
def test_multi_head_attention_matches_pytorch(causal, bias):
    rng = np.random.default_rng(2)
    ours = MultiHeadAttention(12, 3, causal=causal, bias=bias, rng=rng, dtype=np.float64)
    for name in ("b_qkv", "b_out"):
        if name in ours.params:
            ours.params[name][:] = rng.standard_normal(ours.params[name].shape)
    x, dout = rng.standard_normal((2, 7, 12)), rng.standard_normal((2, 7, 12))

    def compute(torch):
        theirs = torch_attention(torch, ours)
        mask = torch.triu(torch.ones(7, 7, dtype=torch.bool), 1) if causal else None
        out, dx = torch_grads(lambda t: theirs(t, t, t, attn_mask=mask, need_weights=False), x, dout)
        return {"out": out, "dx": dx, **{n: p.grad.numpy() for n, p in theirs.named_parameters()}}

    grads = torch_reference(f"attention_causal{int(causal)}_bias{int(bias)}", compute)
    np.testing.assert_allclose(ours.forward(x), grads["out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dout), grads["dx"], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.grads["W_qkv"], grads["in_proj_weight"].T, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.grads["W_out"], grads["out_proj.weight"].T, rtol=1e-9, atol=1e-11)
    if bias:
        np.testing.assert_allclose(ours.grads["b_qkv"], grads["in_proj_bias"], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(ours.grads["b_out"], grads["out_proj.bias"], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("causal", [False, True])
def test_the_transformer_block_matches_pytorchs_pre_norm_encoder_layer(causal):
    rng = np.random.default_rng(3)
    block = TransformerBlock(8, 2, mlp_ratio=3, causal=causal, rng=rng, dtype=np.float64)
    for layer in (block.ln1, block.ln2, block.fc1, block.fc2):
        for name, value in layer.params.items():
            value[:] = rng.standard_normal(value.shape) * (0.3 if name == "W" else 1.0)
    mapping = {"norm1.weight": block.ln1.params["gamma"], "norm1.bias": block.ln1.params["beta"],
               "norm2.weight": block.ln2.params["gamma"], "norm2.bias": block.ln2.params["beta"],
               "linear1.weight": block.fc1.params["W"].T, "linear1.bias": block.fc1.params["b"],
               "linear2.weight": block.fc2.params["W"].T, "linear2.bias": block.fc2.params["b"],
               "self_attn.in_proj_weight": block.attn.params["W_qkv"].T,
               "self_attn.in_proj_bias": block.attn.params["b_qkv"],
               "self_attn.out_proj.weight": block.attn.params["W_out"].T,
               "self_attn.out_proj.bias": block.attn.params["b_out"]}
    x, dout = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 5, 8))

    def compute(torch):
        theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=24, dropout=0.0, activation="gelu",
                                                  batch_first=True, norm_first=True).double()
        parameters = dict(theirs.named_parameters())
        for name, value in mapping.items():
            set_torch(parameters[name], value)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64) if causal else None
        out, dx = torch_grads(lambda t: theirs(t, src_mask=mask, is_causal=causal), x, dout)
        return {"out": out, "dx": dx, **{n: p.grad.numpy() for n, p in theirs.named_parameters()}}

    grads = torch_reference(f"transformer_block_causal{int(causal)}", compute)
    np.testing.assert_allclose(block.forward(x), grads["out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(block.backward(dout), grads["dx"], rtol=1e-9, atol=1e-11)
    ours = block.grads
    for name, key in (("norm1.weight", "ln1.gamma"), ("linear1.bias", "fc1.b"), ("linear2.bias", "fc2.b"),
                      ("self_attn.in_proj_bias", "attn.b_qkv"), ("norm2.bias", "ln2.beta")):
        np.testing.assert_allclose(ours[key], grads[name], rtol=1e-9, atol=1e-11, err_msg=key)
    for name, key in (("linear1.weight", "fc1.W"), ("linear2.weight", "fc2.W"),
                      ("self_attn.in_proj_weight", "attn.W_qkv"), ("self_attn.out_proj.weight", "attn.W_out")):
        np.testing.assert_allclose(ours[key], grads[name].T, rtol=1e-9, atol=1e-11, err_msg=key)
    assert [name for name, _ in block.named_layers()[1:]] == ["ln1", "attn", "ln2", "fc1", "gelu", "fc2"]


def test_one_head_by_hand_and_the_causal_mask():
    """q = k = v = x with one head over 2 features: the weights are softmax(x x^T / sqrt(2)) row by row; causal,
    the first step sees only itself."""
    attn = MultiHeadAttention(2, 1, bias=False, dtype=np.float64)
    attn.params["W_qkv"][:] = np.hstack([np.eye(2)] * 3)
    attn.params["W_out"][:] = np.eye(2)
    x = np.array([[[1.0, 0.0], [0.0, 2.0]]])
    s = x[0] @ x[0].T / np.sqrt(2)  # [[0.707, 0], [0, 2.83]]
    a = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(attn.forward(x)[0], a @ x[0], rtol=1e-14)
    attn.causal = True
    out = attn.forward(x)[0]
    np.testing.assert_allclose(out[0], x[0, 0], rtol=1e-14)  # only itself
    np.testing.assert_allclose(out[1], a[1] @ x[0], rtol=1e-14)  # the last step sees every step


def test_dropout_on_the_weights_is_from_the_layers_generator_and_off_in_eval():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    a, b = (MultiHeadAttention(8, 2, dropout=0.5, rng=7) for _ in range(2))
    out_a, out_b = a.forward(x), b.forward(x)
    assert out_a.dtype == np.float32 and np.array_equal(out_a, out_b)  # the same seed, the same draws
    assert not np.array_equal(out_a, a.forward(x))  # the next draw differs
    a.eval()
    np.testing.assert_array_equal(a.forward(x), MultiHeadAttention(8, 2, rng=7).forward(x))


def test_positional_encodings_the_course_table_and_a_sequence_too_long():
    table = SinusoidalPositionalEncoding(4, max_len=10)
    out = table.forward(np.zeros((1, 3, 4)))[0]
    pos, i = 2, 1  # P[pos, 2i] = sin(pos / 10000^(2i/D)), P[pos, 2i + 1] = cos(the same)
    assert out[pos, 2 * i] == pytest.approx(np.sin(pos / 10000 ** (2 * i / 4)))
    assert out[pos, 2 * i + 1] == pytest.approx(np.cos(pos / 10000 ** (2 * i / 4)))
    np.testing.assert_array_equal(out[0], [0, 1, 0, 1])
    learned = PositionalEmbedding(4, 3, rng=0, dtype=np.float64)
    x = np.ones((2, 3, 3))
    np.testing.assert_array_equal(learned.forward(x), x + learned.params["P"][:3])
    learned.backward(np.ones((2, 3, 3)))
    np.testing.assert_array_equal(learned.grads["P"], [[2] * 3] * 3 + [[0] * 3])
    for layer in (learned, table):
        with pytest.raises(ValueError, match=r"the sequence has 11 steps, more than max_len = (4|10)"):
            layer.forward(np.zeros((1, 11, layer.embed_dim)))


def test_transpose_over_an_examples_axes_and_bad_arguments():
    layer = Transpose([1, 0])
    x = np.arange(12.0).reshape(2, 2, 3)
    np.testing.assert_array_equal(layer.forward(x), x.transpose(0, 2, 1))
    np.testing.assert_array_equal(layer.backward(x.transpose(0, 2, 1)), x)
    with pytest.raises(ValueError, match=r"Transpose: axes must be a permutation of 0..k-1"):
        Transpose([0, 0])
    with pytest.raises(ValueError, match=r"MultiHeadAttention: embed_dim 10 is not divisible by num_heads 3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: causal must be true or false, got 'yes'"):
        MultiHeadAttention(8, 2, causal="yes")
    with pytest.raises(ValueError, match=r"GELU: approximate must be 'none' or 'tanh', got 'erf'"):
        GELU("erf")


def test_float32_stays_float32_through_a_block():
    block = TransformerBlock(8, 2, causal=True, dropout=0.1, rng=0)
    x = np.random.default_rng(5).standard_normal((2, 4, 8)).astype(np.float32)
    out = block.forward(x)
    assert out.dtype == np.float32 and block.backward(np.ones_like(out)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in block.grads.values())

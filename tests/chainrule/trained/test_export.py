"""ONNX export: the exported graph, run by ONNX Runtime on raw inputs, gives TrainedModel's probabilities; every
file passes the full ONNX check; a user layer exports through its hook, or is named in a one-line error."""

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from chainrule import load_run, runs  # noqa: E402
from chainrule.cli import main as chainrule_main  # noqa: E402
from chainrule.trained.model import TrainedModel  # noqa: E402
from layers import Affine, Layer, Sequential  # noqa: E402
from tests.chainrule.trained.test_model import SPIRAL, write  # noqa: E402
from tests.subprocess_runs import ROOT  # noqa: E402

CNN = """
[data]
source = "digits"
standardize = "channel"
[model]
layers = [
  { type = "Conv2D", out_channels = 4, kernel_size = 3, padding = 1 }, { type = "BatchNorm" }, { type = "ELU" },
  { type = "MaxPool2D", kernel_size = 2 },
  { type = "Conv2D", out_channels = 6, kernel_size = 3, stride = 1, dilation = 1, groups = 2 },
  { type = "LeakyReLU" }, { type = "AvgPool2D", kernel_size = 2, padding = 1 },
  { type = "Dropout", p = 0.2 }, { type = "Flatten" }, { type = "Maxout", out_features = 12, pieces = 3 },
  { type = "LayerNorm" }, { type = "Tanh" }, { type = "Affine", out_features = 10 },
]
[optim]
type = "adam"
lr = 3e-3
[solver]
epochs = 2
batch_size = 64
verbose = false
[output]
plot = false
"""
MNIST1D = """
[data]
source = "mnist1d"
[model]
layers = [
  { type = "Conv1D", out_channels = 8, kernel_size = 5, stride = 2, padding = 1 }, { type = "ReLU" },
  { type = "MaxPool1D", kernel_size = 2 }, { type = "AvgPool1D", kernel_size = 3, stride = 1, padding = 1 },
  { type = "GlobalAvgPool" }, { type = "Sigmoid" },
  { type = "Affine", out_features = 10 },
]
[solver]
epochs = 1
verbose = false
[output]
plot = false
"""


def onnx_probabilities(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["scores", "probabilities"]
    return session.run(["probabilities"], {"input": X.astype(np.float32)})[0]


@pytest.mark.parametrize("config", [SPIRAL, CNN, MNIST1D],  # SPIRAL standardizes per feature
                         ids=["spiral-mlp", "digits-cnn", "mnist1d-cnn"])
def test_an_exported_run_gives_the_probabilities_of_the_run_on_raw_inputs(config, tmp_path, capsys):
    run = runs.setup(write(tmp_path, config), [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    assert chainrule_main(["export", str(tmp_path / "r")]) == 0
    assert "model.onnx" in capsys.readouterr().out
    model = load_run(tmp_path / "r")
    X = run.solver.data["X_val"][:17]
    raw = X * model.preprocessing["std"] + model.preprocessing["mean"] if "mean" in model.preprocessing else X
    np.testing.assert_allclose(onnx_probabilities(tmp_path / "r" / "model.onnx", raw), model.predict_proba(raw),
                               rtol=1e-4, atol=1e-6)
    for opset in (18, 21):  # ReduceMax takes its axes as an input from opset 18
        path = model.to_onnx(tmp_path / f"m{opset}.onnx", opset=opset)
        np.testing.assert_allclose(onnx_probabilities(path, raw[:3]), model.predict_proba(raw[:3]), rtol=1e-4,
                                   atol=1e-6)


HOOKED = '''
import numpy as np
from layers import Layer


class OnnxSwish(Layer):
    """out = x * sigmoid(x)"""

    def forward(self, x):
        self.x = x
        return x / (1 + np.exp(-x))

    def backward(self, dout):
        s = 1 / (1 + np.exp(-self.x))
        return dout * (s + self.x * s * (1 - s))

    def to_onnx(self, graph, x):
        return graph.node("Mul", [x, graph.node("Sigmoid", [x])])


class OnnxNoHook(OnnxSwish):
    to_onnx = None
'''


def test_a_user_layer_exports_through_its_hook_and_without_one_is_named(tmp_path, capsys, monkeypatch):
    (tmp_path / "mine.py").write_text(HOOKED)
    monkeypatch.syspath_prepend(str(tmp_path))
    for layer in ("OnnxSwish", "OnnxNoHook"):  # names no other test registers
        text = SPIRAL.replace('{ type = "ReLU" }', f'{{ type = "{layer}" }}')
        text = text.replace("[model]", '[model]\nimports = ["mine"]')
        run = runs.setup(write(tmp_path, text, f"{layer}.toml"), [f"output.dir='{tmp_path / layer}'"])
        assert runs.train(run) == 0
    assert chainrule_main(["export", str(tmp_path / "OnnxSwish")]) == 0
    model = load_run(tmp_path / "OnnxSwish")
    X = np.random.default_rng(0).uniform(-1, 1, (5, 2))
    exported = onnx_probabilities(tmp_path / "OnnxSwish" / "model.onnx", X)
    np.testing.assert_allclose(exported, model.predict_proba(X), rtol=1e-4, atol=1e-6)
    capsys.readouterr()
    assert chainrule_main(["export", str(tmp_path / "OnnxNoHook")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["chainrule: error: export: OnnxNoHook has no ONNX export: define to_onnx(self, graph, x) on it "
                   "(see chainrule/trained/export.py), or use layers that have one"]
    assert not (tmp_path / "OnnxNoHook" / "model.onnx").exists()
    run_config = tmp_path / "OnnxSwish" / "config.toml"
    assert chainrule_main(["export", str(tmp_path / "OnnxSwish"), "--out", str(run_config)]) == 2


RECURRENT = """
[data]
source = "mnist1d"
[model]
layers = [{{ type = "Reshape", shape = [40, 1] }}, {{ type = "{layer}", hidden_size = 8{extra} }}, {last}]
[solver]
epochs = 1
verbose = false
[output]
plot = false
"""


@pytest.mark.parametrize("layer, extra, last", [
    ("GRU", "", '{ type = "Affine" }'),
    ("LSTM", ", return_sequences = true", '{ type = "Flatten" }, { type = "Affine" }'),
    ("RNN", ', nonlinearity = "relu"', '{ type = "Affine" }'),
    ("RNN", ", return_sequences = true", '{ type = "TemporalAffine", out_features = 4 }, { type = "Flatten" }, '
                                        '{ type = "Affine" }'),
])
def test_recurrent_layers_export_to_onnxs_own_operators(layer, extra, last, tmp_path):
    config = RECURRENT.format(layer=layer, extra=extra, last=last)
    run = runs.setup(write(tmp_path, config), [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    model = load_run(tmp_path / "r")
    X = run.solver.data["X_val"][:9]
    path = model.to_onnx(tmp_path / "m.onnx")
    np.testing.assert_allclose(onnx_probabilities(path, X), model.predict_proba(X), rtol=1e-4, atol=1e-6)


def test_a_character_model_exports_with_integer_input(tmp_path):
    from tests.chainrule.trained.test_sampling import CHARS

    config = CHARS.replace('imports = ["slowlayer"]\n', "").replace('{ type = "SlowIdentity" },', "")
    run = runs.setup(write(tmp_path, config.replace("epochs = 10", "epochs = 1")), [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    model = load_run(tmp_path / "r")
    X = run.solver.data["X_val"][:3]
    session = ort.InferenceSession(str(model.to_onnx(tmp_path / "c.onnx")), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"input": X.astype(np.int64)})
    assert probabilities.shape == (3, 20, len(model.preprocessing["vocabulary"]))
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=1e-4, atol=1e-6)


def test_a_graph_of_gates_exports(tmp_path):
    """The lecture's gates wired into a Graph, inside a model, through ONNX Runtime."""
    from chainrule.trained.model import TrainedModel
    from layers import (
        Add,
        AddConst,
        Affine,
        Exp,
        Graph,
        Max,
        Mul,
        Reciprocal,
        ReLU,
        Reshape,
        Scale,
        Sequential,
        Sigmoid,
        Square,
        Sum,
    )

    rng = np.random.default_rng(0)
    graph = Graph(["x"])
    graph.add("h", Affine(2, 6, rng=rng), "x")
    graph.add("a", ReLU(), "h")
    graph.add("s", Sigmoid(), "h")
    graph.add("m", Mul(), "a", "s")
    graph.add("q", Square(), "m")
    graph.add("big", Max(), "m", "q")
    graph.add("e", Exp(), "s")
    graph.add("r", Reciprocal(), "e")
    graph.add("t", Scale(0.5), "r")
    graph.add("u", AddConst(1.0), "t")
    graph.add("sum", Add(), "big", "u")
    graph.add("wide", Affine(6, 12, rng=rng), "sum")
    graph.add("cube", Reshape([6, 2]), "wide")
    graph.add("total", Sum(axis=2), "cube")  # (N, 6, 2) -> (N, 6)
    network = Sequential(graph, Affine(6, 3, rng=rng))
    model = TrainedModel(network, {"model": {"dtype": "float32"}}, {}, (2,))
    X = rng.uniform(-2, 2, (7, 2)).astype(np.float32)
    path = model.to_onnx(tmp_path / "g.onnx")
    np.testing.assert_allclose(onnx_probabilities(path, X), model.predict_proba(X), rtol=1e-4, atol=1e-6)


EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.toml") if p.name != "digits_sweep.toml") + [
    "custom/custom.toml"]
LARGEST = {}  # the largest difference seen, per example: the closing note reports it


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_config_exports_and_agrees_with_onnx_runtime(example, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "custom"))
    run = runs.setup(ROOT / "examples" / example, [f"output.dir='{tmp_path / 'r'}'", "solver.epochs=1",
                                                   "solver.verbose=false", "output.plot=false"])
    assert runs.train(run) == 0
    assert chainrule_main(["export", str(tmp_path / "r")]) == 0
    model = load_run(tmp_path / "r")
    pool = np.concatenate([run.solver.data[k] for k in ("X_train", "X_val")])
    if "mean" in model.preprocessing:  # back to raw inputs: the exported graph standardizes them itself
        pool = pool * model.preprocessing["std"] + model.preprocessing["mean"]
    session = ort.InferenceSession(str(tmp_path / "r" / "model.onnx"), providers=["CPUExecutionProvider"])
    for rows in (1, min(400, len(pool))):
        X = pool[:rows].astype(np.int64 if model.indices else np.float32)
        if "predictions" in model.task.head_names:  # one output, the values
            (values,) = session.run(["predictions"], {"input": X})
            difference = float(np.max(np.abs(values[:, 0] - model.predict(X)) / np.abs(model.predict(X)).max()))
            LARGEST[example] = max(LARGEST.get(example, 0.0), difference)
            assert difference <= 1e-5, (example, rows, difference)
            continue
        (probabilities,) = session.run(["probabilities"], {"input": X})
        expected = model.predict_proba(X)
        difference = float(np.max(np.abs(probabilities - expected)))
        LARGEST[example] = max(LARGEST.get(example, 0.0), difference)
        assert difference <= 1e-5, (example, rows, difference)
        assert np.array_equal(probabilities.argmax(axis=-1), expected.argmax(axis=-1))


def test_a_model_with_every_built_in_layer_exports(tmp_path):
    """Every registered layer (and gate, through the gate graph test above) in one network or another."""
    from chainrule.trained.export import EXPORTERS
    from chainrule.trained.model import TrainedModel
    from layers import REGISTRY, Affine, Conv2D, GroupNorm, Sequential

    built_in = {cls for cls in REGISTRY.values() if cls.__module__.startswith("layers.")}
    assert built_in <= set(EXPORTERS), sorted(c.__name__ for c in built_in - set(EXPORTERS))
    rng = np.random.default_rng(1)
    network = Sequential(Conv2D(2, 6, 3, padding=1, rng=rng), GroupNorm(3, 6), Affine(6 * 5 * 5, 4, rng=rng))
    network[1].params["gamma"][:] = rng.uniform(0.5, 2, 6)
    network[1].params["beta"][:] = rng.standard_normal(6)
    model = TrainedModel(network, {"model": {"dtype": "float32"}}, {}, (2, 5, 5))
    X = rng.standard_normal((300, 2, 5, 5)).astype(np.float32)
    for opset in (17, 18):
        path = model.to_onnx(tmp_path / f"g{opset}.onnx", opset=opset)
        assert np.max(np.abs(onnx_probabilities(path, X) - model.predict_proba(X))) <= 1e-5


def test_attention_layers_export_and_a_character_gpt_takes_any_sequence_length(tmp_path):
    from chainrule import TrainedModel
    from layers import (
        GELU,
        LayerNorm,
        MultiHeadAttention,
        Sequential,
        SinusoidalPositionalEncoding,
        Softmax,
        TemporalAffine,
        TransformerBlock,
        Transpose,
    )

    rng = np.random.default_rng(0)
    network = Sequential(SinusoidalPositionalEncoding(8), MultiHeadAttention(8, 2, rng=rng), GELU("tanh"),
                         TransformerBlock(8, 4, mlp_ratio=2, rng=rng), Transpose([1, 0]), Softmax(axis=1),
                         Transpose([1, 0]), LayerNorm(8), TemporalAffine(8, 3, rng=rng))
    for name, value in network.params.items():
        if name.endswith(("b", "b_qkv", "b_out", "beta")):
            value[...] = 0.1 * rng.standard_normal(value.shape)
    model = TrainedModel(network, {"model": {"dtype": "float32"}, "loss": {"type": "softmax"}}, {}, (5, 8))
    X = rng.standard_normal((4, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(onnx_probabilities(model.to_onnx(tmp_path / "a.onnx"), X), model.predict_proba(X),
                               rtol=1e-4, atol=1e-6)
    run = runs.setup(ROOT / "examples" / "chars_gpt.toml", [f"output.dir='{tmp_path / 'r'}'", "solver.epochs=1",
                                                          "solver.verbose=false", "output.plot=false"])
    assert runs.train(run) == 0 and chainrule_main(["export", str(tmp_path / "r")]) == 0
    gpt = load_run(tmp_path / "r")
    session = ort.InferenceSession(str(tmp_path / "r" / "model.onnx"), providers=["CPUExecutionProvider"])
    for steps in (1, 7, 32):  # shorter than the context it was trained on, and as long
        indices = run.solver.data["X_val"][:3, :steps].astype(np.int64)
        (probabilities,) = session.run(["probabilities"], {"input": indices})
        assert probabilities.shape == (3, steps, gpt.classes)
        np.testing.assert_allclose(probabilities, gpt.predict_proba(indices), rtol=1e-4, atol=1e-6)


class HookReturnsNone(Layer, register=False):
    def forward(self, x):
        return x

    def backward(self, dout):
        return dout

    def to_onnx(self, graph, x):
        graph.node("Relu", [x])  # forgets to return the name


class HookUnknownOp(HookReturnsNone, register=False):
    def to_onnx(self, graph, x):
        return graph.node("Swishy", [x])


class HookRaises(HookReturnsNone, register=False):
    def to_onnx(self, graph, x):
        raise RuntimeError("no export for you\nsecond line")


@pytest.mark.parametrize("layer, words", [
    (HookReturnsNone, "export: HookReturnsNone.to_onnx returned None; it must return the name of its output"),
    (HookUnknownOp, "export: HookUnknownOp.to_onnx used 'Swishy', which ONNX has no operator for"),
    (HookRaises, "export: HookRaises.to_onnx raised RuntimeError: no export for you"),
])
def test_a_user_hook_that_goes_wrong_is_one_line_naming_the_layer(layer, words, tmp_path):
    rng = np.random.default_rng(0)
    model = TrainedModel(Sequential(Affine(2, 3, rng=rng), layer()), {"model": {"dtype": "float32"}}, {}, (2,))
    with pytest.raises(ValueError) as e:
        model.to_onnx(tmp_path / "m.onnx")
    assert str(e.value).startswith(words) and "\n" not in str(e.value)
    assert not (tmp_path / "m.onnx").exists()

"""A config becomes a model: sizes inferred from the input (``Layer.infer``), the model's init where it applies
and a one-line error where it cannot."""

import numpy as np
import pytest

from chainrule.build import build_model
from chainrule.config import ConfigError
from layers import Layer

RNG = np.random.default_rng(0)


class Widen(Layer):
    """out = x * scale (a user layer whose size is called ``width``, not one of the course's names)."""

    def __init__(self, width: int, dtype=np.float32):
        super().__init__()
        self.width = width
        self.params = {"scale": np.ones(width, dtype=dtype)}
        self.grads = {"scale": np.zeros(width, dtype=dtype)}

    @classmethod
    def infer(cls, x):
        return {"width": int(x.shape[-1])}

    def forward(self, x):
        self.x = x
        return x * self.params["scale"]

    def backward(self, dout):
        self.grads["scale"] = (dout * self.x).sum(axis=0)
        return dout * self.params["scale"]


def model(layers, init="", sample=None, classes=None):
    cfg = {"layers": layers, "dtype": "float32", "init": init}
    return build_model(cfg, np.zeros((4, 3, 5)) if sample is None else sample, RNG, classes)


def test_each_layer_takes_its_sizes_from_the_previous_output():
    net = model([{"type": "GRU", "hidden_size": 6, "return_sequences": True}, {"type": "Widen"},
                 {"type": "TemporalAffine", "out_features": 2}, {"type": "Flatten"}, {"type": "Affine"}],
                classes=4)
    gru, widen, temporal, _, affine = net.layers
    assert gru.input_size == 5 and widen.width == 6 and temporal.in_features == 6  # the last axis, not 3 * 6
    assert (affine.in_features, affine.out_features) == (3 * 2, 4)


def test_an_embedding_takes_the_vocabulary_from_the_data_and_the_classes():
    indices = np.array([[0, 4, 2], [1, 1, 3]])
    net = model([{"type": "Embedding", "embedding_dim": 3}], sample=indices, classes=9)
    assert net.layers[0].num_embeddings == 9  # a model whose outputs are fed back may be given any class
    net = model([{"type": "Embedding", "embedding_dim": 3}], sample=indices, classes=2)
    assert net.layers[0].num_embeddings == 5


def test_model_init_reaches_the_layers_that_take_it_and_is_refused_by_one_that_draws_its_own():
    dense = model([{"type": "Flatten"}, {"type": "Affine", "out_features": 400}], init="normal")
    assert 0.008 < dense.layers[1].params["W"].std() < 0.012  # "normal": N(0, 0.01^2), not He's sqrt(2 / 15)
    with pytest.raises(ConfigError, match=r"^model.init = 'xavier': model.layers\[0\] \(LSTM\) draws its weights its "
                                          r"own way and takes no init; remove model.init"):
        model([{"type": "LSTM", "hidden_size": 4}], init="xavier")
    model([{"type": "Dropout"}, {"type": "Flatten"}, {"type": "BatchNorm"}], init="xavier")  # nothing drawn there


def test_a_warmup_then_plateau_schedule_and_adamw_from_a_config(tmp_path):
    from chainrule import runs

    config = tmp_path / "c.toml"
    config.write_text('[data]\nsource = "spiral"\nsamples = 40\n[model]\nlayers = [{ type = "Affine", out_features = '
                      '8 }, { type = "ReLU" }, { type = "Affine" }]\n[optim]\ntype = "adamw"\nlr = 0.01\nbetas = '
                      '[0.9, 0.98]\n[schedule]\ntype = "warmup"\nsteps = 3\nafter = { type = "plateau", patience = 1 }'
                      '\n[solver]\nepochs = 3\nbatch_size = 40\nverbose = false\n[output]\nplot = false\n')
    run = runs.setup(config, [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    solver = run.solver
    assert type(solver.optimizer).__name__ == "AdamW" and solver.optimizer.betas == (0.9, 0.98)
    assert solver.lr_history == pytest.approx([0.02 / 3, 0.01, 0.01])  # two steps an epoch, three to warm up


def test_containers_nest_in_a_config_with_sizes_inferred_through_them():
    net = model([{"type": "Flatten"}, {"type": "Affine", "out_features": 6},
                 {"type": "Residual", "layers": [{"type": "ReLU"}, {"type": "Affine", "out_features": 6}]},
                 {"type": "Residual", "layers": [{"type": "Affine", "out_features": 4}],
                  "shortcut": [{"type": "Affine", "out_features": 4}]},
                 {"type": "Parallel", "branches": [[{"type": "Affine", "out_features": 2}], [{"type": "Tanh"}]]},
                 {"type": "Sequential", "layers": [{"type": "Residual", "layers": [{"type": "Tanh"}]},
                                                   {"type": "Affine"}]}], classes=3)
    _, _, identity, projected, parallel, chain = net.layers
    assert identity.body[1].params["W"].shape == (6, 6) and identity.shortcut is None
    assert projected.body[0].params["W"].shape == projected.shortcut[0].params["W"].shape == (6, 4)
    assert parallel.branches[0][0].params["W"].shape == (4, 2)
    assert chain[1].params["W"].shape == (6, 3)  # 2 + 4 concatenated; the classes fill the last Affine
    assert net.forward(np.zeros((2, 3, 5), np.float32)).shape == (2, 3)


@pytest.mark.parametrize("layers, words", [
    ([{"type": "Affine", "out_features": 4}, {"type": "Residual", "layers": [{"type": "Affine", "out_features": 8}]}],
     "model.layers[1] (Residual) does not accept the previous output of shape (2, 4): Residual: the layers give "
     "(8,) per example but the input (the identity shortcut) gives (4,)"),
    ([{"type": "Graph", "inputs": ["x"]}], "model.layers[0]: a Graph is wired in Python (Graph.add); in a config, "
                                          "join two paths with Residual"),
    ([{"type": "Add"}], "model.layers[0]: Add takes 2 inputs (x, y) but a config's layers take one"),
    ([{"type": "Sequential", "layers": [{"type": "Flatten"}, {"tipe": "ReLU"}]}],
     "model.layers[0].layers[1]: expected a table with a string 'type'"),
    ([{"type": "Parallel", "branches": [[{"type": "Flatten"}], [{"type": "Relu"}]]}],
     "model.layers[0].branches[1][0].type: unknown layer 'Relu'"),
    ([{"type": "Parallel", "branches": [{"type": "Flatten"}, [{"type": "ReLU"}]]}],
     "model.layers[0].branches: expected a list of layer tables (branches: a list of such lists)"),
    ([{"type": "Sequential", "layers": [{"type": "Flatten"}], "bias": True}],
     "unknown key model.layers[0].bias for Sequential; allowed: layers"),
    ([{"type": "Sequential"}], "model.layers[0] (Sequential): "),
])
def test_a_container_that_cannot_be_built_is_one_line_naming_its_place(layers, words):
    with pytest.raises(ConfigError) as e:
        model(layers)
    assert words in str(e.value) and "\n" not in str(e.value)

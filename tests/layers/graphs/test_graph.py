"""Graph: the lecture's examples, fan-out, errors, training, pictures; the elementary gates."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layers import (
    Add,
    AddConst,
    Affine,
    Exp,
    Graph,
    MatMul,
    Mul,
    Reciprocal,
    ReLU,
    Scale,
    Sequential,
    Sigmoid,
    Square,
    Sum,
)
from layers.gradcheck import check_jacobian, gradcheck
from tests.subprocess_runs import ROOT

LECTURE = ROOT / "examples" / "lecture"


def lecture_graph():
    g = Graph(["x", "y", "z"])
    g.add("q", Add(), "x", "y")
    g.add("f", Mul(), "q", "z")
    return g


def test_first_lecture_example_through_graph():
    g = lecture_graph()
    assert float(g.forward(x=np.array(-2.0), y=np.array(5.0), z=np.array(-4.0))) == -12.0
    dx, dy, dz = g.backward()
    assert (float(dx), float(dy), float(dz)) == (-4.0, -4.0, 3.0)
    assert float(g.grad("q")) == -4.0 and float(g.value("q")) == 3.0


def test_declarative_construction_in_any_order():
    g = Graph(["x", "y", "z"], nodes={"f": (Mul(), ("q", "z")), "q": (Add(), ("x", "y"))}, output="f")
    assert list(g.nodes) == ["q", "f"]
    assert float(g.forward(np.array(-2.0), np.array(5.0), np.array(-4.0))) == -12.0


def test_gradients_add_at_branches():
    g = Graph(["x"])
    g.add("sq", Mul(), "x", "x")          # x feeds both inputs: d(x*x)/dx = x + x
    g.add("out", Add(), "sq", "x")        # and a third edge
    g.forward(np.array(3.0))
    assert float(g.backward()) == 2 * 3.0 + 1.0
    assert [float(g.edge_grads[("sq", i)]) for i in (0, 1)] == [3.0, 3.0]


def test_fan_out_graph_passes_gradcheck_and_jacobian(rng):
    g, inputs = Graph.example(rng, batch=2)
    assert sum(src == "x" for _, sources in g.nodes.values() for src in sources) == 3
    report = gradcheck(g, *inputs)
    assert report.passed, str(report)
    check_jacobian(g, *inputs)


def test_unused_input_gets_zero_gradient_and_stale_params_are_zeroed():
    g = Graph(["x", "unused"])
    side = Affine(2, 2, dtype=np.float64)
    side.grads["W"][:] = 7.0
    g.add("side", side, "unused")
    g.add("out", Scale(2.0), "x")
    g.forward(np.ones((1, 2)), np.ones((1, 2)))
    dx, dunused = g.backward()
    np.testing.assert_array_equal(dx, 2.0)
    np.testing.assert_array_equal(dunused, 0.0)
    np.testing.assert_array_equal(side.grads["W"], 0.0)


def test_errors_name_the_node():
    with pytest.raises(ValueError, match=r"Graph: cycle through nodes"):
        Graph(["x"], nodes={"a": (Add(), ("x", "b")), "b": (Mul(), ("a", "x"))})
    with pytest.raises(ValueError, match=r"Graph: node 'a' has unknown input 'w'; known: a, x"):
        Graph(["x"], nodes={"a": (Exp(), ("w",))})
    with pytest.raises(ValueError, match=r"Graph: node 'f' uses 'q' before it is defined; defined so far: x, y"):
        Graph(["x", "y"]).add("f", Mul(), "q", "y")
    g = lecture_graph()
    with pytest.raises(ValueError, match=r"Graph: missing input 'z' at forward; inputs: x, y, z"):
        g.forward(x=np.array(1.0), y=np.array(2.0))
    with pytest.raises(ValueError, match=r"Graph: unknown input 'w'"):
        g.forward(x=np.array(1.0), y=np.array(2.0), z=np.array(1.0), w=np.array(0.0))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        lecture_graph().backward()
    mul = Mul()
    with pytest.raises(ValueError, match="node 'b' reuses the layer instance Mul"):
        Graph(["x"]).add("a", mul, "x", "x").add("b", mul, "a", "x")


def test_error_inside_a_node_gets_a_note():
    g = Graph(["x", "W"])
    g.add("h", MatMul(), "x", "W")
    with pytest.raises(ValueError) as info:
        g.forward(np.ones((2, 3)), np.ones((2, 2)))
    assert "in node 'h' (MatMul()) of the Graph" in info.value.__notes__


def test_graph_trains_inside_the_solver():
    from chainrule.data import spiral, split
    from optim import SGD
    from solver import Solver

    data = {k: v.astype(np.float32) if k.startswith("X") else v
            for k, v in split(*spiral(100, 3, 0.2, 0), 0.2, 0.2, 0).items()}
    rng = np.random.default_rng(0)
    g = Graph(["x"])
    g.add("h", Affine(2, 50, rng=rng), "x").add("r", ReLU(), "h").add("s", Affine(50, 3, rng=rng), "r")
    assert list(g.params) == ["h.W", "h.b", "s.W", "s.b"]
    solver = Solver(g, data, loss="svm", optimizer=SGD(lr=0.1, momentum=0.9), reg=1e-3, batch_size=32,
                    epochs=30, verbose=False)
    assert solver.train()["best_val_acc"] >= 0.9


def test_graph_inside_sequential(rng):
    g = Graph(["x"])
    g.add("a", Sigmoid(), "x").add("b", Mul(), "a", "x")   # x * sigmoid(x)
    net = Sequential(Affine(3, 4, rng=rng, dtype=np.float64), g, Affine(4, 2, rng=rng, dtype=np.float64))
    assert gradcheck(net, rng.standard_normal((2, 3))).passed


def test_dot_of_the_first_example():
    g = lecture_graph()
    before = g.forward(x=np.array(-2.0), y=np.array(5.0), z=np.array(-4.0))
    assert float(before) == -12.0
    dot = g.to_dot()
    assert '"x" -> "q" [label=<<font color="darkgreen">-2.00</font>>]' in dot  # no gradient before backward
    g.backward()
    dot = g.to_dot()
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    edges = dict(re.findall(r'("\w+" -> "\w+") \[label=<(.*)>\];', dot))
    label = '<font color="darkgreen">{}</font><br/><font color="red">{}</font>'.format
    assert edges == {
        '"x" -> "q"': label("-2.00", "-4.00"), '"y" -> "q"': label("5.00", "-4.00"),
        '"q" -> "f"': label("3.00", "-4.00"), '"z" -> "f"': label("-4.00", "3.00"),
        '"f" -> "output"': label("-12.00", "1.00"),
    }
    assert '"q" [label="q\\n+"];' in dot and '"f" [label="f\\n*"];' in dot


def test_dot_summarises_arrays():
    g = Graph(["x"])
    g.add("s", Sum(), "x")
    g.forward(np.arange(6.0).reshape(2, 3))
    assert "(2, 3) mean 2.50 in [0.00, 5.00]" in g.to_dot()


def test_render_without_graphviz_explains(monkeypatch, tmp_path):
    import layers.graphs.dot

    monkeypatch.setitem(sys.modules, "graphviz", None)
    monkeypatch.setattr(layers.graphs.dot.shutil, "which", lambda name: None)
    g = lecture_graph()
    g.forward(np.array(1.0), np.array(2.0), np.array(3.0))
    with pytest.raises(RuntimeError, match="Graphviz's dot program was not found. Install Graphviz"):
        g.render(str(tmp_path / "g.svg"))
    with pytest.raises(ValueError, match=r"expected a \.svg, \.png or \.pdf path"):
        g.render(str(tmp_path / "g.gif"))


def test_render_svg_when_graphviz_is_installed(tmp_path):
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    g = lecture_graph()
    g.forward(np.array(1.0), np.array(2.0), np.array(3.0))
    g.backward()
    text = Path(g.render(str(tmp_path / "g.svg"))).read_text()
    assert "<svg" in text and "9.00" in text and "3.00" in text  # f = (1 + 2) 3, its gradients 3


def run_lecture(script, tmp_path):
    result = subprocess.run([sys.executable, str(LECTURE / script), "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=LECTURE)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / (script[:-3] + ".dot")).exists()
    return result.stdout


def test_lecture_script_add_mul(tmp_path):
    out = run_lecture("add_mul.py", tmp_path)
    assert "f = -12.00" in out and "df/dx, df/dy, df/dz = -4.00, -4.00, 3.00" in out


def test_lecture_script_sigmoid_neuron(tmp_path):
    out = run_lecture("sigmoid_neuron.py", tmp_path)
    for way in ("elementary gates", "one sigmoid gate"):
        assert f"{way}: f = 0.73" in out
        assert f"{way}: dw = (-0.20, -0.39, 0.20)" in out
        assert f"{way}: dx = (0.39, -0.59)" in out
    assert "(1 - s) s = 0.20" in out


def test_lecture_script_l2_matvec(tmp_path):
    out = run_lecture("l2_matvec.py", tmp_path)
    assert "f = 0.116" in out
    assert "dW = [[0.088, 0.176], [0.104, 0.208]]" in out and "dx = [-0.112, 0.636]" in out
    assert "dW equals 2 q x^T: True" in out and "dx equals 2 W^T q: True" in out


def test_lecture_script_two_layer(tmp_path):
    out = run_lecture("two_layer.py", tmp_path)
    for what in ("output", "dx", "dW1", "dW2"):
        assert f"max |graph - sequential| {what}: 0.0e+00" in out


def test_sigmoid_neuron_in_process_matches_closed_form():
    w, x = np.array([2.0, -3.0, -3.0]), np.array([-1.0, -2.0])
    s = 1 / (1 + np.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    g = Graph(["w0", "x0", "w1", "x1", "w2"])
    g.add("a", Mul(), "w0", "x0").add("b", Mul(), "w1", "x1").add("c", Add(), "a", "b").add("d", Add(), "c", "w2")
    g.add("e", Scale(-1.0), "d").add("ex", Exp(), "e").add("p", AddConst(1.0), "ex").add("f", Reciprocal(), "p")
    f = g.forward(*map(np.array, (w[0], x[0], w[1], x[1], w[2])))
    grads = g.backward()
    assert float(f) == pytest.approx(s, rel=1e-15)
    local = (1 - s) * s
    np.testing.assert_allclose([float(v) for v in grads],
                               [x[0] * local, w[0] * local, x[1] * local, w[1] * local, local], rtol=1e-13)


def test_elementary_gates_closed_forms():
    x = np.array([[0.5, -2.0]])
    for gate, out, local in ((Exp(), np.exp(x), np.exp(x)), (Reciprocal(), 1 / x, -1 / x**2),
                             (Square(), x**2, 2 * x), (Scale(3.0), 3 * x, np.full_like(x, 3.0)),
                             (AddConst(-1.0), x - 1, np.ones_like(x))):
        np.testing.assert_allclose(gate.forward(x), out, rtol=1e-15)
        np.testing.assert_allclose(gate.backward(np.ones_like(x)), local, rtol=1e-15)
    s = Sum(axis=1)
    np.testing.assert_array_equal(s.forward(np.arange(6.0).reshape(2, 3)), [3.0, 12.0])
    np.testing.assert_array_equal(s.backward(np.array([1.0, 2.0])), [[1.0] * 3, [2.0] * 3])


def test_matmul_vector_forms():
    W, x = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([5.0, 6.0])
    gate = MatMul()
    np.testing.assert_array_equal(gate.forward(W, x), W @ x)
    dW, dx = gate.backward(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(dW, np.outer([1.0, -1.0], x))
    np.testing.assert_array_equal(dx, W.T @ np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"MatMul\(\): expected x of shape \(N, K\).*got \(2, 2\) and \(3,\)"):
        gate.forward(W, np.ones(3))

"""Character models: the text source, a recurrent run killed and resumed, and ``chainrule sample``."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import softmax

from chainrule import load_run
from chainrule.data import load_text
from chainrule.trained.sampling import sample_text
from tests.subprocess_runs import ROOT, USER_ENV, assert_same_checkpoint_arrays, popen, run_killed_and_resumed

TEXT = ROOT / "examples" / "text" / "chain_rule.txt"
CHARS = f"""
[data]
source = "text"
path = "{TEXT}"
seq_len = 20
val_fraction = 0.2
test_fraction = 0.0
[model]
imports = ["slowlayer"]
layers = [{{ type = "Embedding", embedding_dim = 8 }}, {{ type = "SlowIdentity" }},
          {{ type = "LSTM", hidden_size = 16, return_sequences = true }}, {{ type = "TemporalAffine" }}]
[loss]
type = "softmax"
[optim]
type = "adam"
lr = 1e-2
clip_norm = 1.0
[solver]
epochs = 10
batch_size = 32
verbose = false
[output]
plot = false
checkpoint_seconds = 0.0
"""


def test_a_text_becomes_sequences_labelled_with_their_next_characters(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcabcabca\u00e9bc", encoding="utf-8")
    X, y, vocabulary = load_text(str(path), 3)
    assert "".join(map(chr, vocabulary)) == "abc\u00e9"
    decode = lambda codes: "".join(chr(vocabulary[c]) for c in codes)  # noqa: E731
    assert [decode(r) for r in X] == ["abc", "abc", "abc", "a\u00e9b"] and [decode(r) for r in y] == [
        "bca", "bca", "bca", "\u00e9bc"]
    path.write_bytes(b"caf\xe9 " * 20)
    with pytest.raises(ValueError, match=r"t.txt' is not UTF-8 text \(byte 3\)"):
        load_text(str(path), 3)
    path.write_text("short")
    with pytest.raises(ValueError, match=r"has 5 characters, too few for 3 sequences of data.seq_len = 3"):
        load_text(str(path), 3)


@pytest.mark.slow
def test_a_character_run_is_killed_resumed_bit_identical_and_samples(tmp_path):
    cfg = tmp_path / "chars.toml"
    cfg.write_text(CHARS)
    full, killed = run_killed_and_resumed(cfg, tmp_path, epochs=10)
    files = assert_same_checkpoint_arrays(full, killed)
    assert {"param/2.Wx", "param/2.Wh", "param/0.W", "pre/vocabulary"} <= set(files)
    sys.path.insert(0, str(ROOT / "tests" / "userlayers"))
    a, b = load_run(full), load_run(killed)
    X = np.array([[1, 2, 3, 4]])
    np.testing.assert_array_equal(a.scores(X), b.scores(X))
    text = sample_text(a, "The chain", length=40, seed=3)
    assert text.startswith("The chain") and len(text) == 49 and text == sample_text(b, "The chain", 40, seed=3)
    assert sample_text(a, "The", 40, seed=4) != sample_text(a, "The", 40, seed=5)
    result = subprocess.run([sys.executable, "-m", "chainrule", "sample", str(full), "--prime", "A gate",
                             "--length", "30", "--temperature", "0.5"], capture_output=True, text=True, env=USER_ENV)
    assert result.returncode == 0 and result.stdout.startswith("A gate") and len(result.stdout.strip()) >= 30
    bad = subprocess.run([sys.executable, "-m", "chainrule", "sample", str(full), "--prime", "\u00df"],
                         capture_output=True, text=True, env=USER_ENV)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"chainrule: error: --prime: the model never saw '\u00df'; it knows {len(a.preprocessing['vocabulary'])} "
        "characters"]


def test_sample_refuses_a_run_that_is_not_a_character_model(tmp_path):
    from tests.chainrule.trained.test_model import trained

    run = trained(tmp_path)
    with pytest.raises(ValueError, match="this run is not a character model"):
        sample_text(load_run(run.run_dir))


def test_a_character_run_evaluates_each_step_as_an_example(tmp_path, capsys):
    import json

    from chainrule import runs
    from chainrule.cli import main as chainrule_main

    cfg = tmp_path / "c.toml"
    cfg.write_text(CHARS.replace('imports = ["slowlayer"]\n', "").replace('{ type = "SlowIdentity" },', "")
                   .replace("epochs = 10", "epochs = 2"))
    run = runs.setup(cfg, [f"output.dir='{tmp_path / 'r'}'"])
    assert runs.train(run) == 0
    assert chainrule_main(["evaluate", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "evaluation.json").read_text())
    assert report["examples"] == run.solver.data["y_val"].size  # every step of every validation sequence
    assert load_run(tmp_path / "r").predict(run.solver.data["X_val"][:2]).shape == (2, 20)
    X = run.solver.data["X_val"][:2]
    np.savez(tmp_path / "seq.npz", X=X)
    assert chainrule_main(["predict", str(tmp_path / "r"), str(tmp_path / "seq.npz")]) == 0  # a row per step
    with open(tmp_path / "r" / "predictions.csv", newline="") as f:
        rows = list(csv.reader(f))
    scores = load_run(tmp_path / "r").scores(X)
    assert rows[0][:3] == ["index", "step", "label"] and len(rows[0]) == 3 + scores.shape[-1]
    assert [[int(r[0]), int(r[1]), int(r[2])] for r in rows[1:]] == [
        [i, t, int(scores[i, t].argmax())] for i in range(2) for t in range(20)]
    np.testing.assert_allclose([float(p) for p in rows[1][3:]], softmax(scores[0, 0]), rtol=1e-5)


def test_a_character_gpt_samples_and_draws_its_attention_over_the_last_context_of_the_prime(tmp_path, capsys):
    from chainrule import runs
    from chainrule.cli import main as chainrule_main
    from chainrule.trained.sampling import attention_maps

    run = runs.setup(ROOT / "examples" / "chars_gpt.toml", [f"output.dir='{tmp_path / 'r'}'", "solver.epochs=1",
                                                          "solver.verbose=false", "output.plot=false"])
    assert runs.train(run) == 0
    model = load_run(tmp_path / "r")
    prime = "The chain rule multiplies the local gradients along every path."  # longer than the 32 of the context
    text, maps = attention_maps(model, prime)
    assert text == prime[-32:] and [name for name, _ in maps] == ["2.attn", "3.attn"]
    for _, weights in maps:
        assert weights.shape == (4, 32, 32)
        np.testing.assert_allclose(weights.sum(axis=-1), 1, rtol=1e-5)
        assert not np.triu(weights, k=1).any()  # causal: no step attends to a later one
    sampled = sample_text(model, prime, 5, seed=0)
    assert sampled.startswith(prime) and len(sampled) == len(prime) + 5
    pytest.importorskip("matplotlib")
    capsys.readouterr()
    picture = tmp_path / "attention.png"
    assert chainrule_main(["sample", str(tmp_path / "r"), "--prime", prime, "--length", "3", "--attention",
                           str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().err.strip() == f"wrote {picture}: 2 attention layers over 32 characters"
    assert chainrule_main(["sample", str(tmp_path / "r"), "--attention", str(picture)]) == 2
    assert capsys.readouterr().err.strip().endswith("--attention: give the text to draw the weights over with --prime")
    # the text comes as it is drawn: Ctrl-C in a long sample keeps what was printed
    import signal
    import time

    proc = popen([sys.executable, "-m", "chainrule", "sample", tmp_path / "r", "--prime", "The chain", "--length",
                  "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    first = proc.stdout.read(12)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert first.startswith(b"The chain") and proc.returncode == 130, (first, err)
    assert err.decode().strip().splitlines() == ["chainrule: interrupted"]

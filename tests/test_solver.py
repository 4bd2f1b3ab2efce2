"""The Solver's step by hand, training behaviour, determinism and divergence."""

import re

import numpy as np
import pytest

from chainrule.data import spiral, split
from layers import Affine, ReLU, Sequential
from losses import SVMLoss
from optim import SGD
from solver import Solver, Stop


def spiral_data(dtype=np.float32):
    data = split(*spiral(100, 3, 0.2, 0), 0.2, 0.2, 0)
    return {k: v.astype(dtype) if k.startswith("X") else v for k, v in data.items()}


def two_layer(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return Sequential(Affine(2, 50, rng=rng, dtype=dtype), ReLU(), Affine(50, 3, rng=rng, dtype=dtype))


def test_step_matches_hand_computation():
    model = Affine(2, 3, dtype=np.float64)
    W0 = np.array([[0.1, -0.2, 0.3], [0.4, 0.0, -0.1]])
    model.params["W"][:] = W0
    X = np.array([[1.0, 2.0], [-1.0, 0.5]])
    y = np.array([0, 2])
    data = {"X_train": X, "y_train": y, "X_val": X, "y_val": y}
    reg, lr = 0.1, 0.5
    solver = Solver(model, data, loss=SVMLoss(), optimizer=SGD(lr=lr), reg=reg, verbose=False)
    loss = solver.step(X, y)
    # scores: row 0 = [0.9, -0.2, 0.1] (y=0): margins -0.1, 0.2 -> 0, 0.2
    #         row 1 = [0.1, 0.2, -0.35] (y=2): margins 1.45, 1.55
    data_loss = (0.2 + 1.45 + 1.55) / 2
    penalty = reg * np.sum(W0**2)
    assert loss == pytest.approx(data_loss + penalty, rel=1e-12)
    dscores = np.array([[-1.0, 0.0, 1.0], [1.0, 1.0, -2.0]]) / 2
    dW = X.T @ dscores + 2 * reg * W0
    np.testing.assert_allclose(model.params["W"], W0 - lr * dW, rtol=1e-12)
    np.testing.assert_allclose(model.params["b"], -lr * dscores.sum(0), rtol=1e-12)


def test_training_learns_spiral_and_keeps_float32():
    model = two_layer()
    solver = Solver(model, spiral_data(), loss="svm", optimizer=SGD(lr=0.1, momentum=0.9), reg=1e-3,
                    batch_size=32, epochs=30, verbose=False)
    metrics = solver.train()
    assert metrics["best_val_acc"] >= 0.9
    assert metrics["test_acc"] >= 0.85
    assert len(solver.val_acc_history) == 30 and len(solver.loss_history) == 30 * solver.steps_per_epoch
    assert solver.loss_history[-1] < solver.loss_history[0]
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert solver.check_accuracy(solver.data["X_val"], solver.data["y_val"]) == metrics["best_val_acc"]


def test_same_seed_gives_bit_identical_results():
    runs = []
    for _ in range(2):
        solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=0.1, momentum=0.9), epochs=3, verbose=False)
        solver.train()
        runs.append(solver)
    a, b = runs
    assert a.loss_history == b.loss_history and a.val_acc_history == b.val_acc_history
    for key in a.model.params:
        np.testing.assert_array_equal(a.model.params[key], b.model.params[key])
    c = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=0.1, momentum=0.9), epochs=3, seed=1, verbose=False)
    c.train()
    assert c.loss_history != a.loss_history


def test_non_finite_loss_stops_and_keeps_best_params():
    solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=1e4), reg=1.0, epochs=5, verbose=False)
    metrics = solver.train()
    assert "try a lower learning rate" in metrics["stop_reason"]
    assert metrics["stop_reason"].startswith("loss became")
    epoch = int(re.search(r"at epoch (\d+), iteration \d+", metrics["stop_reason"]).group(1))
    assert solver.epoch == epoch - 1 and not np.isfinite(solver.loss_history[-1])
    assert all(np.isfinite(p).all() for p in solver.model.params.values())


def test_early_stopping_with_patience():
    solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=1e-9), epochs=50, patience=3, verbose=False)
    metrics = solver.train()
    assert metrics["epochs_run"] < 50
    assert metrics["stop_reason"] == "early stop: no better validation accuracy for 3 epochs"


def test_solver_rejects_unknown_arguments_and_bad_data():
    data = spiral_data()
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        Solver(two_layer(), data, learning_rate=0.1)
    with pytest.raises(KeyError, match=r"unknown keys \['X_tst'\]"):
        Solver(two_layer(), {**data, "X_tst": data["X_val"]})
    with pytest.raises(KeyError, match="missing y_val"):
        Solver(two_layer(), {k: v for k, v in data.items() if k != "y_val"})
    with pytest.raises(ValueError, match="X_train has 180 rows but y_train has 179"):
        Solver(two_layer(), {**data, "y_train": data["y_train"][:-1]})
    with pytest.raises(KeyError, match="unknown optimizer 'sgdd'; did you mean 'sgd'"):
        Solver(two_layer(), data, optimizer="sgdd")


def test_predict_in_batches_matches_one_pass():
    solver = Solver(two_layer(), spiral_data(), verbose=False)
    X = solver.data["X_train"]
    np.testing.assert_array_equal(solver.predict(X, batch_size=7), np.argmax(solver.model.forward(X), axis=1))


def test_labels_out_of_range_are_caught_when_the_solver_is_made():
    data = spiral_data()
    data["y_val"] = data["y_val"].copy()
    data["y_val"][3] = 5
    with pytest.raises(ValueError, match=r"y_val has labels in \[0, 5\], but the model gives 3 scores"):
        Solver(two_layer(), data, verbose=False)


def test_direct_step_still_checks_labels():
    solver = Solver(two_layer(), spiral_data(), verbose=False)
    X = solver.data["X_train"][:4]
    with pytest.raises(ValueError, match=r"label -1 is out of range for 3 classes"):
        solver.step(X, np.array([0, 1, -1, 2]))


def threads_of(solver):
    from optim.threads import blas_threads

    return blas_threads(solver.threads, solver.model, solver.batch_size)


def blas_threads_now():
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


@pytest.mark.parametrize("threads", [1, "auto"])
def test_the_thread_setting_is_applied_during_training_and_restored(threads):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        seen = []
        data = {k: v.astype(np.float32) if k.startswith("X") else v
                for k, v in split(*spiral(50, 3), val_fraction=0.2, test_fraction=0.0, seed=0).items()}
        model = Sequential(Affine(2, 8, rng=0), ReLU(), Affine(8, 3, rng=1))
        solver = Solver(model, data, epochs=2, batch_size=20, verbose=False, threads=threads)
        solver.train(on_epoch_end=lambda s: seen.append(blas_threads_now()))
        assert seen == [1, 1]  # tiny products: "auto" picks one thread
        assert blas_threads_now() == 2


def test_auto_threads_follow_the_largest_product_and_never_exceed_the_limit():
    from threadpoolctl import threadpool_limits

    from optim.threads import AUTO_MIN_FLOPS, largest_matmul_flops

    data = {"X_train": np.zeros((4, 784), np.float32), "y_train": np.zeros(4, int),
            "X_val": np.zeros((2, 784), np.float32), "y_val": np.zeros(2, int)}
    big = Sequential(Affine(784, 512, rng=0), ReLU(), Affine(512, 10, rng=1))
    assert largest_matmul_flops(big, 128) == 2 * 128 * 784 * 512 >= AUTO_MIN_FLOPS
    with threadpool_limits(limits=2, user_api="blas"):
        assert threads_of(Solver(big, data, batch_size=128, verbose=False)) == 2
        assert threads_of(Solver(big, data, batch_size=8, verbose=False)) == 1  # 6.4 MFLOP
        assert threads_of(Solver(big, data, batch_size=128, verbose=False, threads=5)) == 2
    with threadpool_limits(limits=1, user_api="blas"):  # a sweep worker's limit holds
        assert threads_of(Solver(big, data, batch_size=128, verbose=False)) == 1
    with pytest.raises(ValueError, match="Solver: threads must be 'auto' or an integer >= 1, got 0"):
        Solver(big, data, threads=0)


def test_the_learning_rate_follows_base_times_decay_to_the_epoch():
    solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=0.5), lr_decay=0.9, epochs=6, verbose=False)
    solver.train()
    np.testing.assert_allclose(solver.lr_history, [0.5 * 0.9**e for e in range(6)], rtol=1e-12)


def test_early_stopping_ends_exactly_patience_epochs_after_the_best():
    solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=1e-9), patience=3, epochs=50, verbose=False)
    solver.train()  # a learning rate this small never improves on epoch 1's accuracy
    best = int(np.argmax(solver.val_acc_history))
    assert solver.epoch == best + 1 + 3 and solver.stop_reason.kind is Stop.EARLY


def test_the_restored_parameters_are_the_best_epochs_not_the_last():
    solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=1.5, momentum=0.9), epochs=12, verbose=False)
    seen = []
    solver.train(on_epoch_end=lambda s: seen.append({k: v.copy() for k, v in s.model.params.items()}))
    best = int(np.argmax(solver.val_acc_history))
    assert best < len(seen) - 1, "the test needs a run whose best epoch is not its last"
    for key, value in solver.model.params.items():
        np.testing.assert_array_equal(value, seen[best][key], err_msg=key)
    assert any(not np.array_equal(seen[-1][k], seen[best][k]) for k in seen[best])


def state_net(seed=0):
    from layers import BatchNorm, Dropout

    rng = np.random.default_rng(seed)
    return Sequential(Affine(2, 32, rng=rng, dtype=np.float32), BatchNorm(32, dtype=np.float32), ReLU(),
                      Dropout(0.2, rng=np.random.default_rng(seed + 7)), Affine(32, 3, rng=rng, dtype=np.float32))


def state_solver(epochs, patience=None):
    return Solver(state_net(), spiral_data(), optimizer=SGD(lr=0.1, momentum=0.9), reg=1e-3, lr_decay=0.9,
                  batch_size=32, epochs=epochs, patience=patience, num_train_samples=100, verbose=False)


def test_a_solver_given_anothers_state_continues_bit_for_bit():
    """Stopped after 3 of 7 epochs, the model's parameters and buffers and the Solver's state go to a new Solver
    over a new model; it ends exactly as a run of 7 epochs does (steps, every measure, the best epoch, the lr,
    every parameter, buffer and Generator: Dropout's draws and the shuffling included)."""
    saved = {}

    def keep(solver):  # before the best parameters are restored: the state a checkpoint keeps
        scalars, arrays = solver.state_dict()
        saved.update(params={k: v.copy() for k, v in solver.model.params.items()},
                     buffers={k: v.copy() for k, v in solver.model.buffers.items()},
                     scalars=scalars, arrays={k: v.copy() for k, v in arrays.items()})

    state_solver(3).train(on_stop=keep)
    assert saved["scalars"]["epoch"] == 3 and len(saved["scalars"]["history"]["val_acc"]) == 3
    resumed = state_solver(7)
    for kind in ("params", "buffers"):
        for key, value in getattr(resumed.model, kind).items():
            value[...] = saved[kind][key]
    resumed.load_state_dict(saved["scalars"], saved["arrays"])
    assert resumed.epoch == 3 and resumed.optimizer.lr == pytest.approx(0.1 * 0.9**2)
    whole = state_solver(7)
    a, b = resumed.train(), whole.train()
    assert {k: v for k, v in a.items() if k != "train_seconds"} == {k: v for k, v in b.items() if k != "train_seconds"}
    assert resumed.loss_history == whole.loss_history and resumed.epoch_lists().keys() == whole.epoch_lists().keys()
    for (column, x), y in zip(resumed.epoch_lists().items(), whole.epoch_lists().values(), strict=True):
        assert column == "seconds" or x == y, column
    assert resumed.best_epoch == whole.best_epoch and resumed.lr_history[-1] == pytest.approx(0.1 * 0.9**6)
    for kind in ("params", "buffers"):
        for key, value in getattr(whole.model, kind).items():
            np.testing.assert_array_equal(getattr(resumed.model, kind)[key], value)
    assert resumed.rng.bit_generator.state == whole.rng.bit_generator.state
    dropout_states = [s.model.generators()["3.rng"].bit_generator.state for s in (resumed, whole)]
    assert dropout_states[0] == dropout_states[1]


def test_an_early_stopped_state_keeps_its_count_and_the_best_loss():
    solver = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=1e-9), epochs=50, patience=3, verbose=False)
    solver.train()
    scalars, arrays = solver.state_dict()
    assert scalars["bad_epochs"] == 3 and scalars["stop_reason"]["kind"] == "early stop"
    assert scalars["best_val_acc"] == solver.val_acc_history[scalars["best_epoch"] - 1]
    assert scalars["best_val_loss"] == solver.val_loss_history[scalars["best_epoch"] - 1]
    other = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=1e-9), epochs=50, patience=3, verbose=False)
    other.load_state_dict(scalars, arrays)
    assert (other.bad_epochs, other.best_epoch, other.best_val_loss) == (3, solver.best_epoch, solver.best_val_loss)
    assert other.train()["epochs_run"] == solver.epoch  # stopped stays stopped
    other.reopen(more_epochs=True)
    assert other.stop_reason is None and other.bad_epochs == 0


def test_a_state_that_does_not_fit_is_refused_before_anything_changes():
    solver = state_solver(2)
    solver.train()
    scalars, arrays = solver.state_dict()
    other = Solver(two_layer(), spiral_data(), optimizer=SGD(lr=0.1, momentum=0.9), verbose=False)
    with pytest.raises(ValueError, match=r"Solver state: its best parameters do not match the model's"):
        other.load_state_dict(scalars, arrays)
    assert other.epoch == 0 and other.loss_history == []
    fresh = state_solver(2)
    with pytest.raises(ValueError, match=r"Solver state: epoch 2 but a history of lengths"):
        fresh.load_state_dict({**scalars, "history": {**scalars["history"], "val_acc": [0.5]}}, arrays)
    with pytest.raises(ValueError, match=r"Solver state: missing best_val_acc"):
        fresh.load_state_dict({k: v for k, v in scalars.items() if k != "best_val_acc"}, arrays)
    assert fresh.epoch == 0


def test_a_warmup_and_a_plateau_schedule_continue_bit_for_bit():
    """The schedules' state (the plateau's best loss, counts and scale; the warmup's step is the optimizer's)
    travels with the Solver's."""
    from optim import ReduceOnPlateau, Warmup

    def made(epochs):
        schedule = Warmup(steps=9, after=ReduceOnPlateau(factor=0.5, patience=0, threshold=0.2))
        return Solver(two_layer(), spiral_data(), optimizer=SGD(lr=0.2, momentum=0.9), schedule=schedule,
                      batch_size=32, epochs=epochs, verbose=False)

    saved = {}
    first = made(3)
    first.train(on_stop=lambda s: saved.update(params={k: v.copy() for k, v in s.model.params.items()},
                                               state=s.state_dict()))
    assert saved["state"][0]["schedule"]["scale"] < 1  # the plateau has cut the lr already
    resumed, whole = made(6), made(6)
    for key, value in resumed.model.params.items():
        value[...] = saved["params"][key]
    resumed.load_state_dict(*saved["state"])
    resumed.train(), whole.train()
    assert resumed.loss_history == whole.loss_history and resumed.lr_history == whole.lr_history
    assert whole.lr_history[0] == pytest.approx(0.2 * 6 / 9) and len(set(whole.lr_history)) > 2  # 6 steps an epoch

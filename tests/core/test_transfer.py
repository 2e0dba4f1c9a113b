"""transfer_job: examples crafted on each model, every model's accuracy on them;
and the trade-off helpers (training time, Pareto frontier)."""

from __future__ import annotations

import pytest
import torch

from explorer.core import attacks, data, models
from explorer.core.analysis.tradeoff import (
    pareto_front,
    time_text,
    training_seconds,
    training_times_job,
)
from explorer.core.analysis.transfer import (
    transfer_attack,
    transfer_dataset_job,
    transfer_job,
)
from explorer.core.jobs import Cancelled, CancelToken, Done, Log, Progress, Snapshot
from explorer.core.params import ParamError

STD, PGDAT, TRADES = "fmnist-cnn-standard", "fmnist-cnn-pgdat", "fmnist-cnn-trades"


@pytest.fixture(scope="module")
def images():
    ds = data.load("fashion-mnist-mini", "test")
    x, y = ds.as_tensors(0, 24)
    return ds, x, torch.as_tensor(y).long()


@pytest.fixture(scope="module")
def builtins():
    return {name: models.load_builtin(name) for name in (STD, PGDAT, TRADES)}


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_the_matrix_has_a_row_per_source_and_its_diagonal_is_white_box_pgd(
        images, builtins):
    _, x, y = images
    x, y = x[:16], y[:16]
    events = list(transfer_job(builtins, x, y, "pgd", 0.1, steps=3, batch_size=8,
                               seed=5))
    results = events[-1].results
    assert isinstance(events[-1], Done)
    assert results["models"] == [STD, PGDAT, TRADES]
    assert len(results["matrix"]) == 3
    assert all(len(row) == 3 for row in results["matrix"])
    assert results["params"]["steps"] == 3
    assert results["params"]["alpha"] == pytest.approx(2.5 * 0.1 / 3)
    for i, model in enumerate(builtins.values()):
        # white-box PGD computed directly: same attack, seed and batches
        atk = attacks.create("pgd", model, seed=5, **results["params"])
        x_adv = torch.cat([atk(x[lo:lo + 8], y[lo:lo + 8])
                           for lo in range(0, len(x), 8)])
        assert results["matrix"][i][i] == pytest.approx(_accuracy(model, x_adv, y))
        assert results["white_box_acc"][i] == results["matrix"][i][i]
        assert results["clean_acc"][i] == pytest.approx(_accuracy(model, x, y))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert [(s.label, s.step) for s in snaps] == [
        ("clean", 0), ("transfer", 0), ("transfer", 1), ("transfer", 2)]
    for i, snap in enumerate(snaps[1:]):
        assert snap.arrays["row"].tolist() == results["matrix"][i]
    labels = [e.label for e in events if isinstance(e, Progress)]
    assert labels == [f"crafting on {n}" for n in (STD, PGDAT, TRADES)
                      for _ in range(2)]  # two batches per source
    done = [e.done for e in events if isinstance(e, Progress)]
    assert done == sorted(done)
    assert done[-1] == 3 * len(x)
    assert sum(isinstance(e, Log) for e in events) == 3


def test_the_same_seed_gives_the_same_matrix(images, builtins):
    _, x, y = images
    two = {STD: builtins[STD], PGDAT: builtins[PGDAT]}
    runs = [transfer_job(two, x[:12], y[:12], steps=2, seed=3) for _ in range(2)]
    first, second = (list(r)[-1].results["matrix"] for r in runs)
    assert first == second


def test_a_standard_model_is_hit_hardest_by_its_own_examples(images, builtins):
    """A clear case: PGD at eps 0.1 breaks an undefended model white-box,
    while examples crafted on the robust models transfer only in part."""
    _, x, y = images
    matrix = list(transfer_job(builtins, x, y, steps=5))[-1].results["matrix"]
    own = matrix[0][0]
    assert own <= matrix[1][0]
    assert own <= matrix[2][0]
    assert own < _accuracy(builtins[STD], x, y)


def test_examples_stay_inside_the_budget_for_any_eps_attack(images, builtins):
    _, x, y = images
    two = {STD: builtins[STD], TRADES: builtins[TRADES]}
    results = list(transfer_job(two, x[:8], y[:8], "fgsm", 0.05))[-1].results
    assert results["attack"] == "fgsm"
    assert results["eps"] == 0.05
    assert all(0 <= v <= 1 for row in results["matrix"] for v in row)


def test_bad_input_is_named(images, builtins):
    ds, x, y = images
    one = {STD: builtins[STD]}
    with pytest.raises(ParamError, match=r"at least 2 models, got 1 \(fmnist-cnn"):
        list(transfer_job(one, x, y))
    with pytest.raises(ParamError, match=r"at least 2 models"):
        list(transfer_dataset_job(one, ds, 8))
    two = {STD: builtins[STD], PGDAT: builtins[PGDAT]}
    with pytest.raises(ParamError, match=r"'deepfool' has no eps budget"):
        list(transfer_job(two, x, y, "deepfool"))
    with pytest.raises(ParamError, match=r"unknown attack 'nope'"):
        transfer_attack("nope")
    with pytest.raises(ParamError, match=r"budget must be in \(0, 1\]"):
        list(transfer_job(two, x, y, eps=2.0))
    with pytest.raises(ParamError, match=r"x must be a non-empty batch"):
        list(transfer_job(two, x[:0], y[:0]))
    with pytest.raises(ParamError, match=r"number of images must be at least 1"):
        list(transfer_dataset_job(two, ds, 0))
    wrong = models.create("mlp", in_shape=(3, 32, 32), hidden=8, depth=1)
    with pytest.raises(models.ModelError, match=r"model 'wrong' does not fit"):
        list(transfer_dataset_job({STD: builtins[STD], "wrong": wrong}, ds, 8))


def test_cancel_stops_between_batches(images, builtins):
    _, x, y = images
    token = CancelToken()
    two = {STD: builtins[STD], PGDAT: builtins[PGDAT]}
    job = transfer_job(two, x, y, steps=2, batch_size=4, token=token)
    seen = []

    def drain() -> None:
        for event in job:
            seen.append(event)
            if isinstance(event, Progress):
                token.cancel()

    with pytest.raises(Cancelled):
        drain()
    assert sum(isinstance(e, Progress) for e in seen) == 1
    assert not any(isinstance(e, Done) for e in seen)


def test_training_time_is_read_never_invented(builtins):
    assert training_seconds({"train_seconds": 327.7}) == 327.7
    assert training_seconds({"seconds": 12}) == 12.0
    for nothing in (None, {}, {"seconds": None}, {"seconds": "1 h"},
                    {"seconds": float("nan")}, {"seconds": -3}, {"seconds": True}):
        assert training_seconds(nothing) is None
    assert [time_text(s) for s in (None, 45.2, 327.7, 3 * 3600)] == [
        "unknown", "45 s", "5.5 min", "3.0 h"]
    mlp = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1)
    sources = {STD: lambda: models.load_builtin(STD), PGDAT: builtins[PGDAT],
               "run": mlp, "file": mlp}
    found = list(training_times_job(sources, {"run": 61.0, PGDAT: None}))[-1].results
    # a built-in's card is read as it is (the retrained PGD-AT one records
    # its time; ``known`` None adds nothing); the bare MLP has none anywhere
    expected = {name: builtins[name].meta.training.get("train_seconds")
                for name in (STD, PGDAT)}
    assert expected[PGDAT] is not None
    assert found["seconds"] == {**expected, "run": 61.0, "file": None}
    assert found["source"] == {
        **{name: "metadata" if expected[name] else None for name in expected},
        "run": "run record", "file": None}
    # a run record never overrides what the model's card says
    again = list(training_times_job({PGDAT: builtins[PGDAT]},
                                    {PGDAT: 1.0}))[-1].results
    assert again["seconds"][PGDAT] == expected[PGDAT]


def test_the_pareto_front_keeps_the_points_nothing_beats():
    points = [(0.9, 0.0), (0.8, 0.6), (0.7, 0.5), (0.75, 0.7), (0.9, 0.0)]
    assert pareto_front(points) == [3, 1, 0, 4]
    assert pareto_front([(0.5, 0.5)]) == [0]
    assert pareto_front([]) == []

"""The validation split: held-out training images choose the best epoch and
feed NoiLIn; test figures are reported beside them and choose nothing."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from trainer_calls import fit

from explorer.core import data, defenses, models
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses import trainer
from explorer.core.jobs import Artifact, Done, Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint
from explorer.core.training.split import validation_size, validation_split

INFO = data.info("fashion-mnist-mini")


def _mlp():
    torch.manual_seed(0)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1)


def _numbered(n: int) -> ArrayDataset:
    """``n`` images whose every pixel is the image's index (uint8), so an
    index can be read back from any batch the trainer hands on."""
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(
        n, 1, 28, 28).clone()
    return ArrayDataset(images, torch.arange(n) % 10, INFO.classes, INFO)


def _indices(x: torch.Tensor) -> set[int]:
    return {round(v) for v in (x[:, 0, 0, 0] * 255).tolist()}


def _metrics(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def test_the_split_is_seeded_disjoint_and_sized():
    split = validation_split(256, 0.1, 5000, seed=0)
    train, val = set(split.train.tolist()), set(split.val.tolist())
    assert (len(train), len(val)) == (230, 26)
    assert not train & val
    assert train | val == set(range(256))
    assert split.selected_on == "validation"
    again = validation_split(256, 0.1, 5000, seed=0)
    assert torch.equal(again.val, split.val)
    assert not torch.equal(validation_split(256, 0.1, 5000, seed=1).val, split.val)
    assert set(split.val.tolist()) != set(range(26))  # drawn, not the first ones
    assert validation_size(60_000, 0.1) == 5000  # 6,000 capped at val_max
    assert validation_size(60_000, 0.5, 100) == 100
    assert validation_size(8, 0.01) == 1  # a split of any share holds one at least
    none = validation_split(256, 0.0, 5000, seed=0)
    assert (len(none.val), none.selected_on) == (0, "last")
    assert torch.equal(none.train, torch.arange(256))


@pytest.mark.parametrize(("fraction", "message"), [
    (-0.1, "val_fraction must be at least 0 and below 1, got -0.1"),
    (1.0, "val_fraction must be at least 0 and below 1, got 1.0"),
])
def test_bad_fractions_are_named(fraction, message):
    with pytest.raises(ParamError, match=message):
        validation_size(100, fraction)
    with pytest.raises(ParamError, match=message):
        defenses.TrainingConfig(val_fraction=fraction)


def test_a_split_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(ParamError, match=r"val_fraction 0\.9 holds out 4 of the 4 "
                                         "training images and leaves none"):
        validation_size(4, 0.9)
    with pytest.raises(ParamError, match="val_max must be a whole number of at "
                                         "least 1, got 0"):
        defenses.TrainingConfig(val_max=0)


def test_the_trainer_never_trains_on_the_validation_images(tmp_path, monkeypatch):
    train_set, test_set = _numbered(40), data.load("fashion-mnist-mini", "test")
    test_x = test_set.as_tensors(0, 16)[0]
    seen, scored = set(), []
    real_loss = defenses.REGISTRY["standard"].loss

    def loss(self, model, x, y, generator):
        seen.update(_indices(x))
        return real_loss(self, model, x, y, generator)

    def fake_eval(model, x, y, **kw):
        if not torch.equal(x, test_x):
            scored.append(_indices(x))
        return 0.5, 0.25

    monkeypatch.setattr(trainer, "clean_and_robust", fake_eval)
    with mock.patch.object(defenses.REGISTRY["standard"], "loss", loss):
        events = list(fit(_mlp(), train_set, test_set, epochs=2, batch_size=8,
                          eval_n=16, val_fraction=0.25, run_dir=tmp_path,
                          device="cpu"))
    val = set(validation_split(40, 0.25, 5000, seed=0).val.tolist())
    assert len(val) == 10
    assert seen == set(range(40)) - val  # every other image, none held out
    assert scored == [val, val]  # each epoch scores the held-out ones
    done = events[-1].results
    assert (done["selected_on"], done["val_n"]) == ("validation", 10)
    assert checkpoint.load(tmp_path / "last.pt")["config"]["n_train"] == 30


# Per epoch: validation and test robust accuracy that disagree. Validation
# peaks at epoch 2 and drops once; test peaks at epoch 1 and drops twice.
VAL = [0.5, 0.7, 0.6]
TEST = [0.9, 0.2, 0.1]


def _scripted(monkeypatch, test_x):
    """``clean_and_robust`` giving the figures above, told apart by the images."""
    calls = {"val": iter(VAL), "test": iter(TEST)}

    def fake_eval(model, x, y, **kw):
        robust = next(calls["test" if torch.equal(x, test_x) else "val"])
        return robust + 0.1, robust

    monkeypatch.setattr(trainer, "clean_and_robust", fake_eval)


@pytest.fixture
def small():
    train = data.load("fashion-mnist-mini", "train")
    test = data.load("fashion-mnist-mini", "test")
    return (ArrayDataset(train.images[:64], train.labels[:64], train.classes,
                         train.info), test)


NOILIN = {"steps": 1, "rate": 0.1, "growth": 0.5, "rate_max": 0.6}


def test_the_best_epoch_and_noilin_follow_validation_not_test(small, tmp_path,
                                                             monkeypatch):
    train_set, test_set = small
    _scripted(monkeypatch, test_set.as_tensors(0, 16)[0])
    events = list(fit(_mlp(), train_set, test_set, method="noilin", params=NOILIN,
                      epochs=3, batch_size=32, eval_n=16, run_dir=tmp_path,
                      device="cpu"))
    assert _metrics(events, "val_robust_acc") == VAL
    assert _metrics(events, "test_robust_acc") == TEST  # still reported
    assert _metrics(events, "val_clean_acc") == pytest.approx([v + 0.1 for v in VAL])
    done = events[-1]
    assert isinstance(done, Done)
    r = done.results
    assert (r["selected_on"], r["val_n"], r["best_epoch"]) == ("validation", 6, 2)
    assert (r["best_val_robust_acc"], r["best_test_robust_acc"]) == (0.7, 0.2)
    assert r["best_val_clean_acc"] == pytest.approx(0.8)
    assert r["best_test_clean_acc"] == pytest.approx(0.3)
    assert r["best_robust_acc"] == 0.2  # the chosen epoch's test figure
    assert (r["robust_acc"], r["epochs"]) == (0.1, 3)  # the last epoch's test
    assert [e.step for e in events if isinstance(e, Metric)
            and e.name == "val_robust_acc"] == [1, 2, 3]
    assert sum(isinstance(e, Artifact) and e.name == "best" for e in events) == 2
    meta = models.load(tmp_path / "best.safetensors").meta.training
    assert (meta["epoch"], meta["selected_on"], meta["val_n"]) == (2, "validation", 6)
    assert (meta["val_robust_acc"], meta["robust_acc"]) == (0.7, 0.2)
    # NoiLIn grew its rate once, after validation's one drop (test dropped twice)
    state = checkpoint.load(tmp_path / "last.pt")["method"]
    assert state["last_robust"] == 0.6
    assert state["rate"] == pytest.approx(0.1 * 1.5)


def test_without_a_split_the_last_epoch_is_kept(small, tmp_path, monkeypatch):
    train_set, test_set = small
    _scripted(monkeypatch, test_set.as_tensors(0, 16)[0])
    events = list(fit(_mlp(), train_set, test_set, method="noilin", params=NOILIN,
                      epochs=3, batch_size=32, eval_n=16, val_fraction=0.0,
                      run_dir=tmp_path, device="cpu"))
    assert _metrics(events, "val_robust_acc") == []
    assert _metrics(events, "test_robust_acc") == TEST
    r = events[-1].results
    assert (r["selected_on"], r["val_n"], r["best_epoch"]) == ("last", 0, 3)
    assert r["best_val_robust_acc"] is None
    assert r["best_test_robust_acc"] == 0.1
    assert models.load(tmp_path / "best.safetensors").meta.training["epoch"] == 3
    assert any("no validation split" in getattr(e, "message", "") for e in events)
    # no validation figures: NoiLIn's rate stays where it started
    assert checkpoint.load(tmp_path / "last.pt")["method"]["rate"] == 0.1


def test_a_checkpoint_from_before_the_split_resumes(small, tmp_path):
    """A last.pt without val_n (older runs held out none) resumes as a run
    without a split; asking it for one is refused by name."""
    train_set, test_set = small
    kw = {"epochs": 2, "batch_size": 32, "eval_n": 16, "eval_steps": 1,
          "run_dir": tmp_path, "device": "cpu", "val_fraction": 0.0}
    list(fit(_mlp(), train_set, test_set, **{**kw, "epochs": 1}))
    state = checkpoint.load(tmp_path / "last.pt")
    for key in ("val_n", "selected_on"):
        del state["config"][key]
    checkpoint.save(tmp_path / "last.pt", state)
    with pytest.raises(checkpoint.CheckpointError, match="cannot resume"):
        list(fit(_mlp(), train_set, test_set, **{**kw, "val_fraction": 0.1},
                 resume=True))
    events = list(fit(_mlp(), train_set, test_set, **kw, resume=True))
    assert (events[-1].results["epochs"], events[-1].results["val_n"]) == (2, 0)


UNION = {"val": [0.2, 0.3, 0.5], "test": [0.9, 0.1, 0.1]}


def test_a_method_can_report_its_own_figures_and_select_on_one(
        small, tmp_path, monkeypatch):
    """``extra_scores`` figures are reported as val_/test_ metrics, and a
    method's ``selection_key`` chooses the best epoch instead of l-inf PGD."""
    from explorer.core.defenses import registry
    from explorer.core.defenses.methods import Standard

    train_set, test_set = small
    test_x = test_set.as_tensors(0, 16)[0]
    _scripted(monkeypatch, test_x)  # val_robust_acc alone would choose 2
    calls = {"val": iter(UNION["val"]), "test": iter(UNION["test"])}

    class Scored(Standard):
        name = "scored"
        selection_key = "union_acc"

        def extra_scores(self, model, x, y, *, eps, steps, device, token):
            part = "test" if torch.equal(x, test_x) else "val"
            return {"union_acc": next(calls[part])}

    monkeypatch.setitem(registry.REGISTRY, "scored", Scored)
    events = list(fit(_mlp(), train_set, test_set, method="scored", epochs=3,
                      batch_size=32, eval_n=16, run_dir=tmp_path, device="cpu"))
    assert _metrics(events, "val_union_acc") == UNION["val"]
    assert _metrics(events, "test_union_acc") == UNION["test"]
    r = events[-1].results
    assert (r["best_epoch"], r["selected_metric"]) == (3, "val_union_acc")
    meta = models.load(tmp_path / "best.safetensors").meta.training
    assert meta["selected_metric"] == "val_union_acc"
    assert registry.selection_key("scored") == "union_acc"
    assert registry.selection_key("pgd-at") == "robust_acc"

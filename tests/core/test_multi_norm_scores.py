"""What the multi-norm methods report each epoch: accuracy under PGD in each
of the l-inf, l2 and l1 balls, union accuracy (correct under all three,
image by image), and the best epoch chosen on validation union accuracy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.defenses import multi, registry
from explorer.core.defenses.evaluation import clean_and_robust
from explorer.core.jobs import Cancelled, CancelToken, Metric

UNION_METHODS = ("adv-avg", "adv-max", "msd", "sat", "mng-ac")
KEYS = {"linf_acc", "l2_acc", "l1_acc", "union_acc"}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def trained(sets):
    """An MLP fitted for a few dozen clean steps (accuracy well above chance,
    so the attacks have something to take away), and 48 test images."""
    torch.manual_seed(0)
    model = models.create("mlp", in_shape=(1, 28, 28), hidden=32, depth=1)
    x, y = sets[0].as_tensors(0, 256)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    model.train()
    return model, *sets[1].as_tensors(0, 48)


class CountingToken(CancelToken):
    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        super().check()


def _scores(defense, model, x, y, steps=2, token=None):
    return defense.extra_scores(model, x, y, eps=0.1, steps=steps, device=CPU,
                                token=token or CancelToken())


@pytest.mark.parametrize("method", UNION_METHODS)
def test_multi_norm_methods_select_on_union_accuracy(method):
    assert defenses.defense_class(method).selection_key == "union_acc"
    assert registry.selection_key(method) == "union_acc"


def test_single_norm_methods_report_and_select_on_their_own_norm(trained):
    model, x, y = trained
    for method, norm in (("pgd-at-l2", "l2"), ("pgd-at-l1", "l1")):
        assert registry.selection_key(method) == f"{norm}_acc"
        scores = _scores(defenses.create(method), model, x, y)
        assert set(scores) == {f"{norm}_acc"}
        assert 0 <= scores[f"{norm}_acc"] <= 1


def test_per_norm_and_union_accuracy_of_a_real_model(trained):
    model, x, y = trained
    defense = defenses.create("msd", eps_linf=0.1, alpha_ratio=2.5)
    scores = _scores(defense, model, x, y, steps=3)
    assert set(scores) == KEYS
    # The l-inf figure is the trainer's own l-inf PGD at that budget and steps.
    clean, robust = clean_and_robust(model, x, y, eps=0.1, steps=3, device=CPU,
                                     token=CancelToken())
    assert scores["linf_acc"] == robust
    assert clean > 0.3
    # Each attack takes something away, and the union is at most each of them.
    for key in ("linf_acc", "l2_acc", "l1_acc"):
        assert scores[key] < clean
        assert scores["union_acc"] <= scores[key]
    # Seeded: the next epoch meets the same attack start.
    assert _scores(defense, model, x, y, steps=3) == scores
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_zero_budgets_leave_the_clean_accuracy(trained):
    model, x, y = trained
    defense = defenses.create("adv-avg", eps_linf=0.0, eps_l2=0.0, eps_l1=0.0)
    clean, _ = clean_and_robust(model, x, y, eps=0.0, steps=2, device=CPU,
                                token=CancelToken())
    assert _scores(defense, model, x, y) == dict.fromkeys(KEYS, clean)


def test_union_counts_images_correct_under_all_three(trained, monkeypatch):
    """Per image: hits (1,1,0,0) ∩ (1,0,1,0) ∩ (1,1,1,0) leave one of four,
    less than the smallest per-norm share (two of four); batched, with a
    stop checked before each batch."""
    model, x, y = trained
    scripted = {"linf": [1, 1, 0, 0] * 3, "l2": [1, 0, 1, 0] * 3,
                "l1": [1, 1, 1, 0] * 3}
    seen = []

    def hits(self, model, xb, yb, steps):
        start = sum(seen)
        seen.append(len(yb))
        return {norm: torch.tensor(h[start:start + len(yb)], dtype=torch.bool)
                for norm, h in scripted.items()}

    monkeypatch.setattr(multi, "EVAL_BATCH", 5)
    monkeypatch.setattr(multi._MultiNorm, "robust_hits", hits)
    token = CountingToken()
    scores = _scores(defenses.create("sat"), model, x[:12], y[:12], token=token)
    assert seen == [5, 5, 2]
    assert token.checks == 3
    assert scores == {"linf_acc": 0.5, "l2_acc": 0.5, "l1_acc": 0.75,
                      "union_acc": 0.25}


def test_a_stop_interrupts_the_scores(trained):
    model, x, y = trained
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        _scores(defenses.create("msd"), model, x, y, token=token)
    assert model.training


def test_an_msd_run_keeps_the_epoch_of_best_validation_union_accuracy(sets,
                                                                      tmp_path):
    """A real tiny run (smaller budgets, so the MLP learns): every epoch
    reports the four figures on validation and test images, and the best
    epoch is the first of highest validation union accuracy, where l-inf PGD
    at the run's evaluation budget would have chosen another."""
    torch.manual_seed(0)
    model = models.create("mlp", in_shape=(1, 28, 28), hidden=16, depth=1)
    params = {"steps": 1, "eps_linf": 0.03, "eps_l2": 0.5, "eps_l1": 3.0}
    events = list(fit(model, *sets, method="msd", params=params, epochs=3,
                      batch_size=32, optimizer="adam", lr=0.01, eval_n=24,
                      eval_steps=1, run_dir=tmp_path, device="cpu"))
    figures = {name: [e.value for e in events
                      if isinstance(e, Metric) and e.name == name]
               for name in [f"{part}_{key}" for part in ("val", "test")
                            for key in KEYS] + ["val_robust_acc"]}
    assert all(len(v) == 3 for v in figures.values())
    union, robust = figures["val_union_acc"], figures["val_robust_acc"]
    results = events[-1].results
    assert results["selected_metric"] == "val_union_acc"
    assert results["best_epoch"] == 1 + union.index(max(union))
    assert union.index(max(union)) != robust.index(max(robust))
    meta = models.load(tmp_path / "best.safetensors").meta.training
    assert meta["selected_metric"] == "val_union_acc"

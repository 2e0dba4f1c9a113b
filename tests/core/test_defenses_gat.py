"""GAT: MGDA weights, the auxiliary tasks, budgets, heads, resume, params."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from tiny_nets import gen as _gen
from tiny_nets import mlp as _mlp
from torch import nn
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.defenses.gat import (
    JIGSAW_PERMS,
    jigsaw,
    mgda_weights,
    rotate,
)
from explorer.core.jobs import Done, Metric
from explorer.core.params import ParamError
from explorer.core.training import checkpoint

FAST = {"steps": 2}




def _step(defense, model, x, y, generator, opt):
    """One trainer update: loss, backward, the heads' step, the model's step."""
    loss, _ = defense.loss(model, x, y, generator)
    opt.zero_grad()
    loss.backward()
    defense.after_backward()
    opt.step()
    return loss


# -- registry and parameters ---------------------------------------------------

def test_registered_with_defaults():
    assert "gat" in defenses.names()
    cfg = defenses.create("gat").cfg
    assert cfg == {"eps": 0.1, "alpha": 0.025, "steps": 7, "tasks": "rotation",
                   "weighting": "mgda", "normalize": "none", "attack": "target",
                   "head_lr": 1e-3}
    assert defenses.create("gat", tasks="rotation+jigsaw").tasks == ("rotation",
                                                                     "jigsaw")


@pytest.mark.parametrize(("params", "word"), [
    ({"tasks": "colour"}, "tasks"),
    ({"weighting": "pareto"}, "weighting"),
    ({"normalize": "l1"}, "normalize"),
    ({"attack": "aux"}, "attack"),
    ({"eps": 2.0}, "eps"),
    ({"steps": 0}, "steps"),
    ({"head_lr": 0.0}, "head_lr"),
])
def test_bad_params_name_the_parameter(params, word):
    with pytest.raises(ParamError, match=word):
        defenses.create("gat", **params)


def test_non_square_images_for_rotation_and_a_model_without_features():
    defense = defenses.create("gat", **FAST)
    x, y = torch.rand(4, 1, 28, 20), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ParamError, match="tasks: rotation needs square images, "
                                         "got 28×20"):
        defense.loss(_mlp(), x, y, _gen())
    plain = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ParamError, match=r"model\.features"):
        defense.loss(plain, torch.rand(4, 1, 28, 28), y, _gen())


# -- MGDA ------------------------------------------------------------------------

def test_mgda_two_tasks_closed_form():
    # orthogonal, equal norms: the midpoint
    w = mgda_weights(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(w, torch.tensor([0.5, 0.5]))
    # ||(2γ, 1-γ)||² is least at γ = 0.2
    w = mgda_weights(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
    torch.testing.assert_close(w, torch.tensor([0.2, 0.8]))
    # same direction: the shorter gradient alone is the min-norm point
    w = mgda_weights(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))
    torch.testing.assert_close(w, torch.tensor([1.0, 0.0]))
    # opposite directions: the combination that cancels them
    w = mgda_weights(torch.tensor([[1.0, 0.0], [-3.0, 0.0]]))
    torch.testing.assert_close(w, torch.tensor([0.75, 0.25]))


def _exact_min_norm(g: torch.Tensor) -> float:
    """The least norm over the simplex by enumerating the active sets: on
    each face the affine min-norm point is M_S^-1 1 / (1' M_S^-1 1)."""
    gram, best = g @ g.T, math.inf
    for size in range(1, len(g) + 1):
        for face in itertools.combinations(range(len(g)), size):
            sub = gram[list(face)][:, list(face)]
            w = torch.linalg.solve(sub, torch.ones(size, dtype=g.dtype))
            w = w / w.sum()
            if (w >= 0).all():
                best = min(best, float((w @ g[list(face)]).norm()))
    return best


def test_mgda_frank_wolfe_finds_the_min_norm_point():
    eye = mgda_weights(torch.eye(3))
    torch.testing.assert_close(eye, torch.full((3,), 1 / 3), atol=1e-4, rtol=0)
    gen = _gen(3)
    for _ in range(6):
        g = torch.randn(3, 6, generator=gen, dtype=torch.float64) + 0.5
        w = mgda_weights(g)
        assert (w >= 0).all()
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-9)
        assert float((w @ g).norm()) == pytest.approx(_exact_min_norm(g), rel=1e-3)
    # the interior of the hull holds the origin: a zero combination
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    assert float((mgda_weights(g) @ g).norm()) < 1e-3


# -- the auxiliary tasks -------------------------------------------------------

def test_rotation_turns_each_image_by_its_label():
    x = torch.arange(2 * 9, dtype=torch.float32).view(2, 1, 3, 3)
    x = torch.cat([x, x])  # labels 0..3 on two distinct images
    k = torch.tensor([0, 1, 2, 3])
    out = rotate(x, k)
    for i in range(4):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2)))
    # one quarter turn counter-clockwise: the top row becomes the left column
    assert out[1, 0, :, 0].tolist() == [11.0, 10.0, 9.0]  # top row 9, 10, 11


def test_jigsaw_moves_the_tiles_as_its_permutation_says():
    assert len(JIGSAW_PERMS) == 24
    assert JIGSAW_PERMS[0] == (0, 1, 2, 3)  # label 0 leaves the image alone
    assert sorted(JIGSAW_PERMS) == list(itertools.permutations(range(4)))
    # a 4x4 image whose 2x2 tiles hold 0, 1, 2, 3
    tile = torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    x = tile.view(1, 1, 4, 4).repeat(24, 1, 1, 1)
    out = jigsaw(x, torch.arange(24))
    for i, perm in enumerate(JIGSAW_PERMS):
        shown = [out[i, 0, r * 2, q * 2].item() for r in range(2) for q in range(2)]
        assert shown == [float(p) for p in perm]
    # an odd side: the last row and column stay where they were
    odd = torch.rand(3, 1, 5, 5, generator=_gen(1))
    moved = jigsaw(odd, torch.tensor([5, 17, 23]))
    assert torch.equal(moved[:, :, 4, :], odd[:, :, 4, :])
    assert torch.equal(moved[:, :, :, 4], odd[:, :, :, 4])
    assert torch.equal(moved.flatten(1).sort(1).values, odd.flatten(1).sort(1).values)


def test_labels_are_drawn_per_image_in_each_tasks_range():
    defense = defenses.create("gat", tasks="rotation+jigsaw")
    labels = defense.draw_labels(400, _gen(2), "cpu")
    assert set(labels["rotation"].tolist()) == {0, 1, 2, 3}
    assert labels["jigsaw"].min() >= 0
    assert labels["jigsaw"].max() <= 23
    assert len(set(labels["jigsaw"].tolist())) > 12


# -- the defense ---------------------------------------------------------------

@pytest.mark.parametrize("attack", ["target", "joint"])
def test_adversarial_examples_stay_in_ball_and_box(attack, sets):
    x, y = sets[0].as_tensors(0, 16)
    model = _mlp()
    model.train()
    defense = defenses.create("gat", tasks="rotation+jigsaw", attack=attack,
                              eps=0.1, steps=3)
    defense._build(model, x, _gen(0))
    labels = defense.draw_labels(len(y), _gen(1), "cpu")
    x_adv = defense.adversarial(model, x, y, _gen(2), labels)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.05
    assert model.training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("tasks", "weighting"), [
    ("rotation", "mgda"), ("rotation+jigsaw", "mgda"), ("jigsaw", "equal")])
def test_loss_falls_and_heads_learn(tasks, weighting, sets):
    x, y = sets[0].as_tensors(0, 64)
    model = _mlp()
    defense = defenses.create("gat", tasks=tasks, weighting=weighting,
                              head_lr=0.01, **FAST)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses, heads = [], None  # each step's unweighted task losses
    for i in range(12):
        loss = float(_step(defense, model, x, y, _gen(i), opt).detach())
        parts = defense.last_losses
        assert loss == pytest.approx(sum(
            w * v for w, v in zip(defense.last_weights, parts.values(),
                                  strict=True)), rel=1e-4)
        losses.append(parts)
        if heads is None:
            heads = [t.detach().clone() for t in defense.heads.state_dict().values()]
        w = defense.last_weights
        assert len(w) == 1 + len(defense.tasks)
        assert min(w) >= 0
        assert sum(w) == pytest.approx(1.0, abs=1e-5)
    if weighting == "equal":
        assert defense.last_weights == pytest.approx([0.5, 0.5])
    # MGDA's weights change from step to step: each task's own loss falls
    for task in ("target", *defense.tasks):
        first = sum(step[task] for step in losses[:3])
        last = sum(step[task] for step in losses[-3:])
        assert math.isfinite(last)
        assert last < first, task
    assert any(not torch.equal(a, b) for a, b in zip(
        heads, defense.heads.state_dict().values(), strict=True))
    assert all(p.grad is None for p in defense.heads.parameters())


def test_state_dict_round_trip_continues_identically(sets, tmp_path):
    x, y = sets[0].as_tensors(0, 16)
    model = _mlp()
    defense = defenses.create("gat", **FAST)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for seed in range(2):
        _step(defense, model, x, y, _gen(seed), opt)
    path = checkpoint.save(tmp_path / "m.pt", {"model": {},
                                               "method": defense.state_dict()})
    again = defenses.create("gat", **FAST)
    again.load_state_dict(checkpoint.load(path)["method"])  # weights_only=True
    assert again.state_dict()["dim"] == 32  # kept until the first batch
    model_a, model_b = _mlp(7), _mlp(7)
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.05)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.05)
    la = _step(defense, model_a, x, y, _gen(11), opt_a)
    lb = _step(again, model_b, x, y, _gen(11), opt_b)
    assert la.item() == lb.item()
    for a, b in zip(defense.heads.state_dict().values(),
                    again.heads.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def _tiny(sets):
    from explorer.core.data.base import ArrayDataset
    small, test = sets
    return ArrayDataset(small.images[:64], small.labels[:64], small.classes,
                        small.info), test


KW = {"method": "gat", "batch_size": 32, "eval_n": 16, "eval_steps": 1,
      "device": "cpu", "lr": 0.05, "schedule": "constant", "val_fraction": 0.0}


def test_best_file_is_the_plain_classifier(sets, tmp_path):
    tiny, test = _tiny(sets)
    model = _mlp()
    events = list(fit(model, tiny, test, epochs=1, run_dir=tmp_path,
                      params={"tasks": "rotation+jigsaw", **FAST}, **KW))
    done = events[-1]
    assert isinstance(done, Done)
    assert all(math.isfinite(e.value) for e in events
               if isinstance(e, Metric) and e.name == "batch_loss")
    best = models.load(done.results["best"])
    assert type(best) is type(model)
    assert best.meta.training["method"] == "gat"
    assert best.meta.training["params"]["tasks"] == "rotation+jigsaw"
    model.eval()
    x, _ = test.as_tensors(0, 8)
    with torch.no_grad():
        torch.testing.assert_close(best(x), model(x))
    saved = checkpoint.load(tmp_path / "last.pt")["method"]
    assert set(saved["heads"]) == {"rotation.weight", "rotation.bias",
                                   "jigsaw.weight", "jigsaw.bias"}
    assert saved["optimizer"]["state"]  # Adam stepped and was checkpointed


@pytest.mark.slow
def test_trainer_resume_continues_bit_for_bit(sets, tmp_path):
    tiny, test = _tiny(sets)
    kw = {**KW, "params": {"tasks": "rotation+jigsaw", **FAST}}
    straight = _mlp()
    list(fit(straight, tiny, test, epochs=2, run_dir=tmp_path / "a", **kw))
    list(fit(_mlp(), tiny, test, epochs=1, run_dir=tmp_path / "b", **kw))
    resumed = _mlp(seed=123)  # weights come from the checkpoint
    list(fit(resumed, tiny, test, epochs=2, run_dir=tmp_path / "b", resume=True,
             **kw))
    assert all(torch.equal(a, b) for a, b in zip(
        straight.state_dict().values(), resumed.state_dict().values(), strict=True))
    heads_a = checkpoint.load(tmp_path / "a" / "last.pt")["method"]["heads"]
    heads_b = checkpoint.load(tmp_path / "b" / "last.pt")["method"]["heads"]
    assert all(torch.equal(heads_a[k], heads_b[k]) for k in heads_a)


def test_noilin_wraps_gat_and_keeps_its_heads(sets):
    from explorer.core.defenses.registry import adversarial_names, create_wrapped

    assert "gat" in adversarial_names()
    x, y = sets[0].as_tensors(0, 16)
    model = _mlp()
    wrapped = create_wrapped("gat", {"steps": 1}, {"rate": 0.5})
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    _step(wrapped, model, x, y, _gen(0), opt)  # the wrapper forwards the heads' step
    state = wrapped.state_dict()
    assert state["inner.optimizer"]["state"]
    assert set(state["inner.heads"]) == {"rotation.weight", "rotation.bias"}

"""Pang et al.'s methods: MMC centres, ADP ensembles, RCE + K-density, MI."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from trainer_calls import fit

from explorer.core import data, defenses, models
from explorer.core.certify.detect import make_detector, non_max_entropy
from explorer.core.data.base import ArrayDataset
from explorer.core.defenses.adp import Ensemble, log_diversity, make_ensemble
from explorer.core.defenses.methods import _pgd_linf
from explorer.core.defenses.mixup_inference import MixupInference
from explorer.core.defenses.mmc import MMCHead, mm_centres
from explorer.core.defenses.rce import KDensityDetector, rce_loss
from explorer.core.jobs import Done, Log


@pytest.fixture(scope="module")
def sets():
    train = data.load("fashion-mnist-mini", "train")
    test = data.load("fashion-mnist-mini", "test")
    small = ArrayDataset(train.images[:256], train.labels[:256], train.classes,
                         train.info)
    return small, test, train


def _mlp(seed: int = 0, hidden: int = 32):
    torch.manual_seed(seed)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=hidden, depth=1)


def _xy(dataset, n: int):
    return dataset.as_tensors(0, n)


def _sgd(model, defense, x, y, steps: int, lr: float = 0.05) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen, losses = torch.Generator().manual_seed(0), []
    for i in range(steps):
        sl = slice((i * 64) % len(x), (i * 64) % len(x) + 64)
        loss, _ = defense.loss(model, x[sl], y[sl], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(("k", "d"), [(10, 32), (10, 9), (3, 5)])
def test_mm_centres_equal_norms_and_inner_products(k, d):
    mu = mm_centres(k, d, scale=10.0).double()
    assert mu.shape == (k, d)
    assert torch.allclose(mu.norm(dim=1), torch.full((k,), 10.0, dtype=mu.dtype),
                          atol=1e-4)
    gram = mu @ mu.T
    off = gram[~torch.eye(k, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, -100.0 / (k - 1)), atol=1e-3)


def test_mmc_trains_predicts_nearest_centre_and_round_trips(sets, tmp_path):
    x, y = _xy(sets[0], 256)
    model = _mlp()
    defense = defenses.create("mmc", scale=5.0)
    defense.prepare(model)
    assert isinstance(model.head, MMCHead)
    assert not any(p is model.head.weight for p in model.parameters())
    losses = _sgd(model, defense, x, y, 40, lr=0.01)
    assert sum(losses[-4:]) < 0.7 * sum(losses[:4])
    model.eval()
    with torch.no_grad():
        z = model.features(x)
        nearest = torch.cdist(z, model.head.weight).argmin(1)
        logits = model(x)
    assert torch.equal(logits.argmax(1), nearest)
    # Saved as the plain architecture: same predictions, softmax and loss.
    loaded = models.load(models.save(model, tmp_path / "mmc.safetensors"))
    with torch.no_grad():
        again = loaded(x)
    assert isinstance(loaded.head, torch.nn.Linear)
    top = again.gather(1, nearest[:, None]).squeeze(1)
    assert torch.allclose(top, again.max(1).values, atol=1e-4)
    assert (again.argmax(1) == nearest).float().mean() > 0.95
    assert torch.allclose(F.softmax(again, 1), F.softmax(logits, 1), atol=1e-5)


def test_adp_all_members_train_and_diversity_has_gradient(sets):
    x, y = _xy(sets[0], 64)
    defense = defenses.create("adp", members=3)
    ens = defense.prepare(_mlp())
    assert isinstance(ens, Ensemble)
    assert len(ens.members) == 3
    w = [m.head.weight.detach().clone() for m in ens.members]
    assert not torch.equal(w[0], w[1])  # each member its own initialisation
    before = [[p.detach().clone() for p in m.parameters()] for m in ens.members]
    _sgd(ens, defense, x, y, 1)
    for member, old in zip(ens.members, before, strict=True):
        assert all(not torch.equal(p, q) for p, q in zip(member.parameters(), old,
                                                          strict=True))
    probs = [F.softmax(v, 1) for v in ens.member_logits(x)]
    div = log_diversity(probs, y)
    assert div.shape == (64,)
    assert torch.isfinite(div).all()
    (grad,) = torch.autograd.grad(div.mean(), ens.members[0].head.weight)
    assert torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    plain = defenses.create("adp", members=3, alpha=0.0, beta=0.0)
    loss, logits = plain.loss(ens, x, y, None)
    ce = sum(F.cross_entropy(v, y) for v in ens.member_logits(x))
    assert loss.item() == pytest.approx(ce.item(), rel=1e-6)
    assert torch.allclose(logits.exp().sum(1), torch.ones(64), atol=1e-5)
    assert defense.loss(ens, x, y, None)[0].item() != pytest.approx(ce.item())


def test_rce_loss_is_cross_entropy_against_reverse_labels():
    z = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    target = torch.full((5, 4), 1 / 3)
    target[torch.arange(5), y] = 0
    expected = -(target * F.log_softmax(z, 1)).sum(1).mean()
    assert rce_loss(z, y).item() == pytest.approx(expected.item())
    model = _mlp()
    x = torch.rand(5, 1, 28, 28)
    loss, logits = defenses.create("rce").loss(model, x, y, None)
    assert torch.equal(logits, model(x))  # the model's output is the negated Z
    assert loss.item() == pytest.approx(rce_loss(-model(x), y).item())


def _auc(neg: torch.Tensor, pos: torch.Tensor) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).float().mean() + 0.5 * (diff == 0).float().mean())


@pytest.fixture(scope="module")
def rce_mlp(sets):
    """An MLP trained with RCE on 512 mini training images, its losses."""
    x, y = _xy(sets[2], 512)
    model = _mlp(hidden=64)
    losses = _sgd(model, defenses.create("rce"), x, y, 240, lr=0.05)
    return model.eval(), x, y, losses


def test_an_rce_model_predicts_with_its_output_and_non_me_reads_it(sets, rce_mlp):
    # Pang et al. predict from softmax(-Z); the model's output is -Z, so its
    # own argmax is the prediction (Z's argmax is the class it rules out) and
    # the non-ME detector, reading softmax(model(x)), sees the near-uniform
    # non-maximal predictions RCE trains for: entropy close to log(L - 1).
    model = rce_mlp[0]
    tx, ty = _xy(sets[1], 200)
    with torch.no_grad():
        out = model(tx)
    assert (out.argmax(1) == ty).float().mean() > 0.6
    assert (out.argmin(1) == ty).float().mean() < 0.05
    detector = make_detector("non-me")
    detector.fit(model, None)
    h = -detector.score(tx)
    assert h.median() > math.log(9) - 0.05
    assert torch.allclose(h, non_max_entropy(out))


def test_kdensity_flags_pgd_examples_of_an_rce_model(sets, rce_mlp):
    model, x, y, losses = rce_mlp
    assert losses[-1] < losses[0]
    tx, ty = _xy(sets[1], 200)
    with torch.no_grad():
        right = model(tx).argmax(1) == ty
    tx, ty = tx[right][:120], ty[right][:120]
    x_adv = _pgd_linf(model, tx, ty, torch.Generator().manual_seed(0), eps=0.1,
                      alpha=0.02, steps=10)
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != ty
    assert fooled.float().mean() > 0.3
    detector = KDensityDetector(model, x, y)
    clean, adv = detector.score(tx), detector.score(x_adv[fooled])
    assert torch.isfinite(clean).all()
    # Adversarial = low density: AUC of "-score" separating adversarial inputs.
    auc = _auc(-clean, -adv)
    assert auc > 0.7
    threshold = detector.fit_threshold(tx, fpr=0.05)
    assert (clean < threshold).float().mean() <= 0.06
    assert detector.is_adversarial(x_adv[fooled]).float().mean() > \
        detector.is_adversarial(tx).float().mean()


def test_mixup_inference_wrapper(sets):
    mx, my = _xy(sets[0], 256)
    model = _mlp().eval()
    x = torch.rand(8, 1, 28, 28)
    assert defenses.inference_wrappers() == ["mixup-inference", "bit-depth"]
    fresh = defenses.wrap("mixup-inference", model, mix_set_x=mx, mix_set_y=my,
                          samples=4)
    mi = defenses.wrap("mixup-inference", model, mix_set_x=mx, mix_set_y=my,
                       samples=4, seed=0)
    with torch.no_grad():
        out = mi(x)
        assert out.shape == (8, 10)
        assert torch.equal(out, mi(x))  # seeded: the same draws every call
        assert not torch.equal(fresh(x), fresh(x))  # default: new draws each call
        same = MixupInference(model, mx, my, lam=1.0, samples=3)(x)
        assert torch.allclose(same, F.log_softmax(model(x), 1), atol=1e-5)
        pred = model(x).argmax(1)
        gen = torch.Generator().manual_seed(1)
        pl = MixupInference(model, mx, my, mode="pl")
        ol = MixupInference(model, mx, my, mode="ol")
        ys = torch.sort(my).values
        assert torch.equal(ys[pl._draw(pred, gen)], pred)
        assert (ys[ol._draw(pred, gen)] != pred).all()
    other = MixupInference(model, mx, my, seed=5, samples=4)
    assert not torch.equal(other(x), out)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(mi(xg).sum(), xg)
    assert grad.shape == x.shape
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("method", ["mmc", "adp", "rce"])
def test_each_method_through_the_trainer(method, sets, tmp_path):
    small, test, _ = sets
    model = _mlp()
    params = {"members": 2} if method == "adp" else {}
    events = list(fit(model, small, test, method=method, params=params,
                                 epochs=1, batch_size=64, eval_n=32, eval_steps=2,
                                 device="cpu", lr=0.02, run_dir=tmp_path))
    done = events[-1]
    assert isinstance(done, Done)
    assert not any(isinstance(e, Log) and "best.safetensors" in e.message
                   for e in events)
    best = models.load(done.results["best"])
    assert best.meta.training["method"] == method
    if method == "adp":  # the trained ensemble, not the untouched base model
        assert isinstance(best, Ensemble)
        assert best.meta.arch_params["members"] == 2
        return
    x, _ = _xy(test, 32)
    with torch.no_grad():
        same = best(x).argmax(1) == model.eval()(x).argmax(1)
    assert same.float().mean() > 0.95  # equal up to float ties (MMC's shift)


def test_ensemble_members_are_independent_copies():
    base = _mlp()
    ens = make_ensemble(base, 2, seed=3)
    assert all(m is not base for m in ens.members)
    again = make_ensemble(base, 2, seed=3)
    assert torch.equal(ens.members[1].head.weight, again.members[1].head.weight)

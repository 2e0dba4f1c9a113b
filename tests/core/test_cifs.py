"""CIFS: the block (probe, relevance by gradient, mask), the arch option,
save/load, the ``cifs`` defense (prepare, loss, ball, resume, bad values)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from trainer_calls import fit

from explorer.core import defenses, models
from explorer.core.jobs import Done, Metric
from explorer.core.models import cifs
from explorer.core.params import ParamError

TINY = {"small-cnn": {"width": 4, "dense": 16},
        "preact-resnet18": {"width": 4},
        "wide-resnet": {"depth": 10, "widen_factor": 1}}
CHANNELS = {"small-cnn": 16, "preact-resnet18": 32, "wide-resnet": 64}


def _cnn(seed: int = 0, **params):
    torch.manual_seed(seed)
    return models.create("small-cnn", **{**TINY["small-cnn"], **params})


@pytest.mark.parametrize("arch", sorted(TINY))
def test_block_shapes_and_mask_mean_one(arch):
    torch.manual_seed(0)
    model = models.create(arch, cifs=True, **TINY[arch]).eval()
    (block,) = cifs.blocks(model)
    assert block.probe.in_features == CHANNELS[arch]
    assert block.probe.out_features == 10
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (5, 10)
    mask = cifs.channel_importance(model, x)
    assert mask.shape == (5, CHANNELS[arch])
    assert (mask >= 0).all()
    torch.testing.assert_close(mask.mean(1), torch.ones(5))
    assert block.last_probe.shape == (5, 10)
    with torch.no_grad():  # inspecting changed nothing
        torch.testing.assert_close(model(x), logits, atol=0, rtol=0)
    assert not cifs.blocks(models.create(arch, **TINY[arch]))


def test_relevance_is_the_gradient_of_the_weighted_top_k_probe_logits():
    torch.manual_seed(1)
    block = cifs.CIFS(12, 10, k=3, temperature=0.5)
    z = torch.randn(4, 12, 5, 5)
    pooled = z.mean(dim=(2, 3)).requires_grad_(True)
    logits = block.probe(pooled)
    probs = F.softmax(logits, dim=1).detach()
    top = probs.topk(3, dim=1)
    score = (top.values * logits.gather(1, top.indices)).sum()
    (grad,) = torch.autograd.grad(score, pooled)
    relevance = block.relevance(block.probe_logits(z))
    torch.testing.assert_close(relevance, grad)
    # the mask is C · softmax(g / T), and the output the masked features
    mask = 12 * F.softmax(grad / 0.5, dim=1)
    torch.testing.assert_close(block(z), z * mask[:, :, None, None])
    torch.testing.assert_close(block.last_mask, mask)
    # attacks see the mask's own dependence on the input, not a constant mask
    z.requires_grad_(True)
    (full,) = torch.autograd.grad(block(z).square().sum(), z)
    constant = 2 * z.detach() * mask[:, :, None, None].square()
    assert not torch.allclose(full, constant)
    # relevance follows the probe: other weights, another ranking of channels
    with torch.no_grad():
        block.probe.weight.mul_(-1)
    assert not torch.allclose(block.relevance(block.probe_logits(z.detach())),
                              grad)


def test_save_load_round_trip_keeps_the_block(tmp_path):
    model = _cnn(cifs=True, cifs_k=3, cifs_temperature=0.5).eval()
    path = models.save(model, tmp_path / "m.safetensors")
    back = models.load(path).eval()
    assert back.meta.arch_params["cifs"] is True
    assert back.meta.arch_params["cifs_k"] == 3
    (block,) = cifs.blocks(back)
    assert (block.k, block.temperature) == (3, 0.5)
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(back(x), model(x), atol=0, rtol=0)
    torch.testing.assert_close(cifs.channel_importance(back, x),
                               cifs.channel_importance(model, x))


def test_prepare_builds_the_variant_with_the_same_weights():
    plain = _cnn()
    made = defenses.create("cifs").prepare(plain)
    assert made is not plain
    assert len(cifs.blocks(made)) == 1
    assert made.meta.arch_params["cifs"] is True
    assert made.meta.arch_params["width"] == 4
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(made.state_dict()[name], value, atol=0, rtol=0)
    assert defenses.create("cifs").prepare(made) is made


def test_prepare_refuses_an_architecture_without_the_option():
    mlp = models.create("mlp", hidden=8, depth=1)
    with pytest.raises(ParamError, match=r"'mlp' has none.*small-cnn, "
                       r"preact-resnet18, wide-resnet"):
        defenses.create("cifs").prepare(mlp)


def test_bad_values_are_named():
    assert defenses.create("cifs").cfg == {"eps": 0.1, "alpha": 0.025,
                                           "steps": 7, "beta": 2.0}
    for params, word in (({"beta": -1.0}, "beta"), ({"eps": 2.0}, "eps"),
                         ({"steps": 0}, "steps"), ({"alpha": "x"}, "alpha")):
        with pytest.raises(ParamError, match=word):
            defenses.create("cifs", **params)
    for params, word in (({"cifs_k": 0}, "cifs_k"),
                         ({"cifs_temperature": 0.0}, "cifs_temperature"),
                         ({"cifs": "maybe"}, "cifs")):
        with pytest.raises(ParamError, match=word):
            models.create("small-cnn", **params)


def test_examples_stay_in_the_ball_and_the_box(sets):
    x, y = sets[0].as_tensors(0, 16)
    model = _cnn(cifs=True)
    defense = defenses.create("cifs", eps=0.1, alpha=0.05, steps=3)
    x_adv = defense.adversarial(model, x, y, torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert (x_adv - x).abs().max() > 0.05  # it moved
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    assert model.training
    assert all(p.requires_grad for p in model.parameters())


def test_loss_adds_the_probe_term_and_falls(sets):
    x, y = sets[0].as_tensors(0, 32)
    model = _cnn(cifs=True)
    gen = torch.Generator().manual_seed(0)
    with_probe = defenses.create("cifs", steps=2, beta=2.0)
    without = defenses.create("cifs", steps=2, beta=0.0)
    loss, _ = with_probe.loss(model, x[:32], y[:32],
                                   torch.Generator().manual_seed(3))
    plain, _ = without.loss(model, x[:32], y[:32], torch.Generator().manual_seed(3))
    probe_ce = F.cross_entropy(cifs.blocks(model)[0].last_probe, y[:32])
    torch.testing.assert_close(loss, plain + 2.0 * probe_ce)
    loss.backward()
    assert cifs.blocks(model)[0].probe.weight.grad.abs().sum() > 0
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(10):  # one batch again and again: the loss must fall
        loss, _ = with_probe.loss(model, x[:32], y[:32], gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.2


def _train(model, sets, run_dir, **kw):
    small, test = sets
    args = {"method": "cifs", "params": {"steps": 2}, "epochs": 2,
            "batch_size": 48, "eval_n": 32, "eval_steps": 2, "device": "cpu",
            "lr": 0.05, "schedule": "constant", "run_dir": run_dir}
    return list(fit(model, small, test, **{**args, **kw}))


def test_trains_and_resume_is_bit_exact(sets, tmp_path):
    straight = _cnn(cifs=True)
    events = _train(straight, sets, tmp_path / "a")
    assert isinstance(events[-1], Done)
    assert len([e for e in events if isinstance(e, Metric)
                and e.name == "train_loss"]) == 2
    first = _cnn(cifs=True)
    _train(first, sets, tmp_path / "b", epochs=1)
    resumed = _cnn(seed=123, cifs=True)  # weights come from the checkpoint
    events = _train(resumed, sets, tmp_path / "b", resume=True)
    assert events[-1].results["epochs"] == 2
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    best = models.load(next(tmp_path.joinpath("a").glob("best.*")))
    assert best.meta.arch_params["cifs"] is True
    assert best.meta.training["method"] == "cifs"


def test_channel_importance_job_clean_vs_adversarial(sets):
    from explorer.core.analysis.channels import channel_importance_job
    from explorer.core.jobs import Snapshot, run_to_end

    model = _cnn(cifs=True, cifs_temperature=0.05).eval()
    with torch.no_grad():
        cifs.blocks(model)[0].probe.weight.mul_(5)
    x, y = sets[1][0]
    events = list(channel_importance_job(model, x, int(y), eps=0.2, steps=3))
    (snap,) = [e for e in events if isinstance(e, Snapshot)]
    r = snap.arrays
    assert r["kind"] == "channels"
    torch.testing.assert_close(torch.from_numpy(r["clean"]),
                               cifs.channel_importance(model, x[None])[0])
    assert list(r["clean"][r["order"]]) == sorted(r["clean"], reverse=True)
    assert abs(r["x_adv"] - r["image"]).max() <= 0.2 + 1e-6
    assert not torch.allclose(torch.from_numpy(r["adv"]),
                              torch.from_numpy(r["clean"]))
    assert isinstance(events[-1], Done)
    plain = _cnn()
    with pytest.raises(ParamError, match="no CIFS block"):
        run_to_end(channel_importance_job(plain, x, int(y)))
    for kwargs, word in (({"eps": 0.0}, "eps"), ({"steps": 0}, "steps")):
        with pytest.raises(ParamError, match=word):
            run_to_end(channel_importance_job(model, x, int(y), **kwargs))

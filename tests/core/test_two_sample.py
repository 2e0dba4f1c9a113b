"""Two-sample tests under attack: MMD, the permutation test's level, the
deep kernel, the attack on the second sample, the job and its bad inputs."""

from __future__ import annotations

import pytest
import torch

from explorer.core import data
from explorer.core.certify.two_sample import (
    DeepKernel,
    GaussianKernel,
    attack_second_sample,
    mmd2_unbiased,
    permutation_test,
    power_criterion,
    train_deep_kernel,
)
from explorer.core.certify.two_sample_job import TESTS, two_sample_job
from explorer.core.jobs import Cancelled, CancelToken, Done, Progress, Snapshot
from explorer.core.params import ParamError

TINY = {"n_per_sample": 8, "trials": 1, "epochs": 2, "steps": 2,
        "permutations": 20, "eps": 0.05}


@pytest.fixture(scope="module")
def train():
    return data.load("fashion-mnist-mini", "train")


def images(ds, label: int, n: int, start: int = 0) -> torch.Tensor:
    idx = torch.nonzero(ds.labels == label).flatten()[start:start + n]
    return ds.images[idx].float() / 255


def test_mmd_is_near_zero_for_one_distribution_and_large_for_two():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g)
    far = torch.randn(200, 5, generator=g) + 3
    kernel = GaussianKernel.fit(x, y)
    same = float(mmd2_unbiased(kernel.matrix(torch.cat([x, y])), 200))
    apart = float(mmd2_unbiased(kernel.matrix(torch.cat([x, far])), 200))
    assert abs(same) < 0.01
    assert apart > 0.3


def test_the_permutation_test_holds_its_level_and_rejects_a_shift():
    """Rejection rate over 60 seeded trials on identical toy Gaussians at most
    alpha plus three binomial standard deviations (0.05 + 0.084); a mean
    shift of 1 is rejected every time."""
    g = torch.Generator().manual_seed(1)
    alpha, trials, rejected, shifted = 0.05, 60, 0, 0
    for _ in range(trials):
        x, y = torch.randn(20, 3, generator=g), torch.randn(20, 3, generator=g)
        kernel = GaussianKernel.fit(x, y)
        rejected += permutation_test(kernel, x, y, alpha=alpha, permutations=100,
                                     generator=g).reject
        shifted += permutation_test(kernel, x, y + 1, alpha=alpha,
                                    permutations=100, generator=g).reject
    assert rejected / trials <= alpha + 3 * (alpha * (1 - alpha) / trials) ** 0.5
    assert shifted / trials >= 0.9


def test_the_null_is_the_statistic_of_relabelled_samples():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 2, generator=g), torch.randn(5, 2, generator=g) + 1
    kernel = GaussianKernel(1.0)
    r = permutation_test(kernel, x, y, permutations=30,
                         generator=torch.Generator().manual_seed(3))
    order = torch.rand(30, 11, generator=torch.Generator().manual_seed(3)).argsort(1)
    z = torch.cat([x, y])
    direct = [float(mmd2_unbiased(kernel.matrix(z[o]), 6)) for o in order]
    assert r.null.tolist() == pytest.approx(direct, abs=1e-5)
    assert r.p_value == (1 + sum(v >= r.stat for v in direct)) / 31


def test_training_raises_the_deep_kernels_criterion_and_it_beats_the_gaussian(
        train):
    """Pullovers against shirts, 40 each: the trained deep kernel's criterion
    on held-out images exceeds the Gaussian kernel's (the difference lies in
    shapes, not in pixel-wise distance)."""
    torch.manual_seed(0)
    x, y = images(train, 2, 40), images(train, 6, 40)
    seen: list[float] = []
    kernel = train_deep_kernel(x, y, epochs=40, on_epoch=lambda _e, c: seen.append(c))
    assert seen[-1] > seen[0] + 0.5
    xt, yt = images(train, 2, 40, 40), images(train, 6, 40, 40)
    with torch.no_grad():
        deep = float(power_criterion(kernel.matrix(torch.cat([xt, yt])), 40))
        gauss = float(power_criterion(GaussianKernel.fit(x, y).matrix(
            torch.cat([xt, yt])), 40))
    assert deep > gauss


def test_the_attack_lowers_every_statistic_within_its_budget(train):
    x, y = images(train, 0, 30), images(train, 6, 30)
    deep = train_deep_kernel(x, y, epochs=20)
    kernels = [GaussianKernel.fit(x, y), deep]
    eps = 0.05
    y_adv = attack_second_sample(kernels, x, y, eps=eps, steps=10)
    assert float((y_adv - y).abs().max()) <= eps + 1e-6
    assert float(y_adv.min()) >= 0
    assert float(y_adv.max()) <= 1
    with torch.no_grad():
        for k in kernels:
            before = float(mmd2_unbiased(k.matrix(torch.cat([x, y])), 30))
            after = float(mmd2_unbiased(k.matrix(torch.cat([x, y_adv])), 30))
            assert after < before
    assert all(p.requires_grad for p in deep.parameters())  # left as found
    assert torch.equal(attack_second_sample(kernels, x, y, eps=0.0), y)


def test_the_job_reports_rates_per_test_and_is_reproducible(train):
    events = list(two_sample_job(train, **TINY))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert len(snaps) == 1
    a = snaps[0].arrays
    assert a["x"].shape == a["y"].shape == a["y_adv"].shape == (8, 1, 28, 28)
    assert abs(a["y_adv"] - a["y"]).max() <= 0.05 + 1e-6
    assert a["null"].shape == (20,)
    assert a["p_values"].shape == (len(TESTS), 3)
    done = events[-1]
    assert isinstance(done, Done)
    r = done.results
    for key in ("type1", "power", "power_attacked", "power_defended"):
        assert r[key] in (0.0, 1.0)
    assert set(r["tests"]) == set(TESTS)
    assert r["pair"] == "tops-shirts"
    assert "Shirt" in r["pair_text"]
    again = [e for e in two_sample_job(train, **TINY) if isinstance(e, Snapshot)]
    assert (again[0].arrays["p_values"] == a["p_values"]).all()


def test_the_job_cancels(train):
    token = CancelToken()
    events = two_sample_job(train, **{**TINY, "trials": 5}, token=token)
    assert isinstance(next(events), Progress)
    token.cancel()
    with pytest.raises(Cancelled):
        list(events)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"alpha": 0.0}, "alpha must be in (0, 1), got 0"),
    ({"alpha": 1.0}, "alpha must be in (0, 1), got 1"),
    ({"alpha": 1.5}, "alpha must be in [0, 1], got 1.5"),
    ({"n_per_sample": 1}, "n_per_sample must be in [2, 1000], got 1"),
    ({"eps": -0.1}, "eps must be in [0, 1], got -0.1"),
    ({"pair": "cats-dogs"}, "pair must be one of"),
    ({"trials": 0}, "trials must be in [1, 1000], got 0"),
    ({"n_per_sample": 700}, "n_per_sample 700 is too large"),
])
def test_bad_settings_are_clear_messages(train, kwargs, message):
    with pytest.raises(ParamError, match=None) as info:
        list(two_sample_job(train, **{**TINY, **kwargs}))
    assert message in str(info.value)


def test_a_deep_kernel_on_vectors_uses_a_small_network():
    kernel = DeepKernel((5,))
    z = torch.rand(7, 5)
    kernel.init_bandwidths(z)
    k = kernel.matrix(z)
    assert k.shape == (7, 7)
    assert torch.allclose(k.diagonal(), torch.ones(7))


def test_training_leaves_the_global_generator_alone():
    x, y = torch.rand(6, 4), torch.rand(6, 4) + 0.5
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = train_deep_kernel(x, y, epochs=1, seed=9)
    assert torch.equal(torch.rand(3), expected)
    b = train_deep_kernel(x, y, epochs=1, seed=9)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(),
                                                 strict=True))

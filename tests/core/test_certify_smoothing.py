"""Randomized smoothing: CERTIFY and PREDICT as in Cohen et al. (2019)."""

import numpy as np
import pytest
import torch
from scipy.stats import beta, binomtest, norm
from torch import nn

from explorer.core.certify import smoothing
from explorer.core.jobs import (
    Cancelled,
    CancelToken,
    Done,
    Progress,
    Snapshot,
    run_to_end,
)
from explorer.core.params import ParamError


class Constant(nn.Module):
    """Always class ``c`` of ``k``, whatever the noise."""

    def __init__(self, c: int = 2, k: int = 4) -> None:
        super().__init__()
        self.c, self.k = c, k

    def forward(self, x):
        out = torch.zeros(len(x), self.k)
        out[:, self.c] = 1.0
        return out


class SignOfMean(nn.Module):
    """Class 1 when the image's mean exceeds ``t``, else 0: on a constant
    image at ``t`` Gaussian noise splits the samples evenly between them."""

    def __init__(self, t: float = 0.5) -> None:
        super().__init__()
        self.t = t

    def forward(self, x):
        m = x.flatten(1).mean(1) - self.t
        return torch.stack([-m, m], 1)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()


def paper_certify(model, x, sigma, n0, n, alpha, batch, gen):
    """Cohen et al.'s CERTIFY written out directly (their core.py)."""
    def sample_noise(num):
        counts = np.zeros(3, dtype=int)
        remaining = num
        with torch.no_grad():
            while remaining:
                size = min(batch, remaining)
                remaining -= size
                b = x.repeat((size, 1, 1, 1))
                noise = torch.randn(b.shape, generator=gen) * sigma
                for p in model(b + noise).argmax(1).tolist():
                    counts[p] += 1
        return counts

    c_a = int(sample_noise(n0).argmax())
    n_a = int(sample_noise(n)[c_a])
    p_a = beta.ppf(alpha, n_a, n - n_a + 1)  # one-sided Clopper-Pearson
    if not p_a > 0.5:
        return -1, 0.0
    return c_a, sigma * norm.ppf(p_a)


def test_certify_agrees_with_the_papers_algorithm():
    model = tiny_model()
    x = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(1))
    kw = {"sigma": 0.5, "n0": 10, "n": 300, "alpha": 0.01, "batch": 64}
    expected = paper_certify(model, x, gen=torch.Generator().manual_seed(7), **kw)
    cert = smoothing.certify(model, x, sigma=0.5, samples0=10, samples=300,
                             alpha=0.01, batch_size=64,
                             generator=torch.Generator().manual_seed(7))
    assert expected[0] != -1, "the case must certify something to compare radii"
    assert cert.prediction == expected[0]
    assert cert.radius == pytest.approx(expected[1], rel=1e-9)
    assert cert.counts.sum() == 300
    assert cert.counts0.sum() == 10


def test_a_constant_classifier_certifies_sigma_times_the_quantile():
    x = torch.rand(1, 4, 4)
    cert = smoothing.certify(Constant(2), x, sigma=0.25, samples0=5, samples=1000,
                             alpha=0.001)
    p_lower = 0.001 ** (1 / 1000)  # Clopper-Pearson bound when all n agree
    assert cert.prediction == 2
    assert cert.p_lower == pytest.approx(p_lower, rel=1e-9)
    assert cert.radius == pytest.approx(0.25 * norm.ppf(p_lower), rel=1e-9)
    assert cert.counts.tolist() == [0, 0, 1000, 0]
    assert smoothing.max_radius(0.25, 1000, 0.001) == pytest.approx(cert.radius)


def test_abstains_when_the_noise_splits_two_classes():
    x = torch.full((1, 4, 4), 0.5)
    cert = smoothing.certify(SignOfMean(), x, sigma=0.5, samples0=50, samples=400,
                             alpha=0.001)
    assert cert.prediction == smoothing.ABSTAIN
    assert cert.radius is None
    assert cert.p_lower <= 0.5
    assert smoothing.predict(SignOfMean(), x, sigma=0.5, samples=400,
                             alpha=0.001) == smoothing.ABSTAIN
    # far from the threshold both procedures decide
    far = torch.full((1, 4, 4), 0.9)
    assert smoothing.predict(SignOfMean(), far, sigma=0.5, samples=400,
                             alpha=0.001) == 1


def test_predict_uses_the_two_sided_test_of_the_top_two_counts():
    counts = np.array([0, 60, 40, 0])
    p = binomtest(60, 100, 0.5).pvalue
    assert smoothing.predict_from_counts(counts, alpha=p + 1e-9) == 1
    assert smoothing.predict_from_counts(counts, alpha=p - 1e-9) == smoothing.ABSTAIN


def test_lower_bound_is_scipys_clopper_pearson():
    assert smoothing.lower_confidence_bound(90, 100, 0.05) == pytest.approx(
        beta.ppf(0.05, 90, 11), rel=1e-9)
    assert smoothing.lower_confidence_bound(0, 100, 0.05) == 0.0


@pytest.mark.parametrize(("values", "needle"), [
    ({"sigma": 0.0}, "sigma"), ({"sigma": -1.0}, "sigma"),
    ({"alpha": 0.0}, "alpha"), ({"alpha": 1.0}, "alpha"),
    ({"samples0": 0}, "samples0"), ({"samples": 0}, "samples"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_parameters_name_themselves(values, needle):
    kw = {"sigma": 0.25, "samples0": 5, "samples": 10, "alpha": 0.01,
          "batch_size": 8, **values}
    with pytest.raises(ParamError, match=needle):
        smoothing.certify(Constant(), torch.rand(1, 4, 4), **kw)
    with pytest.raises(ParamError, match=needle):
        run_to_end(smoothing.certify_job(Constant(), (torch.rand(2, 1, 4, 4),
                                                      torch.zeros(2)), 2, **kw))


def test_bad_radii_and_image_count():
    data = (torch.rand(2, 1, 4, 4), torch.zeros(2))
    with pytest.raises(ParamError, match="radii"):
        run_to_end(smoothing.certify_job(Constant(), data, 2, radii=[-0.5]))
    with pytest.raises(ParamError, match="n_images"):
        run_to_end(smoothing.certify_job(Constant(), data, 0))


def test_job_events_and_results():
    x = torch.rand(3, 1, 4, 4)
    y = torch.tensor([2, 0, 2])
    events = list(smoothing.certify_job(Constant(2), (x, y), 3, samples0=5,
                                        samples=200, alpha=0.01, batch_size=64,
                                        radii=[0, 0.25, 0.4, 5.0]))
    snaps = [e for e in events if isinstance(e, Snapshot)]
    assert [int(s.arrays["index"]) for s in snaps] == [0, 1, 2]
    assert all(int(s.arrays["prediction"]) == 2 for s in snaps)
    assert any(isinstance(e, Progress) for e in events)
    done = events[-1]
    assert isinstance(done, Done)
    r = done.results
    radius = 0.25 * norm.ppf(0.01 ** (1 / 200))
    assert r["radii"][1] is None  # certified, but not its label
    assert r["radii"][0] == pytest.approx(radius) == r["radii"][2]
    assert 0.4 < radius < 5.0
    assert r["certified_acc"] == {0.0: pytest.approx(2 / 3), 0.25: pytest.approx(2 / 3),
                                  0.4: pytest.approx(2 / 3), 5.0: 0.0}
    assert r["clean_acc"] == pytest.approx(2 / 3)
    assert r["abstain_rate"] == 0.0


def test_job_is_reproducible_per_seed():
    model = tiny_model()
    data = (torch.rand(2, 1, 4, 4), torch.tensor([0, 1]))
    kw = {"sigma": 1.0, "samples0": 5, "samples": 50, "alpha": 0.1, "batch_size": 16}

    def counts(seed):
        return [s.arrays["counts"].tolist() for s in smoothing.certify_job(
            model, data, 2, seed=seed, **kw) if isinstance(s, Snapshot)]

    assert counts(3) == counts(3)
    assert counts(3) != counts(4)


def test_job_cancels_between_batches():
    token = CancelToken()
    data = (torch.rand(4, 1, 4, 4), torch.zeros(4))
    events = smoothing.certify_job(Constant(), data, 4, samples=10_000,
                                   batch_size=10, token=token)
    assert isinstance(next(events), Progress)
    token.cancel()
    with pytest.raises(Cancelled):
        next(events)


@pytest.mark.slow
def test_the_gaussian_builtin_certifies_where_the_standard_one_cannot():
    from explorer.core import data, models

    ds = data.load("fashion-mnist-mini", "test")
    kw = {"sigma": 0.25, "samples0": 20, "samples": 200, "alpha": 0.001,
          "radii": [0.25], "batch_size": 220}
    gaussian = run_to_end(smoothing.certify_job(
        models.load_builtin("fmnist-cnn-gaussian"), ds, 10, **kw))
    standard = run_to_end(smoothing.certify_job(
        models.load_builtin("fmnist-cnn-standard"), ds, 10, **kw))
    assert gaussian["certified_acc"][0.25] >= 0.5
    assert gaussian["certified_acc"][0.25] > standard["certified_acc"][0.25]


def test_certified_accuracy_counts_radii_at_or_above_each_level():
    radii = [0.3, None, 0.1, 0.5]
    assert smoothing.certified_accuracy(radii, [0, 0.2, 0.5, 0.6]) == {
        0.0: 0.75, 0.2: 0.5, 0.5: 0.25, 0.6: 0.0}
    assert smoothing.certified_accuracy([], [0.0]) == {0.0: 0.0}

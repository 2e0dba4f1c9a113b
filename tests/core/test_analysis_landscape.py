"""Loss landscapes: filter normalisation, exact restore, the centre, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explorer.core import models
from explorer.core.analysis.input_landscape import input_landscape
from explorer.core.analysis.landscape import (
    filter_normalized_direction,
    load_npz,
    roughness,
    save_npz,
    weight_landscape,
    weight_landscape_job,
)
from explorer.core.analysis.result_files import ResultFileError
from explorer.core.jobs import Cancelled, CancelToken, Progress
from explorer.core.params import ParamError


def tiny(seed: int = 0):
    torch.manual_seed(seed)
    return models.create("small-cnn", in_shape=(1, 8, 8), num_classes=3, width=2,
                         dense=8)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(40, 1, 8, 8, generator=g), torch.randint(0, 3, (40,),
                                                               generator=g)


def test_filter_normalised_direction_matches_filter_norms():
    model = tiny()
    dirs = filter_normalized_direction(model, torch.Generator().manual_seed(3))
    for p, d in zip(model.parameters(), dirs, strict=True):
        assert d.shape == p.shape
        if p.dim() <= 1:
            assert not d.any()  # biases stay put
        else:
            assert torch.allclose(d.flatten(1).norm(dim=1),
                                  p.detach().flatten(1).norm(dim=1), rtol=1e-5)


def test_weights_restored_bit_exactly_and_centre_is_the_loss(batch):
    x, y = batch
    model = tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = weight_landscape(model, x, y, grid=3, batch_size=16)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        logits = model.eval()(x)
    assert r["loss"].shape == (3, 3)
    assert r["loss"][1, 1] == pytest.approx(F.cross_entropy(logits, y).item(),
                                            rel=1e-6)
    assert r["acc"][1, 1] == pytest.approx((logits.argmax(1) == y).float().mean())
    assert r["loss"].max() > r["loss"][1, 1]


def test_restored_after_cancel(batch):
    x, y = batch
    model = tiny()
    before = [p.clone() for p in model.parameters()]
    token = CancelToken()
    events = weight_landscape_job(model, x, y, grid=3, token=token)
    with pytest.raises(Cancelled):  # noqa: PT012 - cancel after the first point
        for event in events:
            if isinstance(event, Progress) and event.done >= 1:
                token.cancel()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(),
                                                   strict=True))


def test_interpolation_reaches_the_other_checkpoint(batch):
    x, y = batch
    model, other = tiny(0), tiny(1)
    r = weight_landscape(model, x, y, dims=1, grid=5, other=other)
    assert r["coords"].tolist() == [-0.5, 0.0, 0.5, 1.0, 1.5]
    with torch.no_grad():
        at_other = F.cross_entropy(other.eval()(x), y).item()
    assert r["loss"][3] == pytest.approx(at_other, rel=1e-4)
    with pytest.raises(ParamError, match="has shape"):
        weight_landscape(model, x, y, other=models.create(
            "small-cnn", in_shape=(1, 8, 8), num_classes=3, width=3, dense=8))


def test_input_landscape_centre_and_shape():
    model = tiny()
    x = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(2))
    r = input_landscape(model, x, 1, grid=5, eps=0.05)
    assert r["loss"].shape == (5, 5)
    assert r["coords"][[0, -1]].tolist() == pytest.approx([-0.1, 0.1])
    with torch.no_grad():
        centre = F.cross_entropy(model.eval()(x[None]), torch.tensor([1])).item()
    assert r["loss"][2, 2] == pytest.approx(centre, rel=1e-5)
    assert set(np.unique(r["directions"])) <= {-1.0, 0.0, 1.0}


def test_roughness_tells_smooth_from_jagged():
    a = np.linspace(-1, 1, 21)
    smooth = a[:, None] ** 2 + a[None, :] ** 2
    jagged = smooth + np.random.default_rng(0).uniform(0, 1, smooth.shape)
    assert roughness(smooth) < 0.5
    assert roughness(jagged) > 2.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"grid": 1}, "grid must be an integer"),
    ({"dims": 3}, "dims must be 1 or 2, got 3"),
    ({"span": 0.0}, "span must be positive"),
])
def test_bad_weight_inputs(batch, kwargs, message):
    with pytest.raises(ParamError, match=message):
        weight_landscape(tiny(), *batch, **kwargs)


def test_bad_input_directions():
    with pytest.raises(ParamError, match="directions must be two of"):
        input_landscape(tiny(), torch.rand(1, 8, 8), 0, directions=("grad", "up"))


def test_npz_round_trip_and_validation(tmp_path, batch):
    r = weight_landscape(tiny(), *batch, dims=1, grid=3)
    path = save_npz(tmp_path / "w.npz", {**r, "meta": {"model": "tiny"}})
    back = load_npz(path, kind="weights-1d")
    assert back["meta"] == {"model": "tiny"}
    assert np.array_equal(back["loss"], r["loss"])
    with pytest.raises(ResultFileError, match="holds a 'weights-1d' result, not"):
        load_npz(path, kind="slice")
    with pytest.raises(ResultFileError, match="needs loss"):
        save_npz(tmp_path / "x.npz", {"kind": "weights-1d", "coords": [0],
                                      "acc": [1]})
    with pytest.raises(ResultFileError, match="kind must be one of"):
        save_npz(tmp_path / "x.npz", {"kind": "pie"})
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ResultFileError, match="not a result file"):
        load_npz(bad)
    with pytest.raises(ResultFileError, match="no such result file"):
        load_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "partial.npz", kind=np.array("weights-1d"), coords=[0])
    with pytest.raises(ResultFileError, match="needs loss, acc"):
        load_npz(tmp_path / "partial.npz")

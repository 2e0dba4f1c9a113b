"""The trainer's per-epoch strip of adversarial examples."""

from __future__ import annotations

import numpy as np
import torch
from trainer_calls import fit

from explorer.core import models
from explorer.core.defenses.evaluation import STRIP, STRIP_SIZE, adversarial_strip
from explorer.core.jobs import Metric, Snapshot


def _mlp():
    torch.manual_seed(0)
    return models.create("mlp", in_shape=(1, 28, 28), hidden=32, depth=1)


def test_one_strip_per_epoch_after_the_epoch_metrics(sets, tmp_path):
    small, test = sets
    eps = 0.1
    events = list(fit(
        _mlp(), small, test, method="standard", epochs=2, batch_size=64,
        eval_n=64, eval_eps=eps, eval_steps=2, device="cpu", run_dir=tmp_path))
    strips = [e for e in events if isinstance(e, Snapshot) and e.label == STRIP]
    assert [s.step for s in strips] == [1, 2]
    assert all(s.total == 2 for s in strips)
    # Each strip follows its epoch's metrics (the curves show that epoch).
    first = events.index(strips[0])
    assert any(isinstance(e, Metric) and e.name == "test_robust_acc" and e.step == 1
               for e in events[:first])
    x, y = test.as_tensors(0, STRIP_SIZE)
    for s in strips:
        a = s.arrays
        assert a["clean"].shape == a["adversarial"].shape == (STRIP_SIZE, 1, 28, 28)
        assert a["clean"].dtype == a["adversarial"].dtype == np.float32
        for key in ("labels", "pred_clean", "pred_adv"):
            assert a[key].shape == (STRIP_SIZE,)
            assert a[key].dtype == np.int64
        np.testing.assert_allclose(a["clean"], x.numpy())
        np.testing.assert_array_equal(a["labels"], y.numpy())
        delta = a["adversarial"] - a["clean"]
        assert np.abs(delta).max() <= eps + 1e-6
        assert np.abs(delta).max() > eps / 2  # the attack moved the pixels
        assert a["adversarial"].min() >= 0.0
        assert a["adversarial"].max() <= 1.0


def test_strip_predictions_are_the_models(sets):
    _, test = sets
    model = _mlp()
    x, y = test.as_tensors(0, 20)
    snap = adversarial_strip(model, x, y, eps=0.2, steps=3, device=torch.device("cpu"),
                             epoch=3, epochs=5, n=4)
    assert (snap.step, snap.total, snap.label) == (3, 5, STRIP)
    with torch.no_grad():
        expected = model.eval()(x[:4]).argmax(1).numpy()
        adv = model(torch.from_numpy(snap.arrays["adversarial"])).argmax(1).numpy()
    np.testing.assert_array_equal(snap.arrays["pred_clean"], expected)
    np.testing.assert_array_equal(snap.arrays["pred_adv"], adv)


def test_no_budget_means_the_strip_shows_the_clean_images(sets):
    _, test = sets
    x, y = test.as_tensors(0, 8)
    snap = adversarial_strip(_mlp(), x, y, eps=0.0, steps=3,
                             device=torch.device("cpu"), epoch=1, epochs=1)
    np.testing.assert_array_equal(snap.arrays["adversarial"], snap.arrays["clean"])
    np.testing.assert_array_equal(snap.arrays["pred_adv"], snap.arrays["pred_clean"])


def test_the_run_log_and_json_lines_leave_the_strip_out(sets, tmp_path):
    """Pixels are for the live view: the run DB and ``--json`` skip them."""
    from explorer.cli.running import event_json
    from explorer.store import Workspace

    _, test = sets
    x, y = test.as_tensors(0, 8)
    snap = adversarial_strip(_mlp(), x, y, eps=0.1, steps=1,
                             device=torch.device("cpu"), epoch=1, epochs=1)
    assert event_json(snap) is None
    ws = Workspace.open(tmp_path / "ws")
    try:
        run = ws.create_run("train", {"epochs": 1})
        ws.record(run.id, snap)
        assert ws.metrics(run.id) == {}
        assert ws.logs(run.id) == []
    finally:
        ws.close()

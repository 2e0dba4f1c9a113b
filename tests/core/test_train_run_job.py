"""The whole-run training job the GUI uses."""

from __future__ import annotations

import pytest

from explorer.core.defenses import checkpoint
from explorer.core.defenses.run_job import PLAN, train_run
from explorer.core.jobs import Cancelled, CancelToken, Done, Metric, Snapshot

CONFIG = {"data": "fashion-mnist-mini", "root": None, "arch": "mlp",
          "arch_params": {"hidden": 8, "depth": 1}, "defense": "standard",
          "params": {}, "epochs": 1, "batch_size": 32, "optimizer": "sgd",
          "lr": None, "schedule": "constant", "seed": 0, "eval_eps": 0.1,
          "eval_steps": 1, "eval_n": 16, "checkpoint_minutes": 5.0,
          "limit_train": 128}


def test_train_run_plans_trains_and_finishes(tmp_path):
    events = list(train_run(CONFIG, run_dir=tmp_path, device="cpu"))
    plan = next(e for e in events if isinstance(e, Snapshot))
    assert plan.label == PLAN
    assert int(plan.arrays["steps_per_epoch"]) == 4
    assert isinstance(events[-1], Done)
    assert events[-1].results["epochs"] == 1


def test_cancel_at_a_yield_saves_the_position(tmp_path):
    token = CancelToken()
    job = train_run({**CONFIG, "batch_size": 8}, run_dir=tmp_path, device="cpu",
                    token=token)
    for event in job:
        if isinstance(event, Metric) and event.name == "batch_loss":
            break
    token.cancel()
    # what the GUI runner does with a job suspended at a yield
    with pytest.raises(Cancelled):
        job.throw(Cancelled())
    position = checkpoint.load(tmp_path / "last.pt")["position"]
    assert position["batch"] > 0

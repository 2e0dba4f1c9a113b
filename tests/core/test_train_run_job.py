"""The whole-run training job the GUI uses."""

from __future__ import annotations

import pytest
import torch

from explorer.core.defenses import TrainingConfig
from explorer.core.defenses.run_job import PLAN, train_run
from explorer.core.jobs import Cancelled, CancelToken, Done, Metric, Snapshot
from explorer.core.training import checkpoint

CONFIG = TrainingConfig(data="fashion-mnist-mini", arch="mlp",
                        arch_params={"hidden": 8, "depth": 1}, defense="standard",
                        epochs=1, batch_size=32, schedule="constant",
                        eval_steps=1, eval_n=16, limit_train=128)


def test_train_run_plans_trains_and_finishes(tmp_path):
    events = list(train_run(CONFIG, run_dir=tmp_path, device="cpu"))
    plan = next(e for e in events if isinstance(e, Snapshot))
    assert plan.label == PLAN
    assert int(plan.arrays["steps_per_epoch"]) == 4
    # 13 of the 128 images held out (10 %), 115 trained on
    assert (int(plan.arrays["val_n"]), int(plan.arrays["n_train"])) == (13, 115)
    assert isinstance(events[-1], Done)
    assert events[-1].results["epochs"] == 1
    assert (events[-1].results["selected_on"], events[-1].results["val_n"]) == (
        "validation", 13)


def test_the_same_seed_gives_the_same_run(tmp_path):
    """The seed draws the initial weights too, so a run can be repeated."""
    def final(config, folder):
        list(train_run(config, run_dir=tmp_path / folder, device="cpu"))
        return checkpoint.load(tmp_path / folder / "last.pt")["model"]

    first, again = final(CONFIG, "a"), final(CONFIG, "b")
    other = final(CONFIG.replace(seed=1), "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_cancel_at_a_yield_saves_the_position(tmp_path):
    token = CancelToken()
    job = train_run(CONFIG.replace(batch_size=8), run_dir=tmp_path, device="cpu",
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


def test_the_config_round_trips_through_json_and_reads_old_runs():
    stored = CONFIG.to_json()
    assert TrainingConfig.from_json(stored) == CONFIG
    older = {k: v for k, v in stored.items() if k not in ("momentum", "weight_decay")}
    older["unknown_future_key"] = 1
    assert TrainingConfig.from_json(older) == CONFIG


def test_the_split_round_trips_and_older_runs_had_none():
    stored = CONFIG.to_json()
    assert (stored["val_fraction"], stored["val_max"]) == (0.1, 5000)
    assert stored["selected_on"] == "validation"  # said, and ignored on reading
    assert TrainingConfig.from_json(stored) == CONFIG
    none = CONFIG.replace(val_fraction=0)
    assert (none.val_fraction, none.selected_on) == (0.0, "last")
    assert none.to_json()["selected_on"] == "last"
    # A run stored before the fields existed trained on all its images; it
    # loads, and resumes, without a split.
    older = {k: v for k, v in stored.items()
             if k not in ("val_fraction", "val_max", "selected_on")}
    again = TrainingConfig.from_json(older)
    assert (again.val_fraction, again.val_max, again.selected_on) == (
        0.0, 5000, "last")


def test_a_split_that_leaves_nothing_to_train_on_fails_before_the_model(tmp_path):
    from explorer.core.params import ParamError

    job = train_run(CONFIG.replace(limit_train=1), run_dir=tmp_path, device="cpu")
    with pytest.raises(ParamError, match=r"val_fraction 0\.1 holds out 1 of the 1"):
        list(job)
    assert not (tmp_path / "last.pt").exists()


def test_augment_round_trips_and_older_runs_trained_without_it():
    for mode in ("auto", "none", "crop-flip", "crop", "flip"):
        config = CONFIG.replace(augment=mode)
        assert TrainingConfig.from_json(config.to_json()).augment == mode
    assert CONFIG.augment == "auto"  # new runs: crop-flip on 32×32 colour sets
    # A run stored before the field existed trained, and resumes, without.
    older = {k: v for k, v in CONFIG.to_json().items() if k != "augment"}
    assert TrainingConfig.from_json(older).augment == "none"
    # What a front end records when a run starts: "auto" made concrete.
    assert CONFIG.resolved((3, 32, 32)).augment == "crop-flip"
    assert CONFIG.resolved((1, 28, 28)).augment == "none"
    assert CONFIG.replace(augment="flip").resolved((3, 32, 32)).augment == "flip"


@pytest.mark.parametrize(("change", "message"), [
    ({"epochs": 0}, "epochs must be a whole number of at least 1, got 0"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam"),
    ({"schedule": "linear"}, "schedule must be one of piecewise"),
    ({"lr": -1.0}, "lr must be positive, got -1.0"),
    ({"eval_eps": 2.0}, r"eval_eps must be in \[0, 1\], got 2.0"),
    ({"augment": "mixup"}, "augment must be one of auto, none, crop-flip, crop, "
                           "flip, got 'mixup'"),
    ({"val_fraction": 1.0}, "val_fraction must be at least 0 and below 1, got 1.0"),
    ({"val_fraction": -0.5}, "val_fraction must be at least 0 and below 1"),
    ({"val_max": 0}, "val_max must be a whole number of at least 1, got 0"),
])
def test_bad_settings_name_the_setting(change, message):
    from explorer.core.params import ParamError

    with pytest.raises(ParamError, match=message):
        CONFIG.replace(**change)


def test_resume_clears_what_a_killed_save_left(tmp_path):
    """kill -9 during a save leaves the atomic write's temporary file."""
    token = CancelToken()
    job = train_run(CONFIG.replace(batch_size=8), run_dir=tmp_path, device="cpu",
                    token=token)
    for event in job:
        if isinstance(event, Metric) and event.name == "batch_loss":
            break
    token.cancel()
    with pytest.raises(Cancelled):
        job.throw(Cancelled())
    stale = tmp_path / ".best.safetensors.0123456789ab.tmp"
    stale.write_bytes(b"half a file")
    events = list(train_run(CONFIG.replace(batch_size=8), run_dir=tmp_path,
                            device="cpu", resume=True))
    assert isinstance(events[-1], Done)
    assert not stale.exists()



def test_more_training_images_than_the_set_has_trains_on_all(tmp_path, sets):
    small, test = sets  # 256 training images
    events = list(train_run(CONFIG.replace(limit_train=1000), run_dir=tmp_path,
                            device="cpu", train_set=small, test_set=test))
    plan = next(e for e in events if isinstance(e, Snapshot))
    assert int(plan.arrays["val_n"]) + int(plan.arrays["n_train"]) == 256

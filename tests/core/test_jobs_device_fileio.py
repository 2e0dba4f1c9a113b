"""Job events, cancel token, device choice, atomic writes, the accuracy job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from explorer.core import device as devices
from explorer.core.analysis.accuracy import clean_accuracy
from explorer.core.fileio import atomic_path, atomic_write_json
from explorer.core.jobs import (
    Cancelled,
    CancelToken,
    Done,
    Progress,
    ProgressThrottle,
    run_to_end,
)


class _Lookup(nn.Module):
    """Predicts the label stored in the first pixel: a model with known output."""

    def forward(self, x):
        k = (x.flatten(1)[:, 0] * 10).round().long().clamp(0, 9)
        return nn.functional.one_hot(k, 10).float()


class _Tensors(torch.utils.data.Dataset):
    classes = tuple(f"c{i}" for i in range(10))

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def _data(n=50, wrong=5):
    y = torch.arange(n) % 10
    pred = y.clone()
    pred[:wrong] = (pred[:wrong] + 1) % 10
    x = torch.zeros(n, 1, 4, 4)
    x[:, 0, 0, 0] = pred.float() / 10
    return _Tensors(x, y)


def test_cancel_token():
    token = CancelToken()
    token.check()
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.check()


def test_progress_throttle_limits_events():
    throttle = ProgressThrottle(0.1)
    due = [i for i in range(1, 1001) if throttle.due(i, 1000)]
    assert len(due) <= 11
    assert due[-1] == 1000


def test_clean_accuracy_counts_and_confusion():
    model = _Lookup().train()
    results = run_to_end(clean_accuracy(model, _data(), batch_size=16))
    assert results["clean_acc"] == pytest.approx(45 / 50)
    confusion = np.array(results["confusion"])
    assert confusion.sum() == 50
    assert confusion[0, 1] == 1  # item 0: true 0, predicted 1
    assert results["per_class_acc"][0] == pytest.approx(4 / 5)
    assert model.training, "the job must restore the model's mode"


def test_clean_accuracy_limit_and_progress():
    events = list(clean_accuracy(_Lookup(), _data(100, wrong=0), batch_size=10,
                                 limit=30))
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == 3
    assert isinstance(events[-1], Done)
    assert events[-1].results["n"] == 30


def test_clean_accuracy_cancels_between_batches():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(clean_accuracy(_Lookup(), _data(), token=token))


def test_device_choice():
    assert devices.pick("cpu").type == "cpu"
    assert devices.pick("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(devices.DeviceError, match="device must be one of"):
        devices.pick("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(devices.DeviceError, match="not available"):
            devices.pick("cuda")
    assert "cpu" in devices.describe(torch.device("cpu"))


def test_device_from_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert devices.pick(None).type == "cpu"


def test_configure_threads_leaves_a_core(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("EXPLORER_THREADS", raising=False)
    try:
        n = devices.configure_threads(leave_for_ui=1)
        assert n == max(1, (__import__("os").cpu_count() or 1) - 1)
    finally:
        torch.set_num_threads(before)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "state.json"
    atomic_write_json(target, {"epoch": 1})
    atomic_write_json(target, {"epoch": 2})
    assert json.loads(target.read_text()) == {"epoch": 2}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"epoch": 1})

    def crash_mid_write():
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        crash_mid_write()
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]



def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path):
    from explorer.core.fileio import remove_stale_temporaries

    left = tmp_path / ".best.safetensors.1626a79becf4.tmp"  # SIGKILL mid-write
    left.write_bytes(b"half a file")
    kept = [tmp_path / "last.pt", tmp_path / ".notes.tmp", tmp_path / ".a.xyz.tmp"]
    for path in kept:
        path.write_bytes(b"whole")
    assert remove_stale_temporaries(tmp_path) == [left]
    assert sorted(tmp_path.iterdir()) == sorted(kept)

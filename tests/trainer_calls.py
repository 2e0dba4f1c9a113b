"""Tests call the trainer with a few settings changed: keyword style."""

from __future__ import annotations

from typing import Any

from explorer.core import defenses
from explorer.core.defenses import TrainingConfig

CALL_KEYS = ("run_dir", "device", "resume", "token")


def fit(model, train_set, test_set, **settings: Any):
    """``defenses.train`` with ``settings`` split into the TrainingConfig
    (``method`` is the defense) and the call's own arguments."""
    call = {k: settings.pop(k) for k in CALL_KEYS if k in settings}
    if "method" in settings:
        settings["defense"] = settings.pop("method")
    return defenses.train(model, train_set, test_set, TrainingConfig(**settings),
                          **call)

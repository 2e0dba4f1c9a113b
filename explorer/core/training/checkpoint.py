"""Training checkpoints: tensors and plain values only, written atomically.

Everything a resumed run needs to continue bit for bit — weights, optimizer,
schedule position, epoch and batch, the epoch's permutation, and the states of
every random generator (torch, NumPy, Python, the trainer's own) — is stored
as tensors, ints, floats, strings, lists and dicts, so the file loads with
``torch.load(..., weights_only=True)`` and no pickled code runs.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.core.fileio import atomic_save, reason


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or from a different run."""


def rng_state() -> dict[str, Any]:
    """The global generators' states as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "python": {"version": int(version),
                   "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32),
                         npy["pos"], npy["has_gauss"], npy["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()),
                     py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename.

    Serialised in memory first: torch's own file writer turns a full disk
    into "enforce fail at inline_container.cc"; a plain write says which
    file and why (no space, file too large, read-only).
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_save(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save` (tensors and plain values)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint to resume from: {path} does not exist")
    try:
        # Only tensors and plain containers are allowed back in.
        state = torch.load(path, map_location="cpu", weights_only=True)  # noqa: TID251
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one message
        raise CheckpointError(f"cannot read checkpoint {path}: {reason(exc)}") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a training checkpoint")
    return state

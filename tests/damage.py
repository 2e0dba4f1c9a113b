"""Damaged copies of valid files, and the check every loader must pass.

A damaged file is truncated, bit-flipped, zeroed in a stretch, replaced by
random bytes, or random bytes behind the right magic number (so it gets past
format sniffing into the parser). Flips favour the first and last kilobyte,
where headers, zip directories and footers live. Every load of such a file
must either succeed (a flipped float is still a model) or raise the project's
own error whose message is one line and names the file; anything else — a
traceback, a hang, another exception type — fails the test. The counts are
printed at the end of the run (tests/conftest.py).
"""

from __future__ import annotations

import collections
import functools
import io
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image

from explorer.core import models
from explorer.core.analysis.result_files import save_npz
from explorer.core.data.idx import write_idx
from explorer.store import Workspace

TRIED: collections.Counter[str] = collections.Counter()
REFUSED: collections.Counter[str] = collections.Counter()

# Deterministic in CI; EXPLORER_DAMAGE_EXAMPLES=2000 for a longer local hunt.
EXAMPLES = int(os.environ.get("EXPLORER_DAMAGE_EXAMPLES", "120"))
DAMAGE_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
KINDS = ("truncated", "bit-flipped", "zeroed", "random bytes", "random behind magic")


@st.composite
def damaged(draw, original: bytes) -> tuple[str, bytes]:
    """``(what was done, damaged bytes)`` for a valid file's bytes."""
    n = len(original)
    kind = draw(st.sampled_from(KINDS))
    if kind == "truncated":
        return kind, original[: draw(st.integers(0, n - 1))]
    if kind == "bit-flipped":
        data = bytearray(original)
        edge = min(n, 1024)
        spots = st.one_of(st.integers(0, edge - 1), st.integers(n - edge, n - 1),
                          st.integers(0, n - 1))
        for spot in draw(st.lists(spots, min_size=1, max_size=16)):
            data[spot] ^= 1 << draw(st.integers(0, 7))
        return kind, bytes(data)
    if kind == "zeroed":
        start = draw(st.integers(0, n - 1))
        length = draw(st.integers(1, max(1, min(4096, n - start))))
        return kind, original[:start] + bytes(length) + original[start + length:]
    if kind == "random bytes":
        return kind, draw(st.binary(min_size=0, max_size=4096))
    keep = draw(st.integers(1, min(64, n)))
    return kind, original[:keep] + draw(st.binary(min_size=0, max_size=4096))


def check_load(
    fmt: str,
    load: Callable[[], object],
    errors: type[BaseException] | tuple[type[BaseException], ...],
    names: Path | str,
) -> str:
    """Run ``load``: it loads, or raises ``errors`` with one line naming ``names``."""
    TRIED[fmt] += 1
    try:
        load()
    except errors as exc:
        message = str(exc)
        assert "\n" not in message, f"{fmt}: message is not one line: {message!r}"
        assert str(names) in message, f"{fmt}: message does not name {names}: {message}"
        assert "Traceback" not in message
        REFUSED[fmt] += 1
        return "refused"
    return "loaded"


def _front(key: str) -> str:
    first = key.split(" ", 1)[0]
    return first if first in ("cli", "gui") else "core"


def summary() -> str:
    """One line per front end: cases tried (refused with a named error)."""
    lines = []
    for front in ("core", "cli", "gui"):
        keys = sorted(k for k in TRIED if _front(k) == front)
        if not keys:
            continue
        total, refused = sum(TRIED[k] for k in keys), sum(REFUSED[k] for k in keys)
        per = ", ".join(f"{k.removeprefix(front + ' ')} {TRIED[k]}" for k in keys)
        lines.append(f"damaged files ({front}): {total} cases, {refused} refused "
                     f"with a one-line error naming the file, the rest loaded: {per}")
    return "\n".join(lines)


# -- valid files of every format (built once) ---------------------------------
SMALL_CNN = {"width": 4, "dense": 16}


def small_model():
    torch.manual_seed(0)
    return models.create("small-cnn", **SMALL_CNN).eval()


@functools.cache
def valid_bytes(kind: str) -> bytes:
    """A valid file of ``kind``, as bytes (built once)."""
    buffer = io.BytesIO()
    if kind == "safetensors":
        with tempfile.TemporaryDirectory() as tmp:
            return models.save(small_model(), Path(tmp) / "m.safetensors").read_bytes()
    if kind == "pt":
        torch.save(small_model().state_dict(), buffer)
    elif kind == "pth-wrapped":
        torch.save({"state_dict": small_model().state_dict(), "epoch": 3}, buffer)
    elif kind == "torchscript":
        with warnings.catch_warnings():  # deprecated upstream, still supported here
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.script(models.create("lenet5").eval()), buffer)
    elif kind == "pt2":
        from explorer.core.models import exported

        with tempfile.TemporaryDirectory() as tmp:
            return exported.export(small_model(), Path(tmp) / "m.pt2").read_bytes()
    elif kind == "onnx":
        torch.manual_seed(0)  # small-cnn's adaptive pooling has no ONNX export
        small = models.create("mlp", hidden=16, depth=1).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(small, (torch.rand(2, *small.meta.in_shape),), buffer,
                              dynamo=False, input_names=["x"],
                              dynamic_axes={"x": {0: "n"}})
    elif kind in ("png", "jpeg"):
        pixels = np.random.default_rng(0).integers(0, 256, (24, 20, 3), np.uint8)
        Image.fromarray(pixels).save(buffer, format=kind.upper())
    else:
        raise ValueError(kind)
    return buffer.getvalue()


def _write(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def mnist_folder(root: Path) -> Path:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8))
    return raw


def cifar_folder(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"batch_label": name, "labels": [i % 10 for i in range(3)],
                 "data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
                 "filenames": [f"img{i}.png" for i in range(3)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]  # fmt: skip
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return folder


@functools.cache
def npz_bytes() -> bytes:
    import tempfile

    result = {"kind": "weights-1d", "coords": np.linspace(-1, 1, 21),
              "loss": np.random.default_rng(0).random(21), "acc": np.ones(21),
              "meta": {"model": "fmnist-cnn-standard"}}
    with tempfile.TemporaryDirectory() as tmp:
        return save_npz(Path(tmp) / "r.npz", result).read_bytes()


@functools.cache
def database_bytes() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Workspace.open(tmp) as ws:
        for i in range(5):
            run = ws.create_run("eval", {"model": f"m{i}", "n": i}, title=f"run {i}")
            ws.finish(run.id, "finished", summary={"clean_acc": i / 10})
        ws.close()
        return (Path(tmp) / "runs.sqlite").read_bytes()


def svhn_file(root: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(2)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "test_32x32.mat"
    scipy.io.savemat(path, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                            "y": (np.arange(n) % 10 + 1).reshape(-1, 1)})
    return path


def write(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def fixed_damage(original: bytes) -> dict[str, bytes]:
    """Three damaged versions for the CLI and GUI checks (no search)."""
    rng = np.random.default_rng(7)
    flipped = bytearray(original)
    for spot in rng.integers(0, min(len(original), 256), 12):
        flipped[int(spot)] ^= 0xFF
    return {
        "truncated": original[: len(original) // 2],
        "header flipped": bytes(flipped),
        "random behind magic": original[:8] + rng.bytes(2048),
    }

"""Atomic file writes: a crash leaves either the old file or the new one."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import secrets
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary file is fsynced before the rename and removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # os.open with 0o666 lets the umask decide, as a plain open() would
    # (mkstemp would make every saved file private to its owner).
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        # Name the file the user knows, not the temporary one (disk full,
        # read-only, quota): the old file, if any, is untouched.
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete what :func:`atomic_path` left in ``folder`` when its process
    was killed mid-write (SIGKILL skips the clean-up); the files it was
    writing are untouched. Only call it where no one else is writing."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        parts = tmp.name[1:-len(".tmp")].rsplit(".", 1)
        if len(parts) == 2 and len(parts[1]) == 12 and all(
                c in "0123456789abcdef" for c in parts[1]):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Let ``writer`` fill a temporary file (e.g. safetensors' save_file); rename."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


# What parsers (zipfile, pickle, torch, scipy, NumPy, Pillow) raise on damaged
# or foreign bytes. Loaders turn these into their own one-line error naming
# the file; anything else is a bug and keeps its traceback.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, OSError, EOFError, RuntimeError, KeyError, IndexError, TypeError,
    AttributeError, OverflowError, NotImplementedError, AssertionError,
    ZeroDivisionError, MemoryError, RecursionError, LookupError,
    zipfile.BadZipFile, zlib.error, struct.error, pickle.UnpicklingError,
)  # fmt: skip


def reason(exc: BaseException, limit: int = 160) -> str:
    """An exception as a short single line, for "<file>: … (reason)" messages."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text or type(exc).__name__

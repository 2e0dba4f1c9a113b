"""Static inspection of pickle streams: which globals would unpickling import?

Nothing here unpickles. ``pickletools.genops`` only decodes opcodes, so a
malicious file is examined without running it. ``torch.load(weights_only=True)``
is the real gate; this scan lets the error message say *why* a file was refused.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

_STRING_OPS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
# Legacy torch.save files are several pickles in a row before the raw storage.
_LEGACY_PICKLES = 5


class PickleScanError(ValueError):
    """The stream is not a readable pickle."""


def _is_harmless(module: str, name: str) -> bool:
    if module == "torch" or module.startswith("torch."):
        return True
    if module in {"builtins", "__builtin__"}:
        return name in {"set", "frozenset", "slice", "complex"}
    return (module, name) in {("collections", "OrderedDict"), ("_codecs", "encode")}


def _scan_stream(stream: io.BufferedIOBase | io.BytesIO) -> list[str]:
    found: list[str] = []
    strings: list[str] = []
    memo: dict[int, str] = {}
    memo_counter = 0
    last: str | None = None
    for opcode, arg, _pos in pickletools.genops(stream):
        name = opcode.name
        if name in _STRING_OPS:
            last = arg if isinstance(arg, str) else str(arg)
            strings.append(last)
            continue
        if name == "MEMOIZE":
            if last is not None:
                memo[memo_counter] = last
            memo_counter += 1
        elif name in _PUT_OPS and last is not None:
            memo[int(arg)] = last
        elif name in _GET_OPS and int(arg) in memo:
            last = memo[int(arg)]
            strings.append(last)
            continue
        elif name in {"GLOBAL", "INST"}:
            module, _, attr = str(arg).partition(" ")
            found.append(f"{module}.{attr}")
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(f"{strings[-2]}.{strings[-1]}")
        last = None
    return found


def pickle_globals_of(blob: bytes) -> list[str]:
    """Every ``module.name`` one pickle in memory would import."""
    try:
        return _scan_stream(io.BytesIO(blob))
    except (ValueError, EOFError) as exc:
        raise PickleScanError(str(exc)) from None


def pickle_globals(path: Path) -> list[str]:
    """Every ``module.name`` the pickle(s) in ``path`` would import, in order.

    Works on zip checkpoints (scans ``*/data.pkl``) and on plain or legacy
    ``torch.save`` pickles. Raises PickleScanError if nothing can be decoded.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            entries = [n for n in archive.namelist() if n.endswith(".pkl")]
            found: list[str] = []
            for entry in entries:
                try:
                    found += _scan_stream(io.BytesIO(archive.read(entry)))
                except (ValueError, EOFError) as exc:
                    raise PickleScanError(f"{entry}: {exc}") from None
            return found
    found = []
    with open(path, "rb") as fh:
        for index in range(_LEGACY_PICKLES):
            if fh.peek(1)[:1] != b"\x80":
                break
            try:
                found += _scan_stream(fh)
            except (ValueError, EOFError) as exc:
                if index == 0:
                    raise PickleScanError(str(exc)) from None
                break
    return found


def unsafe_globals(path: Path) -> list[str]:
    """Globals outside tensors and plain containers: the ones that can run code."""
    unsafe = []
    for qualified in pickle_globals(path):
        module, _, name = qualified.rpartition(".")
        if not _is_harmless(module, name) and qualified not in unsafe:
            unsafe.append(qualified)
    return unsafe

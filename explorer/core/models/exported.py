"""``torch.export`` programs (``.pt2``): loaded, run, attacked and trained on
like any model, and the app's own models exported to one.

An exported program runs as it was exported: its dropout and BatchNorm stay
in the mode they were traced in (``torch.export`` refuses ``train()`` and
``eval()`` on the program), so :class:`ExportedModel` switches only its own
modules. Its weights are ordinary parameters: gradients reach the inputs
and the weights alike.

``torch.export.load`` unpickles some archive entries with
``weights_only=False``; :func:`check_archive` refuses an archive whose
pickles hold anything but tensors and plain containers before it is loaded.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import pickle
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.core import quiet
from explorer.core.fileio import atomic_save, reason
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.normalize import Normalize
from explorer.core.models.pickle_scan import PickleScanError, pickle_globals_of

META_FILE = "explorer_meta.json"  # our metadata, an extra file in the archive
ARCHIVE_MARK = "archive_format"  # every .pt2 archive has one


class ExportedModel(nn.Module):
    """``normalize`` then the exported program's module.

    A program exported with a fixed batch size (``batch``) is run in chunks
    of that size, the last one padded with copies of its last image whose
    outputs are dropped, so any batch works.
    """

    def __init__(self, program: nn.Module, mean: Sequence[float] = (0.0,),
                 std: Sequence[float] = (1.0,), batch: int | None = None) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.program = program
        self.batch = batch

    def train(self, mode: bool = True) -> ExportedModel:
        self.training = mode
        self.normalize.train(mode)  # the program keeps the mode it was traced in
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The logits: an exported program has one output."""
        return self.forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(x)
        if self.batch is None or len(x) == self.batch:
            return self.program(x)
        outputs = []
        for chunk in x.split(self.batch):
            n = len(chunk)
            if n < self.batch:
                pad = chunk[-1:].expand(self.batch - n, *chunk.shape[1:])
                chunk = torch.cat([chunk, pad])
            outputs.append(self.program(chunk)[:n])
        return torch.cat(outputs)


def is_export_archive(entries: Sequence[str]) -> bool:
    return any(n == ARCHIVE_MARK or n.endswith("/" + ARCHIVE_MARK) for n in entries)


def check_archive(path: Path) -> None:
    """Refuse pickled entries that could run code when the archive is loaded."""
    with zipfile.ZipFile(path) as archive:
        raw = _raw_tensor_entries(archive)
        for entry in archive.namelist():
            if entry in raw:
                continue
            blob = archive.read(entry)
            if blob[:4] == b"PK\x03\x04":  # a torch.save'd tensor, itself a zip
                unsafe = _unsafe_in(blob, entry, nested=True)
            elif blob[:1] == b"\x80":  # a plain pickle
                unsafe = _unsafe_in(blob, entry, nested=False)
            else:
                continue
            if unsafe:
                raise ModelError(
                    f"{path}: refused: entry {entry!r} holds Python objects that "
                    f"could run code when loaded ({', '.join(unsafe[:3])})")


def _raw_tensor_entries(archive: zipfile.ZipFile) -> set[str]:
    """Entries ``torch.export.load`` reads as bare tensor bytes, never
    unpickled: listed with ``use_pickle`` false in the archive's weights
    config (or, as ``tensor_*``, its constants config) and nowhere as a
    pickle. Their bytes may start like a pickle (a float whose low byte is
    0x80), which the scan must not take for one."""
    raw: set[str] = set()
    pickled: set[str] = set()
    for name in archive.namelist():
        folder, _, base = name.rpartition("/")
        weights = folder.endswith("data/weights") and base.endswith(
            "_weights_config.json")
        if not weights and not (folder.endswith("data/constants")
                                and base.endswith("_constants_config.json")):
            continue
        try:
            payloads = list(json.loads(archive.read(name))["config"].values())
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # torch.export.load refuses it before reading any payload
        for payload in payloads:
            path = payload.get("path_name") if isinstance(payload, dict) else None
            if not isinstance(path, str):
                continue
            bare = payload.get("use_pickle") is False and (
                weights or path.startswith("tensor_"))
            (raw if bare else pickled).add(f"{folder}/{path}")
    return raw - pickled


def _unsafe_in(blob: bytes, entry: str, *, nested: bool) -> list[str]:
    """The globals in one entry's pickle that only a full unpickler allows."""
    if nested:
        # torch's own safe unpickler is the gate: what it accepts, the full
        # one that torch.export.load uses does nothing more with.
        try:
            torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)  # noqa: TID251
        except pickle.UnpicklingError as exc:
            return [str(exc).strip().splitlines()[-1][:200]]
        except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"damaged entry {entry!r} ({reason(exc)})") from None
        return []
    # A plain pickle is loaded with pickle.loads: only tensor rebuilding.
    try:
        found = pickle_globals_of(blob)
    except PickleScanError as exc:
        raise ModelError(f"damaged entry {entry!r} ({reason(exc)})") from None
    return [g for g in found
            if not g.startswith(("torch._utils._rebuild", "collections.OrderedDict"))
            and not (g.startswith("torch.") and g.endswith("Storage"))]


def load(path: Path, given: dict[str, Any]) -> ExportedModel:
    check_archive(path)
    extra = {META_FILE: ""}
    try:
        with quiet.guarded():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path), extra_files=extra)
            module = program.module()
    except ModelError:
        raise
    except (RuntimeError, ValueError, KeyError, OSError, TypeError, EOFError,
            AttributeError, zipfile.BadZipFile, pickle.UnpicklingError,
            NotImplementedError, AssertionError) as exc:
        raise ModelError(f"{path}: cannot load torch.export program "
                         f"({reason(exc)})") from None
    if extra[META_FILE]:
        try:
            meta = ModelMeta.from_json(extra[META_FILE])
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
        # Our own export: the program normalises inside already.
        meta = dataclasses.replace(meta, mean=(0.0,), std=(1.0,))
    else:
        meta = ModelMeta(arch="export", in_shape=_example_shape(program),
                         num_classes=0, mean=(0.0,), std=(1.0,))
    from explorer.core.models.weights import apply_given, probe_classes

    meta = apply_given(meta, given)
    model = ExportedModel(module, meta.mean, meta.std,
                          _fixed_batch(module, program, meta.in_shape))
    if meta.in_shape is not None and meta.num_classes == 0:
        meta.num_classes = probe_classes(path, model, meta.in_shape)
        meta.classes = tuple(str(i) for i in range(meta.num_classes))
    model.meta = dataclasses.replace(meta, format="export", source=str(path))
    return model


def _fixed_batch(module: nn.Module, program: Any,
                 in_shape: tuple[int, ...] | None) -> int | None:
    """The batch size the program was exported with, when it takes no other."""
    if in_shape is None:
        return None
    try:
        with torch.no_grad():
            module(torch.zeros(1, *in_shape))
        return None
    except Exception:  # noqa: BLE001 - a guard of the program's, or a shape error
        pass
    try:
        batch = int(program.example_inputs[0][0].shape[0])
    except (AttributeError, IndexError, TypeError):
        return None
    return batch if batch > 1 else None


def _example_shape(program: Any) -> tuple[int, ...] | None:
    """C×H×W of the example input the program was exported with."""
    try:
        args = program.example_inputs[0]
        shape = tuple(int(n) for n in args[0].shape)
    except (AttributeError, IndexError, TypeError):
        return None
    return shape[1:] if len(shape) == 4 else None


def export(model: nn.Module, path: str | Path) -> Path:
    """Write ``model`` as a ``torch.export`` program with a dynamic batch size;
    its metadata travels in the archive, so loading needs no flags."""
    meta: ModelMeta | None = getattr(model, "meta", None)
    if meta is None or meta.in_shape is None:
        raise ModelError("only a model with a known input shape can be exported")
    model = copy.deepcopy(model).cpu().eval()  # the caller's stays where it is
    # A loaded program of a fixed batch size (ExportedModel.batch) is
    # written with that batch again: its graph cannot take another.
    batch = getattr(model, "batch", None)
    example = torch.rand(batch or 2, *meta.in_shape)
    dynamic = None if batch else ({0: torch.export.Dim("batch")},)
    try:
        program = torch.export.export(model, (example,), dynamic_shapes=dynamic)
    except Exception as exc:  # noqa: BLE001 - torch.export fails in many ways
        raise ModelError(f"{meta.arch} cannot be exported ({reason(exc)})") from None
    stored = dataclasses.replace(meta, format="export", source="")
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={META_FILE: stored.to_json()})
    blob = buffer.getvalue()
    return atomic_save(path, lambda tmp: tmp.write_bytes(blob))

"""Saving and loading model files without ever executing their contents.

``load`` recognises a file by its bytes, not its name: safetensors (our own
format, metadata included), PyTorch checkpoints read with
``torch.load(weights_only=True)`` into a registered architecture,
TorchScript archives, torch.export programs and ONNX graphs. Every failure
is a ModelError naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes
from torch import nn

from explorer.core import quiet
from explorer.core.fileio import PARSE_ERRORS, atomic_save, reason
from explorer.core.models import code as model_code
from explorer.core.models import exported, onnx_format, weights
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.pickle_scan import PickleScanError, unsafe_globals
from explorer.core.models.registry import architecture
from explorer.core.models.scripted import ScriptedModel

META_KEY = "explorer.meta"
# what file dialogs and drop targets offer (loading reads the bytes, not the name)
SUFFIXES = (".safetensors", ".pt", ".pth", ".pt2", ".onnx", ".ts", ".jit")
FILE_FILTER = ("Models (" + " ".join("*" + s for s in SUFFIXES)
               + ");;All files (*)")
# TorchScript archives may carry our metadata as an extra file of this name.
SCRIPT_META_FILE = "explorer_meta.json"
_HINT = ("expected safetensors, a PyTorch checkpoint (.pt/.pth), a torch.export "
         "program (.pt2), ONNX (.onnx) or TorchScript")


def save(
    model: nn.Module, path: str | os.PathLike[str], meta: ModelMeta | None = None
) -> Path:
    """Write weights and metadata to a safetensors file, atomically."""
    meta = meta or getattr(model, "meta", None)
    if meta is None:
        raise ModelError(
            "cannot save a model without metadata: pass meta=ModelMeta(...)"
        )
    if meta.format == "torchscript" or isinstance(model, ScriptedModel):
        raise ModelError(
            "TorchScript models are saved with torch.jit.save, not as safetensors"
        )
    if meta.arch.startswith(model_code.ARCH_PREFIX):
        raise ModelError("a network built by model code is saved as the weights of "
                         "its network (torch.save(model.net.state_dict(), ...)), "
                         "which that code loads")
    if meta.format == "onnx" or isinstance(model, onnx_format.OnnxModel):
        raise ModelError("an ONNX model stays an .onnx file; it is not saved as "
                         "safetensors")
    if meta.format == "export" or isinstance(model, exported.ExportedModel):
        raise ModelError(
            "a torch.export program is saved as .pt2 (export it), not as safetensors"
        )
    meta = dataclasses.replace(meta, format="safetensors", source="")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {META_KEY: meta.to_json()}
    # In memory, then a plain write: a full disk is an OSError naming the file.
    blob = save_bytes(state, metadata=header)
    return atomic_save(path, lambda tmp: tmp.write_bytes(blob))


def _sniff(path: Path) -> str:
    if not path.exists():
        raise ModelError(f"{path}: no such file")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not a model file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
        size = path.stat().st_size
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ModelError(f"{path}: file is empty")
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    # safetensors before pickles: its 8-byte header length starts with 0x80,
    # a pickle's first byte, whenever it is 128 modulo 256 (a pickle's ninth
    # byte is never "{": protocol 2 has the torch magic number there,
    # protocols 4-5 the high bytes of a frame length).
    if len(head) == 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if header_len > size - 8:
            raise ModelError(
                f"{path}: truncated safetensors file (header of {header_len} bytes, "
                f"but the file has {size} bytes)"
            )
        return "safetensors"
    if head[:1] == b"\x80":
        return "state_dict"
    if onnx_format.is_onnx(path, head):
        return "onnx"
    raise ModelError(f"{path}: not a model file ({_HINT})")


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelError(
            f"{path}: truncated or corrupt zip archive ({reason(exc)})"
        ) from None
    if exported.is_export_archive(entries):
        return "export"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in entries):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in entries):
        return "state_dict"
    raise ModelError(f"{path}: a zip archive, but not a model file ({_HINT})")


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelMeta | None]:
    """The tensors of a safetensors file and the metadata it records, if any."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: corrupt safetensors file ({reason(exc)})") from None
    meta = None
    if META_KEY in header:
        try:
            meta = ModelMeta.from_json(header[META_KEY])
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
    return state, meta


def _load_safetensors(path: Path, given: dict[str, Any]) -> nn.Module:
    state, meta = _read_safetensors(path)
    return weights.build(path, state, meta, given, "safetensors")


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch checkpoint, unwrapped; never runs its pickles."""
    try:
        unsafe = unsafe_globals(path)
    except (PickleScanError, zipfile.BadZipFile, OSError) as exc:
        raise ModelError(
            f"{path}: corrupt or truncated PyTorch checkpoint ({reason(exc)})"
        ) from None
    if unsafe:
        raise ModelError(
            f"{path}: refused: it contains Python objects that could run code when "
            f"loaded ({', '.join(unsafe[:3])}). Save the model's state_dict, "
            f"safetensors or TorchScript instead."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # noqa: TID251
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path}: refused: it holds objects other than tensors and plain "
            f"containers ({str(exc).strip().splitlines()[-1][:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(
            f"{path}: corrupt or truncated PyTorch checkpoint ({reason(exc)})"
        ) from None
    return weights.unwrap_state_dict(path, obj)


def _load_checkpoint(path: Path, given: dict[str, Any]) -> nn.Module:
    return weights.build(path, _read_checkpoint(path), None, given, "state_dict")


def read_weights(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """The tensors of a weights-only file (safetensors or a PyTorch checkpoint,
    wrappers and ``module.`` prefixes removed) and its format; a ModelError
    for any other kind of file."""
    path = Path(path)
    kind = _sniff(path)
    if kind == "safetensors":
        return _read_safetensors(path)[0], kind
    if kind == "state_dict":
        return _read_checkpoint(path), kind
    raise ModelError(f"{path}: a {_TITLES[kind]}, not a weights file "
                     f"(.pt/.pth/.safetensors)")


def _load_torchscript(path: Path, given: dict[str, Any]) -> nn.Module:
    extra = {SCRIPT_META_FILE: ""}
    try:
        with quiet.guarded():
            # TorchScript is deprecated upstream but is still how whole models
            # are exchanged without pickles; the app supports it deliberately.
            warnings.filterwarnings("ignore", ".*torch.jit", FutureWarning)
            scripted = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ModelError(f"{path}: cannot load TorchScript archive ({first})") from None
    meta = ModelMeta(
        arch="torchscript", in_shape=None, num_classes=0, mean=(0.0,), std=(1.0,)
    )
    if extra[SCRIPT_META_FILE]:
        try:
            meta = ModelMeta.from_json(extra[SCRIPT_META_FILE])
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
    meta = weights.apply_given(meta, given)
    model = ScriptedModel(scripted, meta.mean, meta.std)
    if meta.in_shape is not None and meta.num_classes == 0:
        meta.num_classes = weights.probe_classes(path, model, meta.in_shape)
        meta.classes = tuple(str(i) for i in range(meta.num_classes))
    model.meta = dataclasses.replace(meta, format="torchscript", source=str(path))
    return model


_TITLES = {
    "safetensors": "safetensors file",
    "state_dict": "PyTorch checkpoint",
    "torchscript": "TorchScript archive",
    "export": "torch.export program",
    "onnx": "ONNX model",
}
_LOADERS: Mapping[str, Callable[[Path, dict[str, Any]], nn.Module]] = {
    "safetensors": _load_safetensors,
    "state_dict": _load_checkpoint,
    "torchscript": _load_torchscript,
    "export": exported.load,
    "onnx": onnx_format.load,
}


def load(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    arch_params: Mapping[str, Any] | None = None,
    in_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    code: str | model_code.CodeRef | None = None,
    code_trusted: str | None = None,
) -> nn.Module:
    """Load a model file (format detected from its bytes) in eval mode on CPU.

    Metadata stored in the file describes the model; arguments given here
    override it, and are required (``arch``) for plain state_dicts.
    ``code`` (``FILE.py:NAME``) RUNS that file to build the network the
    weights file is loaded into; ``code_trusted`` is the digest the user
    agreed to run (see :mod:`explorer.core.models.code`).
    """
    path = Path(path)
    if arch is not None and code is not None:
        raise ModelError("give an architecture or model code, not both")
    if arch is not None:
        architecture(arch)  # a ModelError naming the known ones
    ref = model_code.parse(code) if isinstance(code, str) else code
    given = {
        "arch": arch,
        "arch_params": dict(arch_params) if arch_params is not None else None,
        "in_shape": tuple(in_shape) if in_shape is not None else None,
        "num_classes": num_classes,
        "classes": tuple(classes) if classes is not None else None,
        "mean": tuple(mean) if mean is not None else None,
        "std": tuple(std) if std is not None else None,
    }
    kind = "model file"
    try:
        kind = _sniff(path)
        given = {k: v for k, v in given.items() if v is not None}
        if ref is not None:
            state, kind = read_weights(path)
            model = model_code.load(path, state, kind, ref, given, trusted=code_trusted)
        else:
            model = _LOADERS[kind](path, given)
    except ModelError:
        raise
    except PARSE_ERRORS as exc:  # damaged bytes deep inside a parser
        raise ModelError(
            f"{path}: damaged or unreadable {_TITLES.get(kind, kind)} ({reason(exc)})"
        ) from None
    return model.cpu().eval()

"""Networks built by the user's own Python code: ``FILE.py:NAME``.

This is how paper repositories and RobustBench hand out models: a file that
defines the network, and a weights file for it. ``NAME`` is a class or a
factory in ``FILE.py``; it is called with no arguments, or with
``num_classes=`` when it takes that (the data's, or the output size of the
weights' last matrix). The weights file (safetensors or a
PyTorch checkpoint, wrappers and ``module.`` prefixes removed) is then
loaded into the network, which is wrapped like a library one
(:class:`~explorer.core.models.zoo.ZooModel`: our ``Normalize``, then the
network under ``net``).

Loading **runs the code in FILE.py**, with the file's folder first on the
import path so it can import its neighbours. The command line needs the
flag to do it; the GUI asks once per file, remembered by the content hash
(:func:`digest`), and :func:`build` refuses a file whose hash is no longer
the one that was trusted. Listing the names a file defines
(:func:`names_in`) only parses it and runs nothing.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import inspect
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from explorer.core.fileio import reason
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.zoo import NET, ZooModel

ARCH_PREFIX = "code:"
_IMPORT_LOCK = threading.Lock()  # sys.path and sys.modules are process-wide


@dataclasses.dataclass(frozen=True)
class CodeRef:
    """``FILE.py:NAME``: where the network's code is and what builds it."""

    path: Path
    name: str

    def __str__(self) -> str:
        return f"{self.path}:{self.name}"


def parse(text: str) -> CodeRef:
    """``FILE.py:NAME`` (the last colon splits, so Windows drives work)."""
    file, sep, name = text.rpartition(":")
    if not sep or not file or not name.isidentifier():
        raise ModelError(f"model code {text!r}: expected FILE.py:NAME, e.g. "
                         f"wideresnet.py:WideResNet")
    path = Path(file)
    if path.suffix != ".py":
        raise ModelError(f"model code {text!r}: {path.name} is not a .py file")
    return CodeRef(path, name)


def _source(path: Path) -> bytes:
    if not path.is_file():
        raise ModelError(f"{path}: no such model-code file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({reason(exc)})") from None


def digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes: what "trusted" is remembered by."""
    return hashlib.sha256(_source(Path(path))).hexdigest()


def names_in(path: str | Path) -> list[str]:
    """The classes, then the functions, defined at the top of ``path``;
    classes that subclass a ``Module`` first. Parses only; runs nothing."""
    path = Path(path)
    try:
        tree = ast.parse(_source(path), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise ModelError(f"{path}: not valid Python{where}: "
                         f"{getattr(exc, 'msg', exc)}") from None
    modules, classes, functions = [], [], []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            (modules if any(b.endswith("Module") for b in bases)
             else classes).append(node.name)
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            functions.append(node.name)
    return modules + classes + functions


def _run_file(path: Path) -> Any:
    """Import ``path`` as a fresh module; what it raises is a ModelError."""
    name = f"explorer_model_code_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{path}: cannot be imported as Python code")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    with _IMPORT_LOCK:
        sys.path.insert(0, folder)
        sys.modules[name] = module  # dataclasses and pickling look it up
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code
            sys.modules.pop(name, None)
            raise ModelError(f"{path}: the model code raised {_raised(exc, path)}"
                             ) from None
        finally:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass
    return module


def _raised(exc: BaseException, path: Path) -> str:
    """``ValueError: bad width (line 12)``: the exception and the line of
    ``path`` it came through last."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    if isinstance(exc, SyntaxError):
        line = exc.lineno
    text = " ".join(str(exc).split())[:200]
    return (f"{type(exc).__name__}{': ' + text if text else ''}"
            f"{f' (line {line})' if line else ''}")


def _call(ref: CodeRef, factory: Any, num_classes: int | None) -> nn.Module:
    kwargs: dict[str, Any] = {}
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        if "num_classes" in signature.parameters and num_classes:
            kwargs["num_classes"] = num_classes
        needed = [p.name for p in signature.parameters.values()
                  if p.default is p.empty and p.name not in kwargs
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if needed:
            raise ModelError(
                f"{ref.path}: {ref.name} needs arguments ({', '.join(needed)}); "
                f"name a class or factory in the file that takes none "
                f"(num_classes is given when it asks for it)")
    try:
        net = factory(**kwargs)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code
        raise ModelError(f"{ref.path}: {ref.name}() raised "
                         f"{_raised(exc, ref.path)}") from None
    if not isinstance(net, nn.Module):
        raise ModelError(f"{ref.path}: {ref.name}() returned a "
                         f"{type(net).__name__}, not a torch.nn.Module")
    return net


def network(ref: CodeRef, *, num_classes: int | None = None,
            trusted: str | None = None) -> nn.Module:
    """Run ``ref.path`` and build the network ``ref.name`` makes.

    ``trusted``: the digest the user agreed to run; the file must still
    have it (it may have changed since).
    """
    _source(ref.path)  # a clear message when it is missing or unreadable
    if trusted is not None and digest(ref.path) != trusted:
        raise ModelError(f"{ref.path}: the file changed since it was trusted; "
                         f"choose it again to review it")
    module = _run_file(ref.path)
    factory = getattr(module, ref.name, None)
    if factory is None or not callable(factory):
        found = names_in(ref.path)
        raise ModelError(
            f"{ref.path}: defines no {ref.name!r}"
            + (f" (it defines: {', '.join(found[:8])})" if found else ""))
    return _call(ref, factory, num_classes)


def _guess_in_shape(net: nn.Module) -> tuple[int, int, int] | None:
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            c = int(module.in_channels)
            return (c, 28, 28) if c == 1 else (c, 32, 32)
        if isinstance(module, nn.Linear):
            return {784: (1, 28, 28), 3072: (3, 32, 32)}.get(int(module.in_features))
    return None


def load(weights_path: Path, state: Mapping[str, torch.Tensor], fmt: str,
         ref: CodeRef, given: Mapping[str, Any], *,
         trusted: str | None = None) -> ZooModel:
    """The network of ``ref`` with the weights ``state`` of ``weights_path``."""
    from explorer.core.models.weights import key_problems, probe_classes

    # A factory that asks for num_classes gets the caller's, else the
    # output size of the last matrix in the weights (the classifier's).
    matrices = [v for v in state.values() if v.dim() == 2]
    num_classes = given.get("num_classes") or (
        int(matrices[-1].shape[0]) if matrices else None)
    net = network(ref, num_classes=num_classes, trusted=trusted)
    state = {k.removeprefix(NET) if all(s.startswith(NET) for s in state) else k: v
             for k, v in state.items()}
    problems = key_problems(net.state_dict(), state)
    if problems:
        raise ModelError(f"{weights_path}: the weights do not fit {ref.name} from "
                         f"{ref.path.name}: " + "; ".join(problems))
    net.load_state_dict(state)
    model = ZooModel(net, given.get("mean", (0.0,)), given.get("std", (1.0,)))
    model.eval()
    in_shape = given.get("in_shape") or _guess_in_shape(net)
    if in_shape is None:
        raise ModelError(f"{ref.path}: cannot tell {ref.name}'s input size; "
                         f"pass --input-shape CxHxW")
    num_classes = probe_classes(weights_path, model, tuple(in_shape))  # the truth
    classes = given.get("classes") or ()
    model.meta = ModelMeta(
        arch=ARCH_PREFIX + ref.name, in_shape=tuple(in_shape),
        num_classes=num_classes,
        classes=classes if len(classes) == num_classes else (),
        mean=model.normalize.mean.flatten().tolist(),
        std=model.normalize.std.flatten().tolist(),
        format=fmt, source=str(weights_path),
        arch_params={"code": str(ref.path), "sha256": digest(ref.path)})
    return model

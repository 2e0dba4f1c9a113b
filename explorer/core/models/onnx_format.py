"""ONNX models (``.onnx``), converted to PyTorch by onnx2torch (the optional
extra ``[onnx]``), then run, attacked and evaluated like any model.

An ONNX file holds a graph and its weights, never code, so opening one runs
nothing of its author's. Its input's batch dimension is either named
(any batch) or a fixed number; a fixed one is honoured by running the
batch in chunks of that size (:class:`~explorer.core.models.exported.
ExportedModel` does the chunking), since a graph with a fixed batch may
reshape with it and give wrong answers, not errors, on another.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import warnings
from pathlib import Path
from typing import Any

from explorer.core import quiet
from explorer.core.fileio import reason
from explorer.core.models.exported import ExportedModel
from explorer.core.models.meta import ModelError, ModelMeta

EXTRA_HINT = "pip install 'robustness-explorer[onnx]'"


def available() -> bool:
    """Whether onnx and onnx2torch are installed."""
    return all(importlib.util.find_spec(n) is not None for n in ("onnx", "onnx2torch"))


class OnnxModel(ExportedModel):
    """``normalize`` then the converted graph (kept in eval mode)."""


def _graph_input(graph: Any) -> tuple[tuple[int, ...] | None, int | None]:
    """(C×H×W, fixed batch or None) of the graph's image input, when known."""
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1:
        return None, None
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        return None, None
    batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") else None
    sizes = [int(d.dim_value) if d.HasField("dim_value") else 0 for d in dims[1:]]
    shape = tuple(sizes) if all(n > 0 for n in sizes) else None
    return shape, (batch if batch and batch > 0 else None)


def _inline_weights(graph: Any) -> None:
    """Turn weights that reach a layer through ``Identity`` or ``Constant``
    nodes into plain initializers: exporters alias equal weights that way
    (PyTorch's, for the zero biases of folded batch norms), and onnx2torch
    reads a layer's weights only from initializers."""
    from onnx import numpy_helper

    changed = True
    while changed:
        changed = False
        known = {init.name: init for init in graph.initializer}
        for node in list(graph.node):
            tensor = None
            if node.op_type == "Identity" and node.input[0] in known:
                tensor = numpy_helper.to_array(known[node.input[0]])
            elif node.op_type == "Constant" and len(node.attribute) == 1 \
                    and node.attribute[0].name == "value":
                tensor = numpy_helper.to_array(node.attribute[0].t)
            if tensor is None:
                continue
            graph.initializer.append(numpy_helper.from_array(tensor, node.output[0]))
            graph.node.remove(node)
            changed = True


def load(path: Path, given: dict[str, Any]) -> OnnxModel:
    if not available():
        raise ModelError(f"{path}: ONNX models need onnx and onnx2torch, which are "
                         f"not installed ({EXTRA_HINT})")
    with quiet.guarded():  # onnx2torch's torch.jit deprecation note
        warnings.simplefilter("ignore")
        import onnx
        from onnx2torch import convert

    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise many kinds
        raise ModelError(f"{path}: not a readable ONNX model ({reason(exc)})") from None
    try:
        _inline_weights(proto.graph)
        with quiet.guarded():
            warnings.simplefilter("ignore")
            graph = convert(proto)
    except Exception as exc:  # noqa: BLE001 - an operator onnx2torch lacks, ...
        raise ModelError(f"{path}: onnx2torch cannot convert this model "
                         f"({reason(exc)})") from None
    in_shape, batch = _graph_input(proto.graph)
    meta = ModelMeta(arch="onnx", in_shape=in_shape, num_classes=0,
                     mean=(0.0,), std=(1.0,))
    from explorer.core.models.weights import apply_given, probe_classes

    meta = apply_given(meta, given)
    graph.eval()
    model = OnnxModel(graph, meta.mean, meta.std, batch)
    if meta.in_shape is None:
        raise ModelError(f"{path}: the ONNX graph does not fix its input's size; "
                         f"pass --input-shape CxHxW")
    if meta.num_classes == 0:
        meta.num_classes = probe_classes(path, model, meta.in_shape)
        meta.classes = tuple(str(i) for i in range(meta.num_classes))
    model.meta = dataclasses.replace(meta, format="onnx", source=str(path))
    return model


OTHER_SUFFIXES = (".safetensors", ".pt", ".pth", ".pt2", ".ts", ".jit")


def is_onnx(path: Path, head: bytes) -> bool:
    """An ONNX file: by name, or, under a name no other format uses, a
    protobuf starting with ``ir_version`` (field 1, a varint: byte 0x08)."""
    suffix = path.suffix.lower()
    return suffix == ".onnx" or (head[:1] == b"\x08" and suffix not in OTHER_SUFFIXES)


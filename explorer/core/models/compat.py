"""Does a model fit a data set? Said in words, before anything runs."""

from __future__ import annotations

from typing import Any

from torch import nn

from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.weights import ProbeError, probe_outputs


def _shape(shape: Any) -> str:
    return "×".join(str(int(n)) for n in shape)


def check_compatible(model: nn.Module, info: Any) -> None:
    """Raise ModelError unless ``model`` takes ``info.shape`` images and has
    ``len(info.classes)`` outputs. ``info`` is any object with ``name``,
    ``shape`` (C, H, W) and ``classes``, e.g. ``data.info(name)``.
    """
    meta: ModelMeta | None = getattr(model, "meta", None)
    if meta is None:
        raise ModelError("the model has no metadata (create or load it with models.*)")
    data_shape = tuple(int(n) for n in info.shape)
    data_classes = len(info.classes)
    where = (
        f"data set '{info.name}' has {_shape(data_shape)} images "
        f"and {data_classes} classes"
    )
    label = meta.source or meta.arch
    if meta.in_shape is None:
        # TorchScript without a declared input: let one forward pass decide.
        try:
            outputs = probe_outputs(model, data_shape)
        except ProbeError as exc:
            raise ModelError(
                f"model '{label}' fails on {_shape(data_shape)} inputs ({exc}); "
                f"{where}"
            ) from None
        if outputs != data_classes:
            raise ModelError(f"model '{label}' has {outputs} outputs, but {where}")
        return
    if tuple(meta.in_shape) != data_shape or meta.num_classes != data_classes:
        resizable = {"channels", "height", "width"} <= {
            p.name for p in getattr(info, "params", ())}
        hint = (f" (an image folder can be decoded at {_shape(meta.in_shape)}: its "
                f"channels, height and width settings, or --input-shape "
                f"{'x'.join(map(str, meta.in_shape))} on the command line)"
                if resizable and tuple(meta.in_shape) != data_shape else "")
        raise ModelError(
            f"model '{label}' expects {meta.describe_input()}, but {where}{hint}"
        )

"""`explorer models list|archs|export|info`: the built-in models, the
architectures a weights file can be loaded into, a model written as a
torch.export program (.pt2), and what a model is."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.running import print_result, print_table


def models_command(args: argparse.Namespace) -> int:
    if args.verb == "archs":
        return _archs(args)
    if args.verb == "export":
        return _export(args)
    if args.verb == "info":
        return _info(args)
    return _list(args)


def _list(args: argparse.Namespace) -> int:
    from explorer.core import models

    rows = []
    for name in models.builtin_names():
        meta = models.load_builtin(name).meta
        rows.append({
            "name": name, "kind": "built-in", "arch": meta.arch,
            "dataset": meta.dataset, "method": meta.training.get("method", ""),
            "clean_acc": meta.training.get("test_acc", ""),
        })
    for arch in models.names():
        rows.append({"name": arch, "kind": "architecture", "arch": arch})
    print_table("models", rows, args.json,
                ["name", "kind", "arch", "dataset", "method"])
    return 0


def _archs(args: argparse.Namespace) -> int:
    """``explorer models archs``: every name --arch accepts."""
    from explorer.core import models
    from explorer.core.models import zoo

    rows = []
    if args.library in (None, "own"):
        rows += [{"name": a, "library": "own", "description": models.description(a)}
                 for a in models.names()]
    if args.library != "own":
        rows += [{"name": a, "library": a.partition(":")[0],
                  "description": zoo.description(a)}
                 for a in zoo.names(None if args.library is None else args.library)]
    if args.library == "timm" and not zoo.timm_available():
        raise models.ModelError("timm is not installed (pip install "
                                "'robustness-explorer[zoo]')")
    print_table("archs", rows, args.json, ["name", "library", "description"])
    return 0


def _export(args: argparse.Namespace) -> int:
    """``explorer models export --model M --out OUT.pt2``."""
    from pathlib import Path

    from explorer.cli.common import UsageError, model_from_flags
    from explorer.core.models import exported

    if not args.out.endswith(".pt2"):
        raise UsageError(f"--out must end in .pt2, got {args.out!r}")
    model = model_from_flags(args.model, args)
    path = exported.export(model, Path(args.out))
    result: dict[str, Any] = {"model": args.model, "out": str(path),
                              "arch": model.meta.arch,
                              "bytes": path.stat().st_size}
    if args.json:
        print_result(result)
    else:
        print(f"exported {args.model} ({model.meta.arch}) to {path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    """``explorer models info --model M [--logits N]``."""
    import sys

    import torch

    from explorer.cli.common import UsageError, model_from_flags
    from explorer.core.inference import model_frozen
    from explorer.core.models import guardrails

    if args.logits < 0:
        raise UsageError(f"--logits must be 0 or more, got {args.logits}")
    model = model_from_flags(args.model, args)
    meta = model.meta
    result: dict[str, Any] = {
        "model": args.model, **meta.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()), "warnings": []}
    result["warnings"] = [w.text() for w in guardrails.probe_warnings(model)]
    for text in result["warnings"]:
        sys.stderr.write(f"warning: {text}\n")
    if args.logits:
        if meta.in_shape is None:
            raise UsageError("the model's input shape is unknown; pass --input-shape")
        x = torch.rand(args.logits, *meta.in_shape,
                       generator=torch.Generator().manual_seed(0))
        with model_frozen(model), torch.no_grad():
            result["logits"] = model(x).tolist()
    if args.json:
        print_result(result)
        return 0
    shape = "x".join(map(str, meta.in_shape)) if meta.in_shape else "unknown"
    print(f"{args.model}: {meta.arch}, {meta.format}, {result['parameters']:,} "
          f"parameters, {shape} inputs, {meta.num_classes} classes")
    for text in result["warnings"]:
        print(f"  warning: {text}")
    for row in result.get("logits", []):
        print("  " + " ".join(f"{v:+.4f}" for v in row))
    return 0

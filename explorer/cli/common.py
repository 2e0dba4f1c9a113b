"""What every command shares: errors and exit codes, the one-line parser,
and how a model or a data set named on the command line is found."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130
ARCH_HELP = ("architecture for weights-only .pt/.pth/.safetensors files: the "
             "app's own (small-cnn, preact-resnet18, ...), torchvision:NAME or "
             "timm:NAME (`explorer models archs` lists them)")


class CliError(Exception):
    """A runtime error for the user: printed as one line, exit code 1."""


class UsageError(CliError):
    """The command line itself is wrong (argparse's convention: exit code 2)."""


@contextmanager
def naming_flag(flag: str) -> Iterator[None]:
    """A bad value found inside (a core ``ParamError``) becomes a usage error,
    exit code 2, its one line starting with ``flag``."""
    from explorer.core.params import ParamError

    try:
        yield
    except ParamError as exc:
        raise UsageError(f"{flag}: {exc}") from None


class OneLineParser(argparse.ArgumentParser):
    """Raises instead of printing usage and exiting: errors stay one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


INPUT_SHAPE_HELP = ("the model's input shape when it is not the data set's, e.g. "
                    "3x32x32: an image folder is decoded at that size, and a "
                    "weights-only file is built for it")


def input_shape(text: str) -> tuple[int, int, int]:
    """``CxHxW`` (argparse type of --input-shape)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape[0] not in (1, 3):
        raise argparse.ArgumentTypeError(
            f"--input-shape must look like 3x32x32 (channels 1 or 3), got {text!r}")
    return shape  # type: ignore[return-value]


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, e.g. 0.485,0.456,0.406, got {text!r}"
        ) from None
    return values


def add_normalize_flags(p: argparse.ArgumentParser) -> None:
    """--normalize PRESET, --mean, --std: for a model file that expects
    normalised input (attacks then still work in [0, 1] pixels)."""
    from explorer.core.models.normalize import PRESETS

    p.add_argument("--normalize", choices=tuple(PRESETS), help="the input "
                   "normalisation a model file expects: none, imagenet or "
                   "cifar10 (default: what the file says; none for bare weights)")
    p.add_argument("--mean", type=_floats, metavar="M[,M,M]",
                   help="per-channel mean the model file expects")
    p.add_argument("--std", type=_floats, metavar="S[,S,S]",
                   help="per-channel std the model file expects")


def normalize_values(ns: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    """``{"mean": ..., "std": ...}`` from the flags (empty: none given)."""
    from explorer.core.models.normalize import PRESETS

    if ns.normalize is not None and (ns.mean is not None or ns.std is not None):
        raise UsageError("--normalize and --mean/--std: give one or the other")
    if ns.normalize is not None:
        mean, std = PRESETS[ns.normalize]
        return {"mean": mean, "std": std}
    if (ns.mean is None) != (ns.std is None):
        raise UsageError("--mean and --std go together")
    if ns.mean is None:
        return {}
    if any(s <= 0 for s in ns.std):
        raise UsageError(f"--std must be positive, got {ns.std}")
    return {"mean": ns.mean, "std": ns.std}


MODEL_CODE_HELP = ("RUNS THE PYTHON CODE IN FILE.py (only for code you trust): NAME, "
                   "a class or factory there, builds the network, and the --model "
                   "weights file (.pt/.pth/.safetensors) is loaded into it; "
                   "NAME gets num_classes= when it takes it")


def add_model_file_flags(p: argparse.ArgumentParser) -> None:
    """--arch, --model-code, --input-shape, the normalisation flags and
    RobustBench's: how a model file or name is read (:func:`model_from_flags`
    applies them)."""
    p.add_argument("--arch", help=ARCH_HELP)
    p.add_argument("--model-code", metavar="FILE.py:NAME", help=MODEL_CODE_HELP)
    p.add_argument("--input-shape", type=input_shape, metavar="CxHxW",
                   help=INPUT_SHAPE_HELP)
    add_normalize_flags(p)
    from explorer.core.models.robustbench_zoo import DATASETS, THREAT_MODELS

    p.add_argument("--robustbench-dir", metavar="DIR",
                   help="RobustBench's model folder, for --model robustbench:NAME "
                        "(checkpoints at DIR/<dataset>/<threat model>/NAME.pt; "
                        "nothing is downloaded)")
    p.add_argument("--dataset", choices=tuple(DATASETS),
                   help="the data set a robustbench:NAME model was trained on "
                        "(default: cifar10)")
    p.add_argument("--threat-model", choices=THREAT_MODELS,
                   help="the threat model of a robustbench:NAME model "
                        "(default: Linf)")


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """--data, --split, --root: the data set a command reads."""
    p.add_argument("--data", default="fashion-mnist-mini", help="data set name")
    p.add_argument("--split", default="test", help="split (default: test)")
    p.add_argument("--root", help="folder of a torchvision or image-folder set")


def model_from_flags(source: str, ns: argparse.Namespace):
    """:func:`resolve_model` with the flags of :func:`add_model_file_flags`."""
    from explorer.core.models import robustbench_zoo

    rb_flags = {"--robustbench-dir": ns.robustbench_dir, "--dataset": ns.dataset,
                "--threat-model": ns.threat_model}
    if robustbench_zoo.is_robustbench(source):
        other = [flag for flag, given in (("--arch", ns.arch),
                                          ("--model-code", ns.model_code),
                                          ("--input-shape", ns.input_shape))
                 if given is not None]
        if other or normalize_values(ns):
            raise UsageError(f"{source} is a RobustBench model: it takes [0, 1] "
                             f"pixels and knows its own architecture and input; "
                             f"drop {', '.join(other) or 'the normalisation flags'}")
        return robustbench_zoo.load(source, ns.robustbench_dir,
                                    dataset=ns.dataset or "cifar10",
                                    threat_model=ns.threat_model or "Linf")
    given = [flag for flag, value in rb_flags.items() if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)}: only for --model robustbench:NAME")
    if ns.arch is not None and ns.model_code is not None:
        raise UsageError("--arch and --model-code: give one (the code builds the "
                         "network the weights go into)")
    return resolve_model(source, ns.arch, ns.input_shape, normalize_values(ns),
                         code=ns.model_code)


def resolve_model(source: str, arch: str | None,
                  in_shape: tuple[int, ...] | None = None,
                  normalize: dict[str, tuple[float, ...]] | None = None,
                  code: str | None = None):
    """A built-in name, or a file path (with ``--arch`` for weights-only files,
    built for ``in_shape`` and with the ``normalize`` mean/std when given;
    ``code`` FILE.py:NAME runs that file to build the network)."""
    from explorer.core import models

    if source in models.builtin_names():
        if normalize or code:
            raise UsageError(f"{source!r} is a built-in model with its own "
                             f"architecture and normalisation; --normalize/--mean/"
                             f"--std/--model-code are for files")
        return models.load_builtin(source)
    if not Path(source).exists() and not any(c in source for c in "/\\."):
        raise models.ModelError(
            f"unknown model {source!r}: not a built-in model "
            f"({', '.join(models.builtin_names())}), robustbench:NAME, "
            f"or a file"
        )
    from explorer.core.models import robustbench_zoo

    model = (None if arch or code or normalize or in_shape
             else robustbench_zoo.load_checkpoint_file(source))
    if model is not None:  # DIR/<dataset>/<threat>/NAME.pt of RobustBench's
        return model
    return models.load(source, arch=arch, in_shape=in_shape, code=code,
                       **(normalize or {}))


def load_data(name: str, split: str, root: Any = None,
              shape: tuple[int, ...] | None = None) -> Any:
    """``data.load``; unreadable images an image folder skipped are named on
    stderr (one line), and :func:`skipped_files` puts them in the result.
    ``shape`` (--input-shape) decodes an image folder at that size."""
    from explorer.core import data
    from explorer.core.data.folder import describe_skipped

    params: dict[str, int] = {}
    if shape is not None:
        info = data.info(name)
        if {"channels", "height", "width"} <= {p.name for p in info.params}:
            params = dict(zip(("channels", "height", "width"), shape, strict=True))
        elif tuple(info.shape) != tuple(shape):
            size = "x".join(map(str, info.shape))
            raise UsageError(
                f"--input-shape {'x'.join(map(str, shape))}: data set {name!r} has "
                f"{size} images, and only image folders are decoded at another size")
    dataset = data.load(name, split, root=root, **params)
    skipped = getattr(dataset, "skipped", ())
    if skipped:
        sys.stderr.write(f"warning: {describe_skipped(skipped)}\n")
    return dataset


def guardrail_warnings(model: Any, dataset: Any, device: Any,
                       clean_acc: float | None, eot: int = 1) -> list[str]:
    """The model's guardrail warnings on the first images (softmax, random
    output, train mode, near chance), each also said on stderr; ``eot``: the
    EOT passes the attacks used."""
    from explorer.core.models import guardrails

    x, _ = dataset.as_tensors(0, min(16, len(dataset)))
    found = guardrails.check(model, x.to(device), clean_acc=clean_acc,
                             num_classes=len(dataset.classes), eot=eot)
    for text in found:
        sys.stderr.write(f"warning: {text}\n")
    return found


def skipped_files(*datasets: Any) -> dict[str, list[str]]:
    """``{"skipped_files": [...]}`` for image folders, ``{}`` for other sets."""
    if not any(hasattr(ds, "skipped_files") for ds in datasets):
        return {}
    return {"skipped_files": [f for ds in datasets
                              for f in getattr(ds, "skipped_files", [])]}



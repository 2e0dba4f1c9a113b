"""RobustBench models by name: ``robustbench:NAME`` (the optional extra
``[robustbench]``), from checkpoints already on disk.

RobustBench keeps a model's checkpoint at
``DIR/<dataset>/<threat model>/<NAME>.pt`` (an ensemble: ``<NAME>.pt_m0.pt``,
``_m1``, ...). Its ``load_model`` downloads what is missing; here nothing
is ever downloaded: a missing checkpoint is a message naming the file, and
any download RobustBench would still attempt is refused. Opening the
checkpoint file itself where RobustBench keeps it (:func:`match_path`)
loads it the same way. RobustBench's networks take [0, 1] pixels and
normalise inside, so the wrapper's ``Normalize`` is the identity.

The robustbench 1.1.1 wheel imports ``autoattack`` while its dependency
``pyautoattack`` installs the module as ``pyautoattack``, and it needs
``pkg_resources`` (setuptools < 81, pinned by the extra); :func:`_import`
bridges the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from explorer.core import quiet
from explorer.core.fileio import reason
from explorer.core.models.meta import ModelError, ModelMeta
from explorer.core.models.zoo import ZooModel

PREFIX = "robustbench:"
EXTRA_HINT = "pip install 'robustness-explorer[robustbench]'"
DATASETS = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100),
            "imagenet": ((3, 224, 224), 1000)}
THREAT_MODELS = ("Linf", "L2", "corruptions")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
_LOCK = threading.Lock()  # the download guard patches module attributes


def is_robustbench(source: str) -> bool:
    return source.startswith(PREFIX)


def available() -> bool:
    return importlib.util.find_spec("robustbench") is not None


def _import() -> Any:
    """``robustbench.utils`` and the model table, or a ModelError saying
    which extra to install."""
    if not available():
        raise ModelError(f"RobustBench models need the robustbench package, which "
                         f"is not installed ({EXTRA_HINT})")
    if importlib.util.find_spec("autoattack") is None:
        with contextlib.suppress(ImportError):
            bridge = importlib.import_module("pyautoattack")
            sys.modules.setdefault("autoattack", bridge)
            for sub in ("autoattack", "state", "autopgd_base", "fab_pt", "square",
                        "other_utils", "checks", "fab_base", "fab_projections"):
                with contextlib.suppress(ImportError):
                    sys.modules.setdefault(
                        f"autoattack.{sub}",
                        importlib.import_module(f"pyautoattack.{sub}"))
    try:
        with quiet.guarded():  # its imports' deprecation notes
            warnings.simplefilter("ignore")
            utils = importlib.import_module("robustbench.utils")
            zoo = importlib.import_module("robustbench.model_zoo")
    except ImportError as exc:
        raise ModelError(f"robustbench is installed but cannot be imported "
                         f"({reason(exc)}; {EXTRA_HINT} installs what it needs)"
                         ) from None
    return utils, zoo.model_dicts


class _DownloadRefused(ModelError):
    pass


@contextlib.contextmanager
def _no_downloads(utils: Any) -> Iterator[None]:
    """RobustBench (and torch.hub under it) may not fetch anything."""
    import torch.hub

    def refuse(*args: Any, **_kw: Any) -> None:
        target = next((a for a in reversed(args) if isinstance(a, str | Path)), "")
        raise _DownloadRefused(f"it would download {Path(str(target)).name or 'a file'}"
                               f", and nothing is downloaded at run time")

    saved = (utils.download_gdrive_new, torch.hub.download_url_to_file,
             os.environ.get("HF_HUB_OFFLINE"))
    with _LOCK:
        utils.download_gdrive_new = refuse
        torch.hub.download_url_to_file = refuse
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            yield
        finally:
            utils.download_gdrive_new, torch.hub.download_url_to_file = saved[:2]
            if saved[2] is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = saved[2]


def checkpoint_files(name: str, model_dir: Path, dataset: str, threat_model: str,
                     entry: dict[str, Any]) -> list[Path]:
    """Where RobustBench keeps the checkpoint(s) of ``name``."""
    base = Path(model_dir) / dataset / threat_model / f"{name}.pt"
    ids = entry.get("gdrive_id")
    if isinstance(ids, list):
        return [Path(f"{base}_m{i}.pt") for i in range(len(ids))]
    return [base]


def match_path(path: str | Path) -> tuple[str, Path, str, str] | None:
    """``(source, DIR, dataset, threat model)`` when ``path`` is a RobustBench
    checkpoint where RobustBench keeps it (``DIR/<dataset>/<threat>/NAME.pt``,
    NAME in its model table); None otherwise, or without robustbench."""
    path = Path(path)
    threat, dataset = path.parent.name, path.parent.parent.name
    if (path.suffix != ".pt" or threat not in THREAT_MODELS
            or dataset not in DATASETS or not available()):
        return None
    try:
        _, table = _import()
        from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

        known = table[BenchmarkDataset(dataset)][ThreatModel(threat)]
    except (ModelError, KeyError, ValueError):
        return None
    name = path.name.removesuffix(".pt")
    if name not in known:
        return None
    return PREFIX + name, path.parent.parent.parent, dataset, threat


def load_checkpoint_file(path: str | Path) -> ZooModel | None:
    """The model of a RobustBench checkpoint opened as a file where
    RobustBench keeps it (see :func:`match_path`); None for any other file."""
    found = match_path(path)
    if found is None:
        return None
    source, folder, dataset, threat = found
    return load(source, folder, dataset=dataset, threat_model=threat)


def load(source: str, model_dir: str | Path | None, *, dataset: str = "cifar10",
         threat_model: str = "Linf") -> ZooModel:
    """``robustbench:NAME`` from ``model_dir``, in eval mode on the CPU."""
    name = source.removeprefix(PREFIX)
    if dataset not in DATASETS:
        raise ModelError(f"RobustBench data set {dataset!r}: one of "
                         f"{', '.join(DATASETS)}")
    if threat_model not in THREAT_MODELS:
        raise ModelError(f"RobustBench threat model {threat_model!r}: one of "
                         f"{', '.join(THREAT_MODELS)}")
    if model_dir is None:
        raise ModelError(f"{source}: say where its checkpoint is with "
                         f"--robustbench-dir DIR (RobustBench's model folder)")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: no such RobustBench model folder")
    utils, table = _import()
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    entries = table[BenchmarkDataset(dataset)][ThreatModel(threat_model)]
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=3)
        raise ModelError(
            f"no RobustBench model {name!r} for {dataset} {threat_model}"
            + (f" (did you mean {', '.join(close)}?)" if close else
               f" ({len(entries)} known; see robustbench's model zoo)"))
    missing = [p for p in checkpoint_files(name, model_dir, dataset, threat_model,
                                           entries[name]) if not p.is_file()]
    if missing:
        raise ModelError(f"{missing[0]}: no such checkpoint for {source} (RobustBench "
                         f"keeps it at DIR/{dataset}/{threat_model}/{name}.pt; "
                         f"nothing is downloaded)")
    try:
        with _no_downloads(utils), quiet.guarded():
            warnings.simplefilter("ignore")
            net = utils.load_model(name, model_dir=str(model_dir), dataset=dataset,
                                   threat_model=threat_model)
    except _DownloadRefused as exc:
        raise ModelError(f"{source}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a checkpoint that does not fit, ...
        raise ModelError(f"{source}: RobustBench could not load it from "
                         f"{model_dir} ({reason(exc)})") from None
    model = ZooModel(net, (0.0,), (1.0,)).eval()
    shape, num_classes = DATASETS[dataset]
    model.meta = dataclasses.replace(ModelMeta(
        arch=source, in_shape=shape, num_classes=num_classes,
        classes=CIFAR10_CLASSES if dataset == "cifar10" else (),
        mean=(0.0,), std=(1.0,), dataset=dataset,
        training={"robustbench": {"threat_model": threat_model}}),
        format="state_dict", source=source)
    return model

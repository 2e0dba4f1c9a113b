"""Data-set and model loading as jobs, so the UI thread never waits on disk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from explorer.core import data, models
from explorer.core.jobs import CancelToken, Done, Event, Progress
from explorer.core.models import guardrails


def load_data_job(
    name: str,
    split: str,
    *,
    root: str | Path | None = None,
    params: dict[str, Any] | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    yield Progress(0, 1, f"loading {name} ({split})")
    dataset = data.load(name, split, root=root, **(params or {}))
    if token is not None:
        token.check()
    yield Progress(1, 1, f"loaded {name} ({split})")
    yield Done({"dataset": dataset, "name": name, "split": split, "n": len(dataset)})


def load_model_job(
    source: str,
    *,
    builtin: bool,
    arch: str | None = None,
    normalize: str | tuple[Sequence[float], Sequence[float]] | None = None,
    code: str | None = None,
    code_trusted: str | None = None,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """``normalize``: a preset name (``normalize.PRESETS``) or a (mean, std)
    pair for a file whose model expects normalised input; built-ins keep
    their own. ``code``
    (FILE.py:NAME) runs that file to build the network the weights file
    goes into, if its content still has the digest ``code_trusted``."""
    from explorer.core.models.normalize import PRESETS

    yield Progress(0, 1, f"loading model {source}")
    if builtin:
        model = models.load_builtin(source)
    else:
        stats = {}
        if isinstance(normalize, str):
            mean, std = PRESETS[normalize]
            stats = {"mean": mean, "std": std}
        elif normalize is not None:  # (mean, std) typed by the user
            stats = {"mean": tuple(normalize[0]), "std": tuple(normalize[1])}
        from explorer.core.models import robustbench_zoo

        model = (None if arch or code or stats
                 else robustbench_zoo.load_checkpoint_file(source))
        if model is None:
            model = models.load(source, arch=None if code else arch, code=code,
                                code_trusted=code_trusted, **stats)
    if token is not None:
        token.check()
    n_params = sum(p.numel() for p in model.parameters())
    warnings = guardrails.probe_warnings(model)
    yield Progress(1, 1, "model loaded")
    yield Done({"model": model, "source": source, "parameters": n_params,
                "warnings": warnings})


def check_model_job(model, *, token: CancelToken | None = None) -> Iterator[Event]:
    """The guardrails' output checks on a model already loaded (a wrapped
    one: an inference-time defense can make the outputs random)."""
    yield Done({"model": model, "warnings": guardrails.probe_warnings(model)})


def export_model_job(model, path: str, *,
                     token: CancelToken | None = None) -> Iterator[Event]:
    """Write ``model`` as a torch.export program (.pt2) at ``path``."""
    from explorer.core.models import exported

    yield Progress(0, 1, f"exporting to {Path(path).name}")
    written = exported.export(model, path)
    yield Progress(1, 1, "exported")
    yield Done({"path": str(written), "bytes": written.stat().st_size})


# Files whose presence identifies a torchvision data set inside a folder.
_MARKERS = {
    "fashion-mnist": ("FashionMNIST/raw",),
    "mnist": ("MNIST/raw",),
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz"),
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
}


def detect_folder(folder: str | Path) -> str:
    """Which registered data set a user's folder holds (image-folder otherwise)."""
    folder = Path(folder)
    for name, markers in _MARKERS.items():
        if any((folder / m).exists() for m in markers):
            return name
    return "image-folder"

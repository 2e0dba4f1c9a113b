"""The one place that picks the compute device and the thread count."""

from __future__ import annotations

import os

import torch

CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(ValueError):
    """The requested device is unknown or not available on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available() -> list[str]:
    """Devices usable here, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick(preference: str | None = None) -> torch.device:
    """Resolve a user preference (``auto``/``cpu``/``cuda``/``mps``) to a device.

    ``None`` reads ``EXPLORER_DEVICE`` and falls back to ``auto``.
    """
    pref = (preference or os.environ.get("EXPLORER_DEVICE") or "auto").lower()
    base = pref.split(":", 1)[0]
    if base not in CHOICES:
        raise DeviceError(
            f"device must be one of {', '.join(CHOICES)}, got {preference!r}"
        )
    if base == "auto":
        return torch.device(available()[0])
    if base not in available():
        raise DeviceError(f"device {pref!r} is not available on this machine "
                          f"(available: {', '.join(available())})")
    return torch.device(pref)


def describe(device: torch.device) -> str:
    """Short human label, e.g. ``cpu (2 threads)`` or ``cuda: NVIDIA H100``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''})"
    return device.type


def configure_threads(leave_for_ui: int = 1) -> int:
    """Use all cores but ``leave_for_ui`` for torch's intra-op pool.

    The GUI calls this with 1 so the UI thread keeps a core; on a 2-core
    machine torch gets 1 thread. ``EXPLORER_THREADS`` overrides it.
    """
    override = os.environ.get("EXPLORER_THREADS")
    cores = os.cpu_count() or 1
    n = int(override) if override else max(1, cores - leave_for_ui)
    torch.set_num_threads(n)
    return n


def device_of(model: torch.nn.Module, requested: torch.device | str | None = None,
              *, fallback: torch.device | str = "cpu") -> torch.device:
    """The device a computation with ``model`` runs on: ``requested`` when
    given (a job's ``device`` argument), else where the model's parameters or
    buffers live, else ``fallback``."""
    if requested is not None:
        return torch.device(requested)
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device(fallback)

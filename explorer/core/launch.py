"""Run an ``explorer`` command as a torchrun subprocess and read it as a job.

The Training and Evaluate pages can run their work outside the app's process:
``python -m torch.distributed.run --standalone --nproc-per-node N -m explorer
--workspace WS [--device D] train|eval ... --json``. :func:`launch_job` starts
that command in a session (process group) of its own, reads its JSON lines
(see ``explorer.cli.running``) in a reader thread and yields them back as the
core events the pages already draw: ``progress`` → :class:`Progress`,
``metric`` → :class:`Metric`, ``log`` → :class:`Log`, ``artifact`` →
:class:`Artifact`, ``snapshot`` → :class:`Snapshot` (arrays decoded),
``run`` → a :class:`Snapshot` labelled :data:`RUN` carrying the run id the
child recorded, ``result`` → :class:`Done`; a first :class:`Log` names the
process group and the command. Other lines (``epoch``, garbage,
a library's print) are skipped.

Cancelling stops the whole process group (:func:`stop_group`: SIGTERM, a
bounded wait, then SIGKILL), so no rank outlives a Stop; a child that fails
raises :class:`LaunchError` with its last error line(s) from stderr. Every
wait has a timeout. No Qt here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Event,
    Log,
    Metric,
    Progress,
    Snapshot,
)
from explorer.core.params import ParamError

RUN = "run"  # label of the Snapshot carrying the child's workspace run id
CPU = "CPU"  # the device list's one entry without a GPU
STOP_GRACE_S = 20.0  # SIGTERM → SIGKILL (the trainer saves last.pt meanwhile)
KILL_WAIT_S = 10.0  # after SIGKILL
ERROR_LINES = 3  # the child's last error lines shown to the user
POLL_S = 0.1


class LaunchError(Exception):
    """The subprocess failed: its own last error line(s), not a traceback.
    (Not a RuntimeError: superqt reports those as "aborted thread" warnings.)"""


# -- what can be chosen ---------------------------------------------------------
def device_choices() -> list[str]:
    """The device list the pages show: one entry per CUDA GPU
    (``"cuda:0"``...), or just :data:`CPU` on a machine without one."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)] or [CPU]


def max_processes(devices: Sequence[str] | None = None) -> int:
    """How many processes make sense: one per GPU, or the CPU cores."""
    devices = device_choices() if devices is None else list(devices)
    gpus = [d for d in devices if d != CPU]
    return len(gpus) if gpus else max(1, os.cpu_count() or 1)


def check_processes(processes: int, devices: Sequence[str]) -> None:
    """ParamError naming ``processes`` when it does not fit the chosen devices."""
    if not isinstance(processes, int) or processes < 1:
        raise ParamError(f"processes must be a whole number of at least 1, "
                         f"got {processes!r}")
    gpus = [d for d in devices if d != CPU]
    if not devices:
        raise ParamError("devices: choose at least one device")
    if gpus and processes > len(gpus):
        raise ParamError(f"processes must be at most the {len(gpus)} chosen "
                         f"GPU(s), got {processes}")


# -- the command --------------------------------------------------------------------
def command(
    cli_args: Sequence[str],
    *,
    processes: int = 1,
    workspace: str | Path | None = None,
    devices: Sequence[str] = (CPU,),
    python: str | None = None,
) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc-per-node N -m --
    explorer [--workspace WS] --device D <cli_args>``: ``D`` is ``cuda`` when
    GPUs are chosen (each rank takes its own, see
    :func:`explorer.core.distributed.device_for`), else ``cpu``."""
    check_processes(processes, devices)
    gpus = [d for d in devices if d != CPU]
    argv = [python or sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(processes), "-m",
            # "--": torchrun's parser must not read the command's flags (it
            # takes eval's --n for an ambiguous abbreviation of its own)
            "--", "explorer"]
    if workspace is not None:
        argv += ["--workspace", str(workspace)]
    argv += ["--device", "cuda" if gpus else "cpu", *cli_args]
    return argv


def environment(devices: Sequence[str] = (CPU,),
                base: Mapping[str, str] | None = None,
                processes: int = 1) -> dict[str, str]:
    """The child's environment: ``CUDA_VISIBLE_DEVICES`` from the chosen GPUs
    (empty for CPU, so no rank touches a GPU), unbuffered output, this
    ``explorer`` importable (its folder first on ``PYTHONPATH``) and, unless
    ``EXPLORER_THREADS`` is set, the cores but one (the app's UI keeps it, as
    for its own jobs) shared among the ``processes``."""
    env = dict(os.environ if base is None else base)
    if not env.get("EXPLORER_THREADS"):
        cores = os.cpu_count() or 1
        env["EXPLORER_THREADS"] = str(max(1, (cores - 1) // max(processes, 1)))
    gpus = [d for d in devices if d != CPU]
    env["CUDA_VISIBLE_DEVICES"] = ",".join(d.split(":", 1)[1] for d in gpus)
    env["PYTHONUNBUFFERED"] = "1"
    here = str(Path(__file__).resolve().parents[2])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([here, *[p for p in paths if p != here]])
    return env


# -- JSON lines → events --------------------------------------------------------------
def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A small array as JSON: dtype, shape and base64 bytes (see decode_array)."""
    array = np.asarray(array)  # 0-d stays 0-d; tobytes() writes C order
    if array.dtype.kind in "OUS":
        return {"dtype": "str", "shape": list(array.shape),
                "data": array.astype(str).tolist()}
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(value: Mapping[str, Any]) -> np.ndarray:
    shape = tuple(int(n) for n in value["shape"])
    if value["dtype"] == "str":
        return np.array(value["data"], dtype=str).reshape(shape)
    raw = base64.b64decode(value["data"])
    return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(shape).copy()


def parse_line(line: str) -> Event | None:
    """One JSON line of an ``explorer ... --json`` command as a core event;
    None for anything else (an ``epoch`` line, a blank or garbled line, a
    library's print)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    try:
        if kind == "progress":
            return Progress(int(data["done"]), int(data["total"]),
                            str(data.get("label", "")))
        if kind == "metric":
            value = data["value"]
            return Metric(str(data["name"]),
                          float("nan") if value is None else float(value),
                          int(data.get("step", 0)))
        if kind == "log":
            level = data.get("level", "info")
            return Log(str(data["message"]),
                       level if level in ("info", "warning", "error") else "info")
        if kind == "artifact":
            return Artifact(str(data["name"]), Path(data["path"]))
        if kind == "snapshot":
            arrays = {str(k): decode_array(v) for k, v in data["arrays"].items()}
            return Snapshot(int(data.get("step", 0)), int(data.get("total", 0)),
                            arrays, str(data.get("label", "")))
        if kind == RUN:
            return Snapshot(0, 0, {"id": np.array(str(data["id"]))}, RUN)
        if kind == "result":
            return Done({k: v for k, v in data.items() if k != "type"})
    except (KeyError, TypeError, ValueError):
        return None
    return None


def run_id_of(event: Event) -> str | None:
    """The child's workspace run id, from its :data:`RUN` snapshot."""
    if isinstance(event, Snapshot) and event.label == RUN:
        return str(event.arrays["id"])
    return None


def error_lines(stderr: Sequence[str], limit: int = ERROR_LINES) -> str:
    """What the user reads when the child fails: the CLI's ``error: ...``
    lines if any, else the last non-blank lines of stderr (no traceback)."""
    lines = [s.strip() for s in stderr if s.strip()]
    errors = [s for s in lines if s.startswith("error:")]
    if errors:
        return " ".join(dict.fromkeys(errors[-limit:]))
    # a crash: the exception's own line, not the traceback above it
    last = [s for s in lines if not s.startswith(("File ", "Traceback", "^", "~"))]
    return " ".join(last[-limit:]) if last else ""


# -- the process group -----------------------------------------------------------------
def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left (zombies included until
    their parent reaps them)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S,
               kill_wait_s: float = KILL_WAIT_S) -> str:
    """End ``proc``'s whole process group: SIGTERM (torchrun forwards it;
    ``explorer train`` saves ``last.pt``), wait up to ``grace_s``, then
    SIGKILL. Returns ``"exited"``, ``"terminated"`` or ``"killed"``."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    if proc.poll() is not None and not group_alive(pgid):
        return "exited"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    if _wait_group(proc, pgid, grace_s):
        return "terminated"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _wait_group(proc, pgid, kill_wait_s)
    return "killed"


def _wait_group(proc: subprocess.Popen, pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive(pgid):
            return True
        time.sleep(0.05)
    return proc.poll() is not None and not group_alive(pgid)


# -- the job -------------------------------------------------------------------------
def launch_job(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    token: CancelToken,
    grace_s: float = STOP_GRACE_S,
) -> Iterator[Event]:
    """Run ``argv`` (see :func:`command`) and yield its JSON lines as events.

    Ends with the child's :class:`Done` when it exits 0; raises
    :class:`Cancelled` after a cancel (the group stopped), or
    :class:`LaunchError` with the child's last error line(s)."""
    try:
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, bufsize=1,
            env=dict(env or os.environ), cwd=cwd, start_new_session=True)
    except OSError as exc:
        raise LaunchError(f"could not start {argv[0]}: {exc}") from None
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: deque[str] = deque(maxlen=200)
    readers = [threading.Thread(target=_pump, daemon=True, name=f"launch-{name}",
                                args=(stream, put, end))
               for name, stream, put, end in (
                   ("stdout", proc.stdout, lines.put, True),
                   ("stderr", proc.stderr, stderr.append, False))]
    for reader in readers:
        reader.start()
    done: Done | None = None
    try:
        yield Log(f"started process group {proc.pid}: {' '.join(argv)}")
        while True:
            if token.cancelled:
                raise Cancelled
            try:
                line = lines.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the child is ending
                break
            event = parse_line(line)
            if isinstance(event, Done):
                done = event
            elif event is not None:
                yield event
        code = _wait_exit(proc, token)
        readers[1].join(timeout=5)
        if code != 0:
            message = error_lines(stderr) or f"the process ended with code {code}"
            raise LaunchError(message)
        yield done if done is not None else Done({})
    finally:
        stop_group(proc, grace_s)
        for reader in readers:
            reader.join(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()


def _wait_exit(proc: subprocess.Popen, token: CancelToken) -> int:
    """The child's exit code once it closed its output (a cancel still stops it)."""
    while True:
        try:
            return proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            if token.cancelled:
                raise Cancelled from None


def _pump(stream, put, end: bool) -> None:
    """Hand each line of ``stream`` to ``put``; then None if ``end``."""
    try:
        for line in stream:
            put(line.rstrip("\n"))
    except (OSError, ValueError):  # closed under us at the end
        pass
    finally:
        if end:
            put(None)

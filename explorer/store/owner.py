"""Which process owns a run, and is it still alive?

A run records the pid, host name and a *start token* of the process that
created it. The token tells a live owner from an unrelated process that later
got the same pid (common in containers, where pids restart from 1): on Linux
it is the kernel boot id plus the process start time in clock ticks since boot
(``/proc/<pid>/stat`` field 22). Elsewhere the token is ``None`` and only the
pid is checked.

Runs owned by another host cannot be checked; they count as dead once they
have shown no activity for :data:`FOREIGN_STALE_AFTER` seconds (a day), since
an active run records metrics or progress far more often than that.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

FOREIGN_STALE_AFTER = 24 * 3600.0


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    token: str | None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def process_token(pid: int) -> str | None:
    """Boot id + start time of ``pid`` on Linux; ``None`` where unknown."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None or ")" not in stat:
        return None
    # The command name (field 2) may contain spaces and ')'; split after the last ')'.
    fields = stat[stat.rindex(")") + 1 :].split()
    if len(fields) < 20:
        return None
    boot = _read("/proc/sys/kernel/random/boot_id") or "unknown-boot"
    return f"{boot}:{fields[19]}"


def current_owner() -> Owner:
    pid = os.getpid()
    return Owner(pid=pid, host=socket.gethostname(), token=process_token(pid))


def _pid_alive_windows(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    query_limited_information, access_denied, still_active = 0x1000, 5, 259
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:
        return bool(kernel32.GetLastError() == access_denied)
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        # os.kill(pid, 0) would terminate the process on Windows.
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    return True


def owner_alive(
    pid: int | None,
    host: str | None,
    token: str | None,
    *,
    last_activity: float,
    now: float,
    here: Owner | None = None,
) -> bool:
    """Best guess whether the process that owns a run is still running it."""
    here = here or current_owner()
    if host != here.host:
        return now - last_activity < FOREIGN_STALE_AFTER
    if pid is None:
        return False
    if pid == here.pid:
        return token is None or here.token is None or token == here.token
    if not pid_alive(pid):
        return False
    if token is None:
        return True
    live_token = process_token(pid)
    return live_token is None or live_token == token

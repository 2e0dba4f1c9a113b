"""Run the GUI tests several times in a row and count passes, failures and hangs.

A deadlock between Qt and Python threads shows up one run in a few, not
every run: ``make stress`` (``N=10`` by default) is how a change to threads,
jobs or teardown is checked. A run counts as a hang when it is killed by its
wall-clock limit or ends through the hang guards (pytest-timeout or
faulthandler's watchdog, which print every thread's stack); each such run's
log is kept for reading.

    python scripts/stress_gui.py --runs 10 [--limit 600] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANG_MARKS = ("Timeout (0:", "most recent call first", "Timeout +++")


def classify(code: int | None, output: str) -> str:
    if code is None:
        return "hang"
    if any(mark in output for mark in HANG_MARKS):
        return "hang"
    if code == 0:
        return "pass"
    if code < 0:
        return "crash"
    return "fail"


def run_once(target: str, limit: float, env: dict[str, str]) -> tuple[str, str, float]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=limit)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        output, _ = proc.communicate()
        code = None
    return classify(code, output), output, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--limit", type=float, default=600.0,
                        help="seconds before a run counts as hung (default 600)")
    parser.add_argument("--target", default="tests/gui")
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="folder for the logs of runs that did not pass")
    args = parser.parse_args(argv)
    logs = args.keep_logs or Path(tempfile.mkdtemp(prefix="explorer-stress-"))
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CUDA_VISIBLE_DEVICES="")
    counts = {"pass": 0, "fail": 0, "hang": 0, "crash": 0}
    for i in range(1, args.runs + 1):
        verdict, output, seconds = run_once(args.target, args.limit, env)
        counts[verdict] += 1
        line = f"run {i}/{args.runs}: {verdict} in {seconds:.0f} s"
        if verdict != "pass":
            logs.mkdir(parents=True, exist_ok=True)
            log = logs / f"run{i}-{verdict}.log"
            log.write_text(output)
            line += f" (log: {log})"
        print(line, flush=True)
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    print(f"{args.target}: {args.runs} runs: {summary}")
    return 0 if counts["pass"] == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())

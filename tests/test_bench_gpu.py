"""bench/gpu.py keeps working: its tiny CPU version prints every row, the
2-process rows included (gloo on this CPU; a 2-GPU machine runs them by
default)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("(a) 10 x forward+backward, fp32", "(a) PGD-10, fp32",
        "(a) 10 x forward+backward, channels-last", "(a) PGD-10, channels-last",
        "(a) 10 x forward+backward, channels-last + bf16",
        "(a) PGD-10, channels-last + bf16", "(b) raw standard step, bf16",
        "(b) standard via the trainer, bf16", "(b) Fast-AT via the trainer, bf16",
        "(c) raw standard step, 2 processes, bf16",
        "(c) Fast-AT via the trainer, 2 processes, bf16")
RATIOS = ("(a) PGD-10, fp32", "(a) PGD-10, channels-last",
          "(a) PGD-10, channels-last + bf16", "(b) standard via the trainer, bf16",
          "(b) Fast-AT via the trainer, bf16",
          "(c) Fast-AT via the trainer, 2 processes, bf16")


def _table(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        if line.startswith("| ("):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_quick_prints_each_row_with_a_finite_number(tmp_path):
    env = dict(os.environ, EXPLORER_THREADS="1", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--quick",
                           "--processes", "2"],
                          capture_output=True, text=True, timeout=240, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _table(proc.stdout)
    assert set(ROWS) <= set(rows), proc.stdout
    for name in ROWS:
        value = float(rows[name][0])
        assert math.isfinite(value), (name, value)
        assert value > 0, (name, value)
    for name in RATIOS:
        assert math.isfinite(float(rows[name][2])), name
    for name in ("(b) Fast-AT via the trainer, bf16",
                 "(c) Fast-AT via the trainer, 2 processes, bf16"):
        assert rows[name][3].endswith(("meets", "MISSES")), rows[name]

"""bench/soak.py keeps working: one short loop through every page's demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_soak_runs_every_page_and_reports_its_figures(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", EXPLORER_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "0.01",
         "--warmup", "0", "--json",
         "--short-training"],
        capture_output=True, text=True, timeout=280, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failures"] == []
    assert result["loops"] >= 1
    for page in ("data", "attack", "training", "evaluate", "playground", "inside",
                 "denoise"):
        assert result["demos"].get(page, 0) >= 1, result["demos"]
    assert result["ticks"] > 0
    assert 0 <= result["ui_p99_ms"] < 10_000
    assert result["rss_mb"] > 0
    assert "rss_growth" in result  # None until two loops end after the warm-up

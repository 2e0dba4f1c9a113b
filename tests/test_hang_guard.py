"""A stuck test ends the run with every thread's stack (pyproject's settings)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HANGS = {
    # Python code waiting forever: pytest-timeout's thread method fires.
    "sleep": """
        import threading, time
        def test_stuck():
            threading.Thread(target=time.sleep, args=(600,), daemon=True,
                             name="helper").start()
            time.sleep(600)
    """,
    # Stuck in C while holding the GIL (as the GUI thread is in the Qt
    # teardown deadlock): no Python thread can run, faulthandler's C watchdog
    # still dumps the stacks and exits.
    "gil": """
        import re
        def test_stuck():
            re.match(r"(a+)+$", "a" * 64 + "b")
    """,
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(HANGS))
def test_a_stuck_test_fails_with_stacks(tmp_path, kind):
    test = tmp_path / f"test_{kind}.py"
    test.write_text(textwrap.dedent(HANGS[kind]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-q", str(test),
         # the project's methods, with short limits for the test
         "-o", "timeout=2", "-o", "faulthandler_timeout=5"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "test_stuck" in output, output[-3000:]
    if kind == "sleep":
        assert "Timeout" in output
        assert "helper" in output  # every thread's stack, not only the test's
    else:
        assert "most recent call first" in output

"""`torchrun --nproc-per-node 2 -m explorer eval`: two gloo processes give
exactly the one-process results (robust accuracy, per-image robust flags,
per-image minimal eps) and record one workspace run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["eval", "--model", "fmnist-cnn-standard", "--images", "24",
          "--batch-size", "4", "--json"]
SUITE = ["--suite", "quick", "--steps", "3", "--eps", "0.02", "--per-image"]
MIN_EPS = ["--min-eps"]
# the one-process reference: both commands in one interpreter
REFERENCE = """
import json, sys
from explorer.cli.main import main
for argv in json.loads(sys.argv[1]):
    assert main(argv) == 0
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "EXPLORER_THREADS": "1", "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _results(stdout: str) -> list[dict]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("type") == "result"]


def _torchrun(ws: Path, extra: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc-per-node", "2", "-m", "explorer", "--workspace", str(ws),
         *COMMON, *extra],
        capture_output=True, text=True, timeout=180, env=_env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = _results(done.stdout)  # rank 0 alone prints
    return result


@pytest.mark.slow
def test_two_processes_give_the_one_process_results(tmp_path):
    one_ws, two_ws = tmp_path / "one", tmp_path / "two"
    argvs = [["--workspace", str(one_ws), *COMMON, *extra]
             for extra in (SUITE, MIN_EPS)]
    done = subprocess.run([sys.executable, "-c", REFERENCE, json.dumps(argvs)],
                          capture_output=True, text=True, timeout=180, env=_env(),
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    suite_one, eps_one = _results(done.stdout)

    suite_two = _torchrun(two_ws, SUITE)
    assert suite_two["world_size"] == 2
    assert suite_one["world_size"] == 1
    for key in ("n", "clean_acc", "robust_acc", "per_attack", "attacked", "robust"):
        assert suite_two[key] == suite_one[key], key
    assert 0 < sum(suite_one["robust"]) < 24  # some images broken, some not

    eps_two = _torchrun(two_ws, MIN_EPS)
    for key in ("n", "clean_acc", "confusion", "min_eps", "min_eps_median",
                "min_eps_unbroken"):
        assert eps_two[key] == eps_one[key], key
    assert len(eps_two["min_eps"]) == 24

    # one workspace run per command: rank 1 recorded nothing
    runs = sorted(p.name for p in (two_ws / "runs").iterdir())
    assert len(runs) == 2
    assert {suite_two["run_id"], eps_two["run_id"]} == set(runs)

"""`explorer train --noilin`: the wrapper recorded in the run, its flags'
one-line errors."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.core import defenses
from explorer.store import Workspace

BASE = ["train", "--arch", "mlp", "--hidden", "16", "--depth", "1",
        "--limit-train", "128", "--batch-size", "64", "--eval-n", "32",
        "--eval-steps", "1", "--epochs", "1"]  # fmt: skip


def test_noilin_wraps_trades_and_the_run_records_it(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--defense", "trades", "--steps", "1",
                 "--noilin", "--noilin-rate", "0.2", "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["noilin"] == {"rate": 0.2, "growth": 0.05, "rate_max": 0.6}
    assert last["params"]["beta"] == 6.0
    with Workspace.open(ws) as store:
        run = store.get(last["run_id"])
        assert run.title.startswith("trades + NoiLIn")
        config = defenses.TrainingConfig.from_json(run.config)
    assert (config.defense, config.noilin["rate"]) == ("trades", 0.2)


def test_without_noilin_the_run_records_none(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--defense", "fast-at", "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["noilin"] is None


@pytest.mark.parametrize(("flags", "message"), [
    (["--defense", "pgd-at", "--noilin", "--noilin-rate", "1.5"],
     "--noilin-rate: rate must be in [0, 1], got 1.5"),
    (["--defense", "pgd-at", "--noilin", "--noilin-growth", "x"],
     "--noilin-growth: growth must be a number"),
    (["--defense", "pgd-at", "--noilin", "--noilin-rate", "0.7",
      "--noilin-rate-max", "0.5"], "--noilin: rate must be at most rate_max"),
    (["--defense", "standard", "--noilin"],
     "--noilin: NoiLIn wraps adversarial-training methods only, not 'standard'"),
    (["--defense", "trades", "--noilin-rate", "0.1"],
     "--noilin-rate is a parameter of --noilin; add --noilin"),
])  # fmt: skip
def test_bad_noilin_flags_give_one_line(capsys, tmp_path, flags, message):
    code = main(["--workspace", str(tmp_path / "ws"), "train", *flags])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err

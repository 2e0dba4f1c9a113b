"""`explorer train --defense soe`: a recorded run whose best file is the
representative ensemble, its line in `defenses list`, one-line errors."""

from __future__ import annotations

import json

from explorer.cli import main
from explorer.core import models
from explorer.core.models.ensemble import Ensemble

BASE = ["train", "--arch", "mlp", "--hidden", "16", "--depth", "1",
        "--limit-train", "128", "--batch-size", "64", "--eval-n", "32",
        "--eval-steps", "1", "--defense", "soe"]  # fmt: skip


def test_train_soe_writes_a_representative_ensemble(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--members", "2", "--steps", "1",
                 "--posterior-weight", "0.5", "--epochs", "1", "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["type"] == "result"
    assert last["params"] == {"members": 2, "eps": 0.1, "alpha": 0.025,
                              "steps": 1, "posterior_weight": 0.5, "seed": 0}
    best = models.load(last["best"])
    assert isinstance(best, Ensemble)
    assert (best.rule, len(best.members)) == ("representative", 2)
    assert main(["defenses", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines()
                if x.startswith("soe "))
    assert "Synergy-of-Experts" in line
    assert "posterior_weight" in line


def test_a_bad_soe_parameter_is_one_line(capsys, tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), *BASE, "--members", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: --members: members must be in [2, 10], got 1"

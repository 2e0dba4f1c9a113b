"""`explorer train` with a multi-norm method: per-epoch l-inf, l2, l1 and
union accuracy in the JSON lines, union accuracy in the text lines, and the
best epoch chosen on validation union accuracy."""

from __future__ import annotations

import json
import re

from explorer.cli import main

BASE = ["train", "--arch", "mlp", "--hidden", "16", "--depth", "1",
        "--limit-train", "128", "--batch-size", "64", "--eval-n", "16",
        "--eval-steps", "1", "--steps", "1"]  # fmt: skip
FIGURES = {f"{part}_{norm}_acc" for part in ("val", "test")
           for norm in ("linf", "l2", "l1", "union")}


def test_msd_json_epoch_lines_carry_union_accuracy(capsys, tmp_path):
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--defense", "msd",
                 "--epochs", "2", "--json"])
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    epochs, last = [e for e in lines if e["type"] == "epoch"], lines[-1]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for line in epochs:
        assert set(line) >= FIGURES
        assert line["val_union_acc"] <= min(line["val_linf_acc"], line["val_l2_acc"],
                                            line["val_l1_acc"])
    assert last["type"] == "result"
    assert last["selected_metric"] == "val_union_acc"
    union = [e["val_union_acc"] for e in epochs]
    assert last["best_epoch"] == 1 + union.index(max(union))
    best = epochs[last["best_epoch"] - 1]
    assert last["best_val_selected"] == best["val_union_acc"]
    assert last["best_test_selected"] == best["test_union_acc"]


def test_text_lines_show_union_accuracy_and_what_chose_the_best_epoch(capsys,
                                                                       tmp_path):
    assert main(["--workspace", str(tmp_path / "ws"), *BASE, "--defense",
                 "adv-avg", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    (epoch,) = [ln for ln in out.splitlines() if ln.startswith("epoch 1:")]
    assert re.search(r"val clean \S+ robust \S+ union \d+\.\d%", epoch)
    assert re.search(r"test clean \S+ robust \S+ union \d+\.\d%", epoch)
    assert "best epoch 1 chosen on validation union accuracy" in out
    # a single-norm method names its own norm; l-inf methods say nothing more
    assert main(["--workspace", str(tmp_path / "ws"), *BASE, "--defense",
                 "pgd-at-l2", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"val clean \S+ robust \S+ l2 \d+\.\d%", out)
    assert "chosen on validation l2 accuracy" in out
    assert main(["--workspace", str(tmp_path / "ws"), *BASE, "--defense",
                 "pgd-at", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "union" not in out
    assert "chosen on validation (" in out

"""`explorer train`: epoch lines, a recorded run, resume, one-line errors."""

from __future__ import annotations

import json

import pytest
from damage import cifar_folder

from explorer.cli import main, train_output
from explorer.cli import train as cli_train
from explorer.cli.common import EXIT_CANCELLED
from explorer.core import jobs, models
from explorer.store import Workspace

BASE = ["train", "--arch", "mlp", "--hidden", "32", "--depth", "1",
        "--limit-train", "256", "--batch-size", "64", "--eval-n", "64",
        "--eval-steps", "2"]  # fmt: skip


def _lines(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]


def test_train_one_epoch_json_records_a_run(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, *BASE, "--defense", "pgd-at", "--steps", "2",
                 "--eps", "8/255", "--epochs", "1", "--json"])
    assert code == 0
    lines = _lines(capsys)
    epochs, last = [e for e in lines if e["type"] == "epoch"], lines[-1]
    assert last["type"] == "result"
    assert {e["type"] for e in lines} <= {"progress", "metric", "log", "artifact",
                                         "epoch", "result", "run", "snapshot"}
    assert lines[0] == {"type": "run", "id": last["run_id"]}  # for the app
    assert [e["epoch"] for e in epochs] == [1]
    assert set(epochs[0]) == {"type", "epoch", "train_loss", "train_acc",
                              "val_clean_acc", "val_robust_acc",
                              "test_clean_acc", "test_robust_acc", "lr",
                              "epoch_seconds"}
    assert set(last) >= {"run_id", "epochs", "clean_acc", "robust_acc", "seconds"}
    assert last["epochs"] == 1
    # 10 % of the 256 training images held out; the best epoch chosen on them
    assert (last["selected_on"], last["val_n"], last["best_epoch"]) == (
        "validation", 26, 1)
    assert last["best_val_robust_acc"] == epochs[0]["val_robust_acc"]
    assert last["best_test_robust_acc"] == epochs[0]["test_robust_acc"]
    assert last["best_val_clean_acc"] == epochs[0]["val_clean_acc"]
    assert last["params"] == {"eps": pytest.approx(8 / 255), "alpha": 0.025,
                              "steps": 2}
    with Workspace.open(ws) as store:
        run = store.get(last["run_id"])
        assert (run.kind, run.status) == ("train", "finished")
        assert run.config["defense"] == "pgd-at"
        assert run.config["limit_train"] == 256
        assert (run.config["selected_on"], run.config["val_fraction"]) == (
            "validation", 0.1)
        assert (run.summary["selected_on"], run.summary["val_n"]) == ("validation", 26)
        folder = store.run_dir(run.id)
        assert {"test_robust_acc", "val_robust_acc"} <= set(store.metrics(run.id))
    assert (folder / "last.pt").exists()
    best = models.load(folder / "best.safetensors").meta
    assert best.arch == "mlp"
    assert (best.training["selected_on"], best.training["val_n"]) == ("validation", 26)


def test_val_fraction_zero_keeps_the_last_epoch_and_says_so(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--defense", "standard", "--epochs", "2",
                 "--val-fraction", "0", "--json"]) == 0
    lines = _lines(capsys)
    epochs, last = [e for e in lines if e["type"] == "epoch"], lines[-1]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert "val_robust_acc" not in epochs[0]
    assert (last["selected_on"], last["val_n"], last["best_epoch"]) == ("last", 0, 2)
    assert last["best_val_robust_acc"] is None
    assert last["best_test_robust_acc"] == epochs[1]["test_robust_acc"]
    with Workspace.open(ws) as store:
        assert store.get(last["run_id"]).config["selected_on"] == "last"
    assert main(["--workspace", ws, *BASE, "--defense", "standard", "--epochs", "1",
                 "--val-fraction", "0.5", "--val-max", "20"]) == 0
    out = capsys.readouterr().out
    assert "best epoch 1 chosen on validation (20 images held out" in out
    assert "val clean" in out.splitlines()[0]


@pytest.mark.parametrize(("flags", "message"), [
    (["--val-fraction", "-0.1"],
     "--val-fraction must be at least 0 and below 1, got -0.1"),
    (["--val-fraction", "1"], "--val-fraction must be at least 0 and below 1, got 1"),
    (["--val-max", "0"], "--val-max must be at least 1, got 0"),
    (["--val-fraction", "0.9", "--limit-train", "4"],
     "--val-fraction 0.9 holds out 4 of the 4 training images and leaves none to "
     "train on"),
])  # fmt: skip
def test_a_bad_validation_split_is_one_line_and_exit_1(capsys, tmp_path, flags,
                                                       message):
    ws = tmp_path / "ws"
    code = main(["--workspace", str(ws), "train", "--defense", "standard", *flags])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert message in err
    with Workspace.open(ws) as store:
        assert store.runs(kind="train") == []  # refused before any run is recorded


def test_resume_continues_to_the_planned_epochs(capsys, tmp_path, monkeypatch):
    ws = str(tmp_path / "ws")

    printed = []
    print_epoch = train_output._print_epoch

    def record(epoch, *args):
        printed.append(epoch)
        print_epoch(epoch, *args)

    class StopInEpochTwo(jobs.CancelToken):
        def check(self) -> None:  # the first check after epoch 1 was printed
            if printed:
                raise jobs.Cancelled

    monkeypatch.setattr(train_output, "_print_epoch", record)
    monkeypatch.setattr(jobs, "CancelToken", StopInEpochTwo)
    code = main(["--workspace", ws, *BASE, "--defense", "standard", "--epochs",
                 "2", "--json"])
    assert code == EXIT_CANCELLED
    assert [e["epoch"] for e in _lines(capsys) if e["type"] == "epoch"] == [1]
    with Workspace.open(ws) as store:
        (run,) = store.runs(kind="train")
        assert run.status == "cancelled"
    monkeypatch.undo()
    assert main(["--workspace", ws, "train", "--resume", run.id, "--json"]) == 0
    lines = _lines(capsys)
    epochs, last = [e for e in lines if e["type"] == "epoch"], lines[-1]
    assert [e["epoch"] for e in epochs] == [2]
    assert (last["run_id"], last["epochs"]) == (run.id, 2)
    with Workspace.open(ws) as store:
        assert store.get(run.id).status == "finished"


@pytest.mark.parametrize(("flags", "message"), [
    (["--defense", "pgd-at", "--eps", "2"], "--eps: eps must be in [0, 1]"),
    (["--defense", "trades", "--beta", "x"], "--beta: beta must be a number"),
    (["--defense", "nope"], "unknown defense 'nope'"),
    (["--defense", "standard", "--epochs", "0"], "--epochs must be at least 1"),
    (["--defense", "standard", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["--defense", "standard", "--schedule", "x"], "--schedule"),
    ([], "--defense is required"),
    (["--defense", "standard", "--augment", "bogus"],
     "argument --augment: invalid choice: 'bogus'"),
    (["--defense", "standard", "--train-images", "-5"],
     "--train-images must be a number of images (0 = all), got -5"),
    (["--defense", "standard", "--train-images", "many"],
     "argument --train-images: invalid int value: 'many'"),
])  # fmt: skip
def test_bad_flags_give_one_line(capsys, tmp_path, flags, message):
    code = main(["--workspace", str(tmp_path / "ws"), "train", *flags])
    assert code == 2  # usage errors: argparse's convention
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err


def test_plain_train_shows_a_progress_bar_and_one_line_per_epoch(capsys, tmp_path,
                                                                  monkeypatch):
    from explorer.cli import running

    shown: list = []
    original = running._Display.show

    def spy(self, event):
        shown.append(type(event).__name__)
        return original(self, event)

    monkeypatch.setattr(running._Display, "show", spy)
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--defense",
                 "standard", "--epochs", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Progress" in shown  # the bar saw the batches go by
    assert [ln.split(":")[0] for ln in out.splitlines() if ln.startswith("epoch")] \
        == ["epoch 1", "epoch 2"]
    assert "standard: 2 epochs" in out


def test_a_run_started_in_the_cli_stores_the_pages_config(capsys, tmp_path):
    from explorer.core.defenses import TrainingConfig

    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--defense", "standard", "--epochs", "1",
                 "--json"]) == 0
    run_id = _lines(capsys)[-1]["run_id"]
    with Workspace.open(ws) as store:
        stored = store.get(run_id).config
    config = TrainingConfig.from_json(stored)  # what the Training page resumes
    assert config.to_json() == stored
    assert (config.defense, config.arch, config.limit_train) == ("standard", "mlp", 256)
    assert config.augment == "none"  # what "auto" is for 1×28×28 Fashion-MNIST


@pytest.mark.parametrize("flags", [["--augment", "crop-flip"], []])
def test_a_cifar_run_trains_with_crop_and_flip(capsys, tmp_path, flags):
    """A tiny CIFAR-10 folder (3×32×32): --augment crop-flip, or the default
    auto, trains and records crop-flip in the run and the best weights."""
    cifar_folder(tmp_path / "cifar")  # 15 training and 3 test images
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *BASE, "--data", "cifar10", "--root",
                 str(tmp_path / "cifar"), "--defense", "pgd-at", "--steps", "1",
                 "--epochs", "1", "--batch-size", "8", *flags, "--json"]) == 0
    last = _lines(capsys)[-1]
    assert last["epochs"] == 1
    with Workspace.open(ws) as store:
        assert store.get(last["run_id"]).config["augment"] == "crop-flip"
    assert models.load(last["best"]).meta.training["augment"] == "crop-flip"


@pytest.mark.parametrize(("defense", "params"), [
    ("distillation", {"temperature": 5.0, "teacher": "fmnist-cnn-standard"}),
    ("ensemble-at", {"eps": 0.05, "static": "fmnist-cnn-standard,fmnist-cnn-pgdat"}),
])  # fmt: skip
def test_classic_defenses_train_and_are_listed(capsys, tmp_path, defense, params):
    flags = [x for k, v in params.items() for x in (f"--{k}", str(v))]
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--defense", defense,
                 *flags, "--epochs", "1", "--json"])
    assert code == 0
    last = _lines(capsys)[-1]
    assert (last["defense"], last["params"]) == (defense, params)
    assert main(["defenses", "list"]) == 0
    assert any(line.split()[:1] == [defense]
               for line in capsys.readouterr().out.splitlines())


def test_a_static_model_of_another_shape_is_one_line(capsys, tmp_path):
    cifar_folder(tmp_path / "cifar")
    code = main(["--workspace", str(tmp_path / "ws"), *BASE, "--data", "cifar10",
                 "--root", str(tmp_path / "cifar"), "--defense", "ensemble-at",
                 "--epochs", "1", "--batch-size", "8"])
    assert code == 2  # a parameter that does not fit: a usage error
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("static: built-in model 'fmnist-cnn-standard' takes inputs of shape "
            "(1, 28, 28), but the model being trained takes (3, 32, 32)") in err


@pytest.mark.parametrize(("flag", "n", "expected"), [
    ("--train-images", "100", 100), ("--limit-train", "100", 100),
    ("--train-images", "0", None)])
def test_train_images_sets_the_first_n_training_images(flag, n, expected):
    ns, _ = cli_train.parse(["--defense", "gat", flag, n])
    config = cli_train._config(ns)
    assert config.limit_train == expected  # 0 = all images
    assert config.defense == "gat"


def test_train_images_trains_on_that_many(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    argv = [a if a != "--limit-train" else "--train-images" for a in BASE]
    argv[argv.index("256")] = "60"
    assert main(["--workspace", ws, *argv, "--defense", "standard", "--epochs", "1",
                 "--json"]) == 0
    last = _lines(capsys)[-1]
    assert last["val_n"] == 6  # 10 % of 60 held out, 54 trained on
    with Workspace.open(ws) as store:
        assert store.get(last["run_id"]).config["limit_train"] == 60


def test_gat_trains_on_few_images_and_is_listed(capsys, tmp_path):
    argv = [a if a != "--limit-train" else "--train-images" for a in BASE]
    argv[argv.index("256")] = "96"
    code = main(["--workspace", str(tmp_path / "ws"), *argv, "--defense", "gat",
                 "--tasks", "rotation+jigsaw", "--steps", "1", "--epochs", "1",
                 "--json"])
    assert code == 0
    last = _lines(capsys)[-1]
    assert last["defense"] == "gat"
    assert (last["params"]["tasks"], last["params"]["weighting"]) == (
        "rotation+jigsaw", "mgda")
    assert main(["defenses", "list"]) == 0
    assert any(line.split()[:1] == ["gat"]
               for line in capsys.readouterr().out.splitlines())

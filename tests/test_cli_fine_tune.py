"""`explorer train --init MODEL` (alias --init-from): fine-tuning from the
command line, of every weight or, with --freeze features, the head only."""

from __future__ import annotations

import json

import torch

from explorer.cli import main
from explorer.cli.common import EXIT_ERROR, EXIT_USAGE
from explorer.core import models
from explorer.core.models import exported
from explorer.store import Workspace

TINY = ["train", "--defense", "standard", "--epochs", "1", "--limit-train", "32",
        "--batch-size", "16", "--eval-n", "16", "--eval-steps", "1",
        "--schedule", "constant"]  # fmt: skip


def _program(tmp_path):
    torch.manual_seed(0)
    net = models.create("mlp", in_shape=(1, 28, 28), hidden=8, depth=1)
    return net, exported.export(net, tmp_path / "tiny.pt2")


def test_fine_tune_a_pt2_records_the_run_and_its_best_pt2(capsys, tmp_path):
    net, program = _program(tmp_path)
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, *TINY, "--init-from", str(program), "--json"])
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    result = lines[-1]
    assert result["type"] == "result"
    assert result["epochs"] == 1
    assert result["best"].endswith("best.pt2")
    assert {"type": "artifact", "name": "best", "path": result["best"]} in lines
    best = models.load(result["best"])
    assert best.meta.format == "export"
    assert best.meta.arch == "mlp"
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(best(x), net.eval()(x))  # trained, not a copy
    with Workspace.open(ws) as store:
        run = store.get(result["run_id"])
        assert run.config["init_from"] == str(program)
        assert run.config["arch"] == "mlp"  # the loaded model's, not small-cnn
        assert run.title.endswith("from tiny.pt2")
        assert [a.name for a in store.artifacts(run.id)] == ["best"]


def test_init_from_with_arch_is_a_usage_error(capsys, tmp_path):
    _, program = _program(tmp_path)
    code = main(["--workspace", str(tmp_path / "ws"), *TINY, "--init-from",
                 str(program), "--arch", "mlp"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "--init and --arch" in err
    code = main(["--workspace", str(tmp_path / "ws"), *TINY, "--init-arch", "mlp"])
    assert code == EXIT_USAGE
    assert "--init-arch is for a weights-only --init file" in (
        capsys.readouterr().err)


def test_a_bad_init_file_is_one_line_naming_it(capsys, tmp_path):
    bad = tmp_path / "broken.pt2"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    ws = tmp_path / "ws"
    code = main(["--workspace", str(ws), *TINY, "--init-from", str(bad)])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(bad) in err
    cifar = models.save(models.create("mlp", in_shape=(3, 32, 32), hidden=8,
                                      depth=1), tmp_path / "cifar.safetensors")
    assert main(["--workspace", str(ws), *TINY, "--init-from", str(cifar)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "cifar.safetensors" in err
    assert "3×32×32" in err
    with Workspace.open(ws) as store:
        assert store.runs(kind="train") == []  # refused before a run is recorded


def test_a_weights_only_file_takes_init_arch(capsys, tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(models.create("mlp", in_shape=(1, 28, 28)).state_dict(), bare)
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, *TINY, "--init-from", str(bare)]) == EXIT_ERROR
    assert "pass --init-arch" in capsys.readouterr().err
    code = main(["--workspace", ws, *TINY, "--init-from", str(bare), "--init-arch",
                 "mlp", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["best"].endswith("best.safetensors")
    assert models.load(result["best"]).meta.training["init_from"] == str(bare)


def test_init_is_the_documented_name_and_freeze_features_probes(capsys, tmp_path):
    """--init (the --init-from alias above works too) with --freeze features
    and --new-head: a linear probe whose body is the built-in's, recorded."""
    ws = str(tmp_path / "ws")
    code = main(["--workspace", ws, *TINY, "--init", "fmnist-cnn-standard",
                 "--freeze", "features", "--new-head", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["freeze"] == "features"
    start = models.load_builtin("fmnist-cnn-standard").state_dict()
    best = models.load(result["best"]).state_dict()
    changed = {k for k, v in start.items() if not torch.equal(v, best[k])}
    assert changed == {"head.weight", "head.bias"}
    with Workspace.open(ws) as store:
        run = store.get(result["run_id"])
        assert (run.config["freeze"], run.config["new_head"]) == ("features", True)
        assert run.title.endswith("linear probe from fmnist-cnn-standard")


def test_bad_freeze_flags_are_one_usage_line_naming_the_flag(capsys, tmp_path):
    ws = str(tmp_path / "ws")
    cases = (
        (["--init", "fmnist-cnn-standard", "--freeze", "head"],
         "--freeze: freeze must be one of none, features"),
        (["--freeze", "features"], "--freeze features is for fine-tuning a loaded "
                                   "model; give --init MODEL too"),
        (["--new-head"], "--new-head is for fine-tuning a loaded model"),
    )
    for flags, message in cases:
        assert main(["--workspace", ws, *TINY, *flags]) == EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0
        assert message in err
    _, program = _program(tmp_path)
    code = main(["--workspace", ws, *TINY, "--init", str(program), "--freeze",
                 "features"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert (f"--freeze features: {program} is a torch.export program, whose "
            "classifier head cannot be identified") in err
    assert "use --freeze none" in err
    with Workspace.open(ws) as store:
        assert store.runs(kind="train") == []  # refused before a run is recorded

"""Every way a researcher's own model comes in, through the command line:
`explorer models info --logits N` gives the same logits as the network
built here, to 1e-5; bad files and code give one line naming the file."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from model_files import (
    onnx_export,
    paper_net,
    write_model_code,
    write_robustbench_checkpoint,
)
from safetensors.torch import save_file

from explorer.cli import main
from explorer.core.models import onnx_format, robustbench_zoo, zoo

ONNX = onnx_format.available()
TIMM = zoo.timm_available()
ROBUSTBENCH = robustbench_zoo.available()


def _info(capsys, *args: str) -> dict:
    code = main(["models", "info", "--logits", "4", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _assert_same_logits(result: dict, net: torch.nn.Module) -> None:
    shape = tuple(result["in_shape"])
    x = torch.rand(4, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net.eval()(x)
    got = torch.tensor(result["logits"])
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-5


def _error(capsys, *args: str, code: int = 1) -> str:
    assert main(["models", "info", *args]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_torchvision_checkpoint_saved_by_a_ddp_script(capsys, tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v
                                           for k, v in net.state_dict().items()}}, path)
    result = _info(capsys, "--model", str(path), "--arch", "torchvision:resnet18")
    assert result["arch"] == "torchvision:resnet18"
    _assert_same_logits(result, net)


@pytest.mark.skipif(not TIMM, reason="timm (the [zoo] extra) is not installed")
def test_a_timm_state_dict(capsys, tmp_path):
    import timm

    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=10)
    torch.save(net.state_dict(), tmp_path / "timm.pth")
    result = _info(capsys, "--model", str(tmp_path / "timm.pth"),
                   "--arch", "timm:resnet18")
    _assert_same_logits(result, net)


def test_a_torch_export_program_of_a_foreign_network(capsys, tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.squeezenet1_1(num_classes=10).eval()
    program = torch.export.export(net, (torch.rand(2, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "net.pt2")
    result = _info(capsys, "--model", str(tmp_path / "net.pt2"))
    assert result["format"] == "export"
    _assert_same_logits(result, net)


def test_model_code_and_its_weights(capsys, tmp_path):
    code = write_model_code(tmp_path / "repo")
    torch.manual_seed(0)
    net = paper_net(tmp_path / "repo", "paper_net_wide")
    save_file(net.state_dict(), tmp_path / "wide.safetensors")
    result = _info(capsys, "--model", str(tmp_path / "wide.safetensors"),
                   "--model-code", f"{code}:paper_net_wide")
    assert result["arch"] == "code:paper_net_wide"
    assert result["num_classes"] == 7
    _assert_same_logits(result, net)


def test_model_code_gets_num_classes_from_the_weights(capsys, tmp_path):
    code = write_model_code(tmp_path / "repo")
    torch.manual_seed(1)
    net = paper_net(tmp_path / "repo")
    net.fc = torch.nn.Linear(8, 5)  # a 5-class head: PaperNet(num_classes=5)
    torch.save({"net": net.state_dict()}, tmp_path / "five.pt")
    result = _info(capsys, "--model", str(tmp_path / "five.pt"),
                   "--model-code", f"{code}:PaperNet")
    assert result["num_classes"] == 5
    _assert_same_logits(result, net)


def test_model_code_that_raises_is_one_line_naming_file_and_line(capsys, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\nraise RuntimeError('no GPU here')\n")
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    err = _error(capsys, "--model", str(tmp_path / "w.pt"),
                 "--model-code", f"{bad}:Net")
    assert str(bad) in err
    assert "RuntimeError: no GPU here (line 3)" in err


def test_model_code_without_the_name(capsys, tmp_path):
    code = write_model_code(tmp_path / "repo")
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    err = _error(capsys, "--model", str(tmp_path / "w.pt"),
                 "--model-code", f"{code}:ResNet")
    assert "defines no 'ResNet' (it defines: PaperNet, paper_net_wide)" in err


def test_model_code_and_arch_together_is_a_usage_error(capsys, tmp_path):
    code = write_model_code(tmp_path / "repo")
    err = _error(capsys, "--model", str(tmp_path / "w.pt"), "--arch", "small-cnn",
                 "--model-code", f"{code}:PaperNet", code=2)
    assert "--arch and --model-code" in err


def test_model_code_help_says_it_runs_code(capsys):
    with pytest.raises(SystemExit):
        main(["models", "info", "--help"])
    assert "RUNS THE PYTHON CODE" in " ".join(capsys.readouterr().out.split())


@pytest.mark.skipif(not ONNX, reason="onnx2torch (the [onnx] extra) is not installed")
def test_an_onnx_model(capsys, tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10)
    onnx_export(net, tmp_path / "r18.onnx")
    result = _info(capsys, "--model", str(tmp_path / "r18.onnx"))
    assert (result["format"], result["in_shape"]) == ("onnx", [3, 32, 32])
    _assert_same_logits(result, net)


@pytest.mark.skipif(not ONNX, reason="onnx2torch (the [onnx] extra) is not installed")
def test_an_onnx_model_with_a_fixed_batch_runs_any_batch(capsys, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 6))
    onnx_export(net, tmp_path / "fixed.onnx", batch=3)  # 4 images: 3 + 1 padded
    _assert_same_logits(_info(capsys, "--model", str(tmp_path / "fixed.onnx")), net)


def test_onnx_without_the_extra_names_it(capsys, tmp_path, monkeypatch):
    from explorer.core.models import onnx_format

    monkeypatch.setattr(onnx_format, "available", lambda: False)
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x08\x12\x07pytorch")
    err = _error(capsys, "--model", str(path))
    assert str(path) in err
    assert "pip install 'robustness-explorer[onnx]'" in err


@pytest.mark.skipif(not ONNX, reason="onnx2torch (the [onnx] extra) is not installed")
def test_a_damaged_onnx_file(capsys, tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07" + b"\xff" * 40)
    err = _error(capsys, "--model", str(path))
    assert f"{path}: not a readable ONNX model" in err


ROBUSTBENCH_NAME = "Ding2020MMA"  # a WRN-28-4, the smallest in the CIFAR-10 zoo


@pytest.mark.skipif(not ROBUSTBENCH, reason="robustbench is not installed")
def test_a_robustbench_model_from_its_own_architecture_code(capsys, tmp_path):
    net, path = write_robustbench_checkpoint(tmp_path / "models", ROBUSTBENCH_NAME)
    result = _info(capsys, "--model", f"robustbench:{ROBUSTBENCH_NAME}",
                   "--robustbench-dir", str(tmp_path / "models"))
    assert result["classes"][0] == "airplane"
    _assert_same_logits(result, net)
    # the checkpoint file itself, where RobustBench keeps it, opens the same way
    by_path = _info(capsys, "--model", str(path))
    assert by_path["arch"] == f"robustbench:{ROBUSTBENCH_NAME}"
    assert by_path["logits"] == result["logits"]


@pytest.mark.skipif(not ROBUSTBENCH, reason="robustbench is not installed")
def test_a_missing_robustbench_checkpoint_is_named(capsys, tmp_path):
    (tmp_path / "models").mkdir()
    err = _error(capsys, "--model", f"robustbench:{ROBUSTBENCH_NAME}",
                 "--robustbench-dir", str(tmp_path / "models"))
    expected = tmp_path / "models" / "cifar10" / "Linf" / f"{ROBUSTBENCH_NAME}.pt"
    assert f"{expected}: no such checkpoint" in err
    assert "nothing is downloaded" in err


@pytest.mark.skipif(not ROBUSTBENCH, reason="robustbench is not installed")
def test_an_unknown_robustbench_name_suggests_the_close_ones(capsys, tmp_path):
    err = _error(capsys, "--model", "robustbench:Ding2020MM",
                 "--robustbench-dir", str(tmp_path))
    assert "did you mean Ding2020MMA?" in err


def test_robustbench_without_the_extra_names_it(capsys, tmp_path, monkeypatch):
    from explorer.core.models import robustbench_zoo

    monkeypatch.setattr(robustbench_zoo, "available", lambda: False)
    err = _error(capsys, "--model", "robustbench:Standard",
                 "--robustbench-dir", str(tmp_path))
    assert "pip install 'robustness-explorer[robustbench]'" in err


def test_robustbench_flags_on_a_file_are_a_usage_error(capsys, tmp_path):
    err = _error(capsys, "--model", "fmnist-cnn-standard", "--threat-model", "L2",
                 code=2)
    assert "--threat-model: only for --model robustbench:NAME" in err

"""Library architectures from the command line: --arch torchvision:NAME and
`explorer models archs`."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import torchvision

from explorer.cli import main


def _last(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _rgb_folder(root, n_classes=10):
    from PIL import Image

    for k in range(n_classes):
        (root / f"class{k}").mkdir(parents=True)
        Image.new("RGB", (32, 32), (20 * k, 100, 200 - 15 * k)).save(
            root / f"class{k}" / "0.png")
    return root


def test_eval_a_torchvision_checkpoint(capsys, tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": net.state_dict(), "epoch": 90}, path)
    folder = _rgb_folder(tmp_path / "pics")
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model", str(path),
                 "--arch", "torchvision:resnet18", "--data", "image-folder",
                 "--root", str(folder), "--input-shape", "3x32x32", "--json"]) == 0
    result = _last(capsys)
    assert result["n"] == 10
    from explorer.core import data

    x, y = data.load("image-folder", "test", root=folder, channels=3, height=32,
                     width=32).as_tensors(0, 10)
    with torch.no_grad():
        expected = (net(x).argmax(1) == y).float().mean().item()
    assert result["clean_acc"] == pytest.approx(expected)


def test_without_arch_the_message_names_the_libraries(capsys, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 str(path)]) == 1
    err = capsys.readouterr().err
    assert "pass --arch" in err
    assert "torchvision:NAME" in err
    assert len(err.strip().splitlines()) == 1


def test_models_archs_lists_every_accepted_name(capsys):
    assert main(["models", "archs", "--json"]) == 0
    rows = _last(capsys)["archs"]
    names = [r["name"] for r in rows]
    assert names[:2] == ["mlp", "small-cnn"]
    assert "torchvision:resnet18" in names
    assert main(["models", "archs", "--library", "torchvision"]) == 0
    table = capsys.readouterr().out
    assert "torchvision:efficientnet_b0" in table
    assert "small-cnn" not in table


def test_models_archs_for_timm_without_timm(capsys):
    if importlib.util.find_spec("timm") is not None:
        pytest.skip("timm is installed")
    assert main(["models", "archs", "--library", "timm"]) == 1
    assert "timm is not installed" in capsys.readouterr().err


def test_arch_help_names_the_libraries(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "torchvision:NAME" in capsys.readouterr().out


def test_without_input_shape_the_mismatch_says_how(capsys, tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    folder = _rgb_folder(tmp_path / "pics")
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model", str(path),
                 "--arch", "torchvision:resnet18", "--data", "image-folder",
                 "--root", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "expects 3×32×32 inputs" in err
    assert "--input-shape 3x32x32" in err


@pytest.mark.parametrize(("argv", "needle"), [
    (["--input-shape", "3x32"], "--input-shape must look like 3x32x32"),
    (["--input-shape", "4x32x32"], "channels 1 or 3"),
    (["--input-shape", "3x32x32"], "data set 'fashion-mnist-mini' has 1x28x28 "
                                   "images, and only image folders"),
])
def test_bad_input_shapes_are_usage_errors(capsys, tmp_path, argv, needle):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model",
                 "fmnist-cnn-standard", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_models_export_then_eval_the_program(capsys, tmp_path):
    out = tmp_path / "standard.pt2"
    assert main(["models", "export", "--model", "fmnist-cnn-standard", "--out",
                 str(out), "--json"]) == 0
    assert _last(capsys)["out"] == str(out)
    accuracies = []
    for model in ("fmnist-cnn-standard", str(out)):
        assert main(["--workspace", str(tmp_path / "ws"), "eval", "--model", model,
                     "--n", "100", "--json"]) == 0
        accuracies.append(_last(capsys)["clean_acc"])
    assert accuracies[0] == accuracies[1]


def test_models_export_needs_a_pt2_name(capsys, tmp_path):
    assert main(["models", "export", "--model", "fmnist-cnn-standard", "--out",
                 str(tmp_path / "m.onnx")]) == 2
    assert "--out must end in .pt2" in capsys.readouterr().err


def test_normalize_wraps_a_model_that_expects_normalised_input(capsys, tmp_path):
    """Exported with --normalize imagenet, the program takes [0, 1] pixels and
    gives what the bare network gives on ImageNet-normalised ones."""
    from explorer.core import models
    from explorer.core.models.normalize import PRESETS

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "r.pth")
    out = tmp_path / "r.pt2"
    assert main(["models", "export", "--model", str(tmp_path / "r.pth"), "--arch",
                 "torchvision:resnet18", "--normalize", "imagenet", "--out",
                 str(out)]) == 0
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in PRESETS["imagenet"])
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(models.load(out)(x), net((x - mean) / std), atol=1e-5)
    assert main(["models", "export", "--model", str(tmp_path / "r.pth"), "--arch",
                 "torchvision:resnet18", "--mean", "0.5", "--std", "0.25", "--out",
                 str(tmp_path / "s.pt2")]) == 0
    with torch.no_grad():
        assert torch.allclose(models.load(tmp_path / "s.pt2")(x), net((x - 0.5) / 0.25),
                              atol=1e-5)


@pytest.mark.parametrize(("argv", "needle"), [
    (["--model", "w.pth", "--normalize", "imagenet", "--mean", "0.5", "--std", "1"],
     "give one or the other"),
    (["--model", "w.pth", "--mean", "0.5"], "--mean and --std go together"),
    (["--model", "w.pth", "--mean", "0.5", "--std", "0"], "--std must be positive"),
    (["--model", "w.pth", "--mean", "a,b", "--std", "1"], "comma-separated numbers"),
    (["--model", "fmnist-cnn-standard", "--normalize", "none"],
     "built-in model with its own architecture and normalisation"),
])
def test_bad_normalisation_flags_are_usage_errors(capsys, tmp_path, argv, needle):
    assert main(["--workspace", str(tmp_path / "ws"), "eval", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def _softmax_program(path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10),
                              torch.nn.Softmax(dim=1))
    torch.export.save(torch.export.export(
        net, (torch.rand(2, 1, 28, 28),),
        dynamic_shapes=({0: torch.export.Dim("batch")},)), path)
    return path


def test_results_carry_the_guardrail_warnings(capsys, tmp_path):
    path = _softmax_program(tmp_path / "probs.pt2")
    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "eval", "--model", str(path), "--n", "50",
                 "--json"]) == 0
    captured = capsys.readouterr()
    warnings = json.loads(captured.out.strip().splitlines()[-1])["warnings"]
    codes = [w.split(":")[0] for w in warnings]
    assert codes == ["softmax", "near chance"]  # untrained: guessing too
    assert "warning: softmax: the outputs are probabilities" in captured.err
    assert main(["--workspace", ws, "attack", "--model", str(path), "--attack",
                 "fgsm", "--n", "20", "--json"]) == 0
    assert "softmax" in _last(capsys)["warnings"][0]
    assert main(["--workspace", ws, "eval", "--model", "fmnist-cnn-standard",
                 "--n", "50", "--json"]) == 0
    assert _last(capsys)["warnings"] == []


def test_an_eps_above_one_is_asked_about(capsys):
    assert main(["attack", "--model", "fmnist-cnn-standard", "--attack", "pgd",
                 "--eps", "8", "--n", "4"]) == 2
    assert "did you mean 8/255 = 0.0314?" in capsys.readouterr().err

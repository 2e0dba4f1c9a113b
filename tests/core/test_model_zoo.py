"""Library architectures by name (torchvision:NAME, timm:NAME), checkpoints
as training scripts save them, and what a file that fits nowhere is told."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torchvision

from explorer.core import models
from explorer.core.models import zoo

X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def _logits_match(model, net):
    with torch.no_grad():
        assert torch.allclose(model(X), net(X), atol=1e-5, rtol=0)


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s},
    lambda s: {"model": s},
    lambda s: {"net": s, "epoch": 3},
    lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
], ids=["bare", "state_dict", "model", "net", "ddp"])
def test_a_torchvision_checkpoint_loads_by_name(tmp_path, resnet18, wrap):
    path = tmp_path / "resnet18.pth"
    torch.save(wrap(resnet18.state_dict()), path)
    model = models.load(path, arch="torchvision:resnet18")
    assert model.meta.arch == "torchvision:resnet18"
    assert model.meta.in_shape == (3, 32, 32)
    assert model.meta.num_classes == 10
    assert (model.meta.mean, model.meta.std) == ((0.0,), (1.0,))  # no guessing
    _logits_match(model, resnet18)


def test_saved_again_it_needs_no_arch(tmp_path, resnet18):
    path = tmp_path / "r.pth"
    torch.save(resnet18.state_dict(), path)
    model = models.load(path, arch="torchvision:resnet18", mean=(0.5,), std=(0.25,))
    models.save(model, tmp_path / "r.safetensors")
    again = models.load(tmp_path / "r.safetensors")
    assert again.meta.arch == "torchvision:resnet18"
    assert again.meta.mean == (0.5,)
    with torch.no_grad():
        assert torch.allclose(again(X), resnet18((X - 0.5) / 0.25), atol=1e-5)


def test_features_and_head_give_the_logits(resnet18):
    model = models.create("torchvision:resnet18", in_shape=(3, 32, 32),
                          num_classes=10, mean=(0.0,), std=(1.0,)).eval()
    with torch.no_grad():
        feats = model.features(X)
        assert feats.shape == (4, 512)
        assert torch.allclose(model.head(feats), model(X), atol=1e-5)


@pytest.mark.parametrize(("arch", "in_shape", "message"), [
    ("torchvision:resnet1000", (3, 32, 32), "unknown torchvision architecture "
                                            "'resnet1000'"),
    ("torchvision:resnet18", (1, 28, 28), "takes 3-channel images, not 1-channel"),
    ("keras:resnet18", (3, 32, 32), "unknown architecture 'keras:resnet18'"),
])
def test_bad_names_and_shapes_are_one_line(arch, in_shape, message):
    with pytest.raises(models.ModelError, match=message):
        models.create(arch, in_shape=in_shape)


def test_timm_without_timm_names_the_extra():
    if importlib.util.find_spec("timm") is not None:
        pytest.skip("timm is installed")
    with pytest.raises(models.ModelError, match=r"needs timm.*\[zoo\]"):
        models.create("timm:resnet18", in_shape=(3, 32, 32))


def test_a_timm_checkpoint_loads_by_name(tmp_path):
    timm = pytest.importorskip("timm")
    net = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "t.pth")
    _logits_match(models.load(tmp_path / "t.pth", arch="timm:resnet18"), net)


def test_the_closest_architecture_is_named(tmp_path, resnet18):
    path = tmp_path / "r.pth"
    torch.save(resnet18.state_dict(), path)
    with pytest.raises(models.ModelError) as wrong_depth:
        models.load(path, arch="torchvision:resnet34")
    assert "these are the weights of torchvision:resnet18: pass --arch " \
           "torchvision:resnet18" in str(wrong_depth.value)
    with pytest.raises(models.ModelError) as own:
        models.load(path, arch="preact-resnet18")
    assert "torchvision:resnet18" in str(own.value)
    assert "\n" not in str(own.value)


def test_differing_keys_are_shown_side_by_side(tmp_path, resnet18):
    state = resnet18.state_dict()
    state["fc.weight2"] = state.pop("fc.weight")  # one renamed key
    torch.save(state, tmp_path / "renamed.pth")
    with pytest.raises(models.ModelError) as err:
        models.load(tmp_path / "renamed.pth", arch="torchvision:resnet18")
    text = str(err.value)
    assert "first differences (file | torchvision:resnet18): " \
           "'fc.weight2' 10×512 | 'fc.weight' 10×512" in text


def test_the_library_lists_classification_builders_only():
    names = zoo.names("torchvision")
    assert "torchvision:resnet18" in names
    assert "torchvision:vit_b_16" in names
    assert not any("fcn_" in n or "raft" in n for n in names)  # not classifiers

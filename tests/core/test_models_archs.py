"""Architectures: shapes, features, normalisation first, parameter validation."""

import pytest
import torch
from torch import nn

from explorer.core import models
from explorer.core.params import ParamError, validate

# Small settings so every architecture runs in milliseconds.
TINY = {
    "mlp": {"hidden": 16, "depth": 1},
    "small-cnn": {"width": 4, "dense": 16},
    "lenet5": {},
    "preact-resnet18": {"width": 4},
    "wide-resnet": {"depth": 10, "widen_factor": 1},
}


def test_registry_lists_every_architecture():
    assert set(models.names()) == set(TINY)


@pytest.mark.parametrize("arch", sorted(TINY))
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_forward_and_features_shapes(arch, shape):
    model = models.create(arch, in_shape=shape, num_classes=7, **TINY[arch]).eval()
    x = torch.rand(3, *shape)
    logits = model(x)
    feats = model.features(x)
    assert logits.shape == (3, 7)
    assert feats.dim() == 2
    assert feats.shape[0] == 3
    assert torch.isfinite(logits).all()
    assert model.meta.arch == arch
    assert model.meta.in_shape == shape
    assert model.meta.num_classes == 7
    assert len(model.meta.classes) == 7


@pytest.mark.parametrize("arch", sorted(TINY))
def test_normalisation_is_the_first_layer(arch):
    mean, std = (0.2, 0.3, 0.4), (0.5, 0.25, 0.1)
    model = models.create(arch, in_shape=(3, 32, 32), mean=mean, std=std, **TINY[arch])
    first = next(iter(model.children()))
    assert isinstance(first, models.Normalize)
    assert first.values() == (mean, std)
    x = torch.rand(2, 3, 32, 32)
    expected = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(first(x), expected)
    assert "normalize.mean" in model.state_dict()


@pytest.mark.parametrize("arch", sorted(TINY))
def test_spec_defaults_validate_and_build(arch):
    spec = models.spec(arch)
    defaults = {p.name: p.default for p in spec}
    assert validate(spec, {}) == defaults
    model = models.create(arch).eval()
    assert model.meta.arch_params == defaults
    with torch.no_grad():
        assert model(torch.rand(1, 1, 28, 28)).shape == (1, 10)


def test_small_cnn_stays_small():
    model = models.create("small-cnn")
    count = sum(p.numel() for p in model.parameters())
    assert 100_000 <= count <= 500_000


@pytest.mark.parametrize(
    ("arch", "params", "name"),
    [
        ("wide-resnet", {"depth": 11}, "depth"),
        ("wide-resnet", {"widen_factor": 0}, "widen_factor"),
        ("mlp", {"hidden": -3}, "hidden"),
        ("mlp", {"depth": 1.5}, "depth"),
        ("small-cnn", {"width": -1}, "width"),
        ("preact-resnet18", {"width": 0}, "width"),
        ("lenet5", {"width": 3}, "width"),
    ],
)
def test_bad_params_name_the_parameter(arch, params, name):
    with pytest.raises(ParamError, match=name):
        models.create(arch, **params)


def test_wide_resnet_depth_message_explains_the_rule():
    with pytest.raises(ParamError, match=r"\(depth - 4\) % 6 == 0.*got 11"):
        models.create("wide-resnet", depth=11)


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(models.ModelError, match="small-cnn"):
        models.create("vgg-99")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_shape": (28, 28)}, "in_shape"),
        ({"num_classes": 0}, "num_classes"),
        ({"in_shape": (3, 32, 32), "mean": (0.1, 0.2)}, "mean"),
        ({"std": (0.0,)}, "std"),
        ({"classes": ("a", "b")}, "class names"),
    ],
)
def test_bad_shapes_and_statistics_are_rejected(kwargs, match):
    with pytest.raises(models.ModelError, match=match):
        models.create("lenet5", **kwargs)


def test_models_are_scriptable_with_features():
    import warnings

    model = models.create("small-cnn", **TINY["small-cnn"]).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(model)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(scripted(x), model(x))
    torch.testing.assert_close(scripted.features(x), model.features(x))


def test_gradients_reach_the_input():
    model = models.create("small-cnn", **TINY["small-cnn"]).eval()
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    nn.functional.cross_entropy(model(x), torch.zeros(4, dtype=torch.long)).backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0

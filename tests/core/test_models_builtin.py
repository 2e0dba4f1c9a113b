"""Built-in pretrained models and the model/data compatibility check."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explorer.core import models
from explorer.core.resources import resource_path

BUILTIN = "fmnist-cnn-standard"
FMNIST = SimpleNamespace(
    name="fashion-mnist-mini", shape=(1, 28, 28), classes=tuple("abcdefghij")
)


def test_builtin_loads_in_eval_mode_with_meta():
    assert BUILTIN in models.builtin_names()
    model = models.load_builtin(BUILTIN)
    assert not model.training
    meta = model.meta
    assert meta.arch == "small-cnn"
    assert meta.in_shape == (1, 28, 28)
    assert meta.dataset == "fashion-mnist"
    assert meta.classes[0] == "T-shirt/top"
    assert meta.classes[-1] == "Ankle boot"
    assert meta.mean == (0.286,)
    assert meta.std == (0.353,)
    assert meta.training["method"] == "standard"
    assert meta.training["test_accuracy"] >= 0.88
    assert meta.source == BUILTIN
    models.check_compatible(model, FMNIST)


def test_builtin_accuracy_on_the_mini_test_split():
    npz_path = resource_path("fashion-mnist-mini.npz")
    if not npz_path.is_file():
        pytest.skip("explorer/resources/fashion-mnist-mini.npz is missing")
    with np.load(npz_path, allow_pickle=False) as npz:
        x = torch.from_numpy(npz["x_test"]).float().div(255).unsqueeze(1)
        y = torch.from_numpy(npz["y_test"]).long()
    model = models.load_builtin(BUILTIN)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.88


def test_unknown_builtin_lists_the_names():
    with pytest.raises(models.ModelError, match="unknown built-in model 'nope'"):
        models.load_builtin("nope")


def test_missing_builtin_file_names_the_file_and_script(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_RESOURCES", str(tmp_path))
    assert models.builtin_names() == []
    with pytest.raises(models.ModelError) as err:
        models.load_builtin(BUILTIN)
    assert str(tmp_path / "models" / f"{BUILTIN}.safetensors") in str(err.value)
    assert "scripts/train_builtin.py" in str(err.value)


def test_compatible_model_passes():
    models.check_compatible(models.create("lenet5"), FMNIST)


def test_input_shape_mismatch_states_both_shapes():
    model = models.create("small-cnn", in_shape=(3, 32, 32), width=4)
    with pytest.raises(models.ModelError) as err:
        models.check_compatible(model, FMNIST)
    assert str(err.value) == (
        "model 'small-cnn' expects 3×32×32 inputs and 10 classes, but data set "
        "'fashion-mnist-mini' has 1×28×28 images and 10 classes"
    )


def test_class_count_mismatch_states_both_counts():
    model = models.create("lenet5", num_classes=100)
    with pytest.raises(models.ModelError, match=r"100 classes, but .* and 10 classes"):
        models.check_compatible(model, FMNIST)


def _torchscript(tmp_path, in_shape):
    model = models.create("lenet5", in_shape=in_shape).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(model).save(str(tmp_path / "ts.pt"))
    return models.load(tmp_path / "ts.pt")


def test_torchscript_of_unknown_shape_is_probed(tmp_path):
    models.check_compatible(_torchscript(tmp_path, (1, 28, 28)), FMNIST)
    with pytest.raises(models.ModelError, match=r"fails on 1×28×28 inputs .*channels"):
        models.check_compatible(_torchscript(tmp_path, (3, 32, 32)), FMNIST)


def test_torchscript_class_count_is_probed(tmp_path):
    data = SimpleNamespace(name="cifar100", shape=(1, 28, 28), classes=range(100))
    with pytest.raises(models.ModelError, match="10 outputs, but data set 'cifar100'"):
        models.check_compatible(_torchscript(tmp_path, (1, 28, 28)), data)


def test_the_rce_builtin_predicts_within_a_few_points_of_the_standard_one():
    """fmnist-cnn-rce is trained with reverse cross-entropy; its output is the
    negated logits, so its argmax is the prediction and it stays accurate."""
    from explorer.core import data

    x, y = data.load("fashion-mnist-mini", "test").as_tensors()
    rce = models.load_builtin("fmnist-cnn-rce")
    assert rce.meta.training["method"] == "rce"
    assert rce.meta.training["selected_on"] == "validation"
    with torch.no_grad():
        acc = {name: (models.load_builtin(name)(x).argmax(1) == y).float().mean().item()
               for name in (BUILTIN, "fmnist-cnn-rce")}
    assert acc["fmnist-cnn-rce"] >= 0.88
    assert acc["fmnist-cnn-rce"] >= acc[BUILTIN] - 0.03, acc

"""torch.export programs (.pt2): exported from the app, loaded from anywhere,
refused when their pickles could run code."""

from __future__ import annotations

import pickle
import zipfile

import pytest
import torch

from explorer.core import models
from explorer.core.attacks import create as create_attack
from explorer.core.models import exported

X = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def builtin_pt2(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "standard.pt2"
    exported.export(models.load_builtin("fmnist-cnn-standard"), path)
    return path


def test_an_exported_builtin_loads_with_its_metadata(builtin_pt2):
    original = models.load_builtin("fmnist-cnn-standard")
    model = models.load(builtin_pt2)
    assert model.meta.format == "export"
    assert model.meta.arch == "small-cnn"
    assert model.meta.classes == original.meta.classes
    with torch.no_grad():  # any batch size: the batch dimension is dynamic
        assert torch.allclose(model(X), original(X), atol=1e-5, rtol=0)
        assert model(X[:1]).shape == (1, 10)


def test_an_exported_model_can_be_attacked(builtin_pt2):
    model = models.load(builtin_pt2)
    y = model(X).argmax(1)
    attack = create_attack("pgd", model, eps=0.1, alpha=0.02, steps=5, norm="linf")
    x_adv = attack(X, y)
    assert (x_adv - X).abs().max() <= 0.1 + 1e-6
    assert (model(x_adv).argmax(1) != y).any()  # gradients reach the input
    model.train()  # the program keeps its traced mode; ours switch
    model.eval()


def test_a_foreign_program_gets_its_shape_and_classes_by_probing(tmp_path):
    """Exported with a fixed batch of 2 (the default): any batch still works."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 7))
    program = torch.export.export(net, (torch.rand(2, 3, 8, 8),))
    torch.export.save(program, tmp_path / "foreign.pt2")
    model = models.load(tmp_path / "foreign.pt2")
    assert model.meta.arch == "export"
    assert model.meta.in_shape == (3, 8, 8)
    assert model.meta.num_classes == 7
    assert model.batch == 2
    x = torch.rand(5, 3, 8, 8, requires_grad=True)
    out = model(x)
    assert torch.allclose(out, net(x), atol=1e-5)
    out[4].sum().backward()  # the padded copies of image 4 add no gradient
    expected = torch.autograd.grad(net(x)[4].sum(), x)[0]
    assert torch.allclose(x.grad, expected, atol=1e-6)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_a_program_with_a_code_running_pickle_is_refused(builtin_pt2, tmp_path):
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(builtin_pt2) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        root = src.namelist()[0].split("/")[0]
        dst.writestr(f"{root}/data/constants/evil", pickle.dumps(_Evil()))
    with pytest.raises(models.ModelError, match=r"refused: entry .*evil.* "
                                                r"could run code .*system"):
        models.load(evil)


def _error_of(path) -> str | None:
    try:
        models.load(path)
    except models.ModelError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_program_is_one_line_naming_the_file(builtin_pt2, tmp_path,
                                                       damage):
    blob = bytearray(builtin_pt2.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 3] ^= 0xFF
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(bytes(blob))
    error = _error_of(bad)
    if damage == "truncate":
        assert error is not None
    if error is not None:  # a flipped byte inside raw weights may still load
        assert str(bad) in error
        assert "\n" not in error


def test_exported_models_are_not_saved_as_safetensors(builtin_pt2, tmp_path):
    with pytest.raises(models.ModelError, match=r"saved as \.pt2"):
        models.save(models.load(builtin_pt2), tmp_path / "x.safetensors")


def test_export_leaves_the_callers_model_where_it_is(tmp_path):
    model = models.load_builtin("fmnist-cnn-standard").train()
    exported.export(model, tmp_path / "m.pt2")
    assert model.training  # exported from a copy in eval mode

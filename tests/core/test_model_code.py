"""Model-code files (FILE.py:NAME): what runs when, and the one-line errors."""

from __future__ import annotations

import sys

import pytest
import torch
from model_files import paper_net, write_model_code

from explorer.core import models
from explorer.core.models import code


def test_listing_names_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "net.py"
    path.write_text(f"open({str(marker)!r}, 'w').close()\n"
                    "from torch import nn\n\n"
                    "def helper():\n    pass\n\n"
                    "class Config:\n    pass\n\n"
                    "class Net(nn.Module):\n    pass\n\n"
                    "def _private():\n    pass\n")
    assert code.names_in(path) == ["Net", "Config", "helper"]
    assert not marker.exists()


def test_loading_runs_the_file_and_restores_the_import_path(tmp_path):
    folder = tmp_path / "repo"
    path = write_model_code(folder)
    torch.manual_seed(0)
    net = paper_net(folder)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    before = list(sys.path)
    model = models.load(tmp_path / "w.pt", code=f"{path}:PaperNet")
    assert sys.path == before
    assert model.meta.arch_params == {"code": str(path),
                                      "sha256": code.digest(path)}
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    model(x).sum().backward()  # attacks need input gradients through it
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize(("source", "needle"), [
    ("import sys\nsys.exit(3)\n", "the model code raised SystemExit: 3 (line 2)"),
    ("def Net():\n    return 42\n", "Net() returned a int, not a torch.nn.Module"),
    ("def Net(depth, width):\n    pass\n", "Net needs arguments (depth, width)"),
    ("import no_such_module_here\n", "ModuleNotFoundError: No module named"),
])
def test_code_that_cannot_build_a_network(tmp_path, source, needle):
    path = tmp_path / "net.py"
    path.write_text(source)
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(models.ModelError) as info:
        models.load(tmp_path / "w.pt", code=f"{path}:Net")
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_weights_that_do_not_fit_the_code(tmp_path):
    path = write_model_code(tmp_path / "repo")
    torch.save({"stem.weight": torch.zeros(8, 1, 3, 3)}, tmp_path / "w.pt")
    with pytest.raises(models.ModelError, match=r"w\.pt: the weights do not fit "
                       r"PaperNet from papernet\.py: missing keys"):
        models.load(tmp_path / "w.pt", code=f"{path}:PaperNet")


def test_a_changed_file_is_not_run_on_an_old_trust(tmp_path):
    path = write_model_code(tmp_path / "repo")
    trusted = code.digest(path)
    marker = tmp_path / "ran"
    path.write_text(path.read_text() + f"\nopen({str(marker)!r}, 'w').close()\n")
    with pytest.raises(models.ModelError, match="changed since it was trusted"):
        code.network(code.CodeRef(path, "PaperNet"), trusted=trusted)
    assert not marker.exists()


@pytest.mark.parametrize("text", ["net.py", "net.py:", "net.txt:Net", "net.py:9x"])
def test_bad_references(text):
    with pytest.raises(models.ModelError, match="model code"):
        code.parse(text)


def test_a_code_model_is_not_saved_as_safetensors(tmp_path):
    path = write_model_code(tmp_path / "repo")
    torch.save(paper_net(tmp_path / "repo").state_dict(), tmp_path / "w.pt")
    model = models.load(tmp_path / "w.pt", code=f"{path}:PaperNet")
    with pytest.raises(models.ModelError, match=r"model\.net\.state_dict"):
        models.save(model, tmp_path / "x.safetensors")

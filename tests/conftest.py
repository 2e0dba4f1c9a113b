"""Shared test set-up: offscreen Qt, CPU only, a temporary workspace."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QT_API"] = "pyside6"
os.environ["PYQTGRAPH_QT_LIB"] = "PySide6"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("EXPLORER_THREADS", "2")

import pytest
import torch

torch.set_num_threads(int(os.environ["EXPLORER_THREADS"]))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own workspace and settings; nothing touches $HOME."""
    home = tmp_path_factory.mktemp("explorer-home")
    monkeypatch.setenv("EXPLORER_HOME", str(home / "workspace"))
    monkeypatch.setenv("EXPLORER_CONFIG_DIR", str(home / "config"))
    return home

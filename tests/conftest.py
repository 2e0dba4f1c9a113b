"""Shared test set-up: offscreen Qt, CPU only, a temporary workspace."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QT_API"] = "pyside6"
os.environ["PYQTGRAPH_QT_LIB"] = "PySide6"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("EXPLORER_THREADS", "2")

import sys

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


@pytest.fixture(autouse=True)
def _collect_in_main_thread():
    """Once the GUI tests have turned automatic collection off (Qt objects may
    be freed only in the GUI thread), later tests collect here, between tests."""
    yield
    gui_collector = sys.modules.get("explorer.gui.collector")
    if gui_collector is not None and gui_collector.instance() is not None:
        gui_collector.instance().collect_due()


def pytest_terminal_summary(terminalreporter):
    """How many damaged-file cases were tried (tests/damage.py)."""
    damage = sys.modules.get("damage")
    if damage is not None and damage.TRIED:
        for line in damage.summary().splitlines():
            terminalreporter.write_line(line)

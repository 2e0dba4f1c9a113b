"""A window that cannot open says why, in one line, instead of Qt aborting."""

from __future__ import annotations

import pytest

from explorer.cli import main
from explorer.gui import platform_check


@pytest.fixture
def linux_x11(monkeypatch):
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")


def test_no_display(linux_x11, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY")
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert "no display" in err
    assert "xvfb-run" in err


def test_screenshot_without_display_renders_offscreen(linux_x11, monkeypatch):
    monkeypatch.delenv("DISPLAY")
    assert platform_check.prepare(screenshot=True) is None
    assert platform_check.os.environ["QT_QPA_PLATFORM"] == "offscreen"


def test_missing_xcb_libraries_are_named(linux_x11, monkeypatch, capsys):
    monkeypatch.setattr(platform_check, "_loadable", lambda lib: "cursor" not in lib)
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert "sudo apt install libxcb-cursor0" in err
    assert "icccm" not in err


def test_offscreen_and_other_platforms_are_not_checked(monkeypatch):
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert platform_check.prepare(screenshot=False) is None
    monkeypatch.setattr(platform_check.sys, "platform", "darwin")
    monkeypatch.delenv("QT_QPA_PLATFORM")
    assert platform_check.prepare(screenshot=False) is None

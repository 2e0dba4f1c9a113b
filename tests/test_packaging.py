"""The desktop bundle's files: one version everywhere, the icons as package
data, a valid .desktop entry and AppStream metadata, and a PyInstaller spec
that names the resources and the CLI's entry point. (Building the bundle is
`make package`, then `python bench/bundle.py`; not part of the suite.)"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import explorer
from explorer.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
APP_ID = "io.github.robustness_explorer"
DESKTOP = PACKAGING / f"{APP_ID}.desktop"
METAINFO = PACKAGING / f"{APP_ID}.metainfo.xml"
SPEC = PACKAGING / "explorer.spec"
ICONS = ROOT / "explorer" / "resources" / "icons"
SIZES = (16, 32, 48, 128, 256)


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head.startswith(b"\x89PNG\r\n\x1a\n"), f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


# -- one version ---------------------------------------------------------------
def test_the_version_is_written_once_and_everything_reads_it(capsys):
    project = _pyproject()
    assert "version" not in project["project"]  # no second copy to drift
    assert "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "explorer._version.__version__"
    source = (ROOT / "explorer" / "_version.py").read_text()
    written = re.search(r'^__version__ = "([^"]+)"$', source, re.M).group(1)
    assert explorer.__version__ == written
    assert re.fullmatch(r"\d+\.\d+\.\d+", written)
    # what setuptools puts in the package's metadata (and so in the wheel)
    from setuptools.config.pyprojecttoml import read_configuration

    assert read_configuration(ROOT / "pyproject.toml")["project"]["version"] == written
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"explorer {written}"


def test_the_changelog_and_the_appstream_release_name_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d\d-\d\d)$",
                          changelog, re.M)
    assert released, "CHANGELOG.md has no released version"
    assert released[0][0] == explorer.__version__  # the newest comes first
    releases = ET.parse(METAINFO).getroot().find("releases").findall("release")
    assert releases[0].get("version") == explorer.__version__
    assert releases[0].get("date") == released[0][1]


# -- the icons -----------------------------------------------------------------
def test_the_icon_is_an_svg_and_a_png_at_each_size():
    svg = ET.parse(ICONS / "explorer.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    for size in SIZES:
        assert _png_size(ICONS / f"explorer-{size}.png") == (size, size)


@pytest.mark.qt_log_ignore("Cannot read file .*broken.svg")
def test_make_icons_renders_the_svg_at_each_size(qapp, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import make_icons
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert make_icons.main(["--out", str(tmp_path)]) == 0
    for size in SIZES:
        assert _png_size(tmp_path / f"explorer-{size}.png") == (size, size)
    image = make_icons.render(ICONS / "explorer.svg", 32)
    corner, centre = image.pixelColor(0, 0), image.pixelColor(16, 16)
    assert corner.alpha() == 0
    assert centre.alpha() == 255
    broken = tmp_path / "broken.svg"
    broken.write_text("<svg")
    with pytest.raises(SystemExit, match=r"broken\.svg is not a valid SVG"):
        make_icons.render(broken, 16)


def test_the_icons_are_package_data():
    globs = _pyproject()["tool"]["setuptools"]["package-data"]["explorer"]
    for path in ICONS.iterdir():
        relative = path.relative_to(ROOT / "explorer").as_posix()
        assert any(fnmatch.fnmatch(relative, g) for g in globs), relative


# -- the .desktop entry ----------------------------------------------------------
def _desktop_entry() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(DESKTOP.read_text(encoding="utf-8"))
    assert parser.sections() == ["Desktop Entry"]
    return dict(parser["Desktop Entry"])


def test_the_desktop_entry_has_what_a_launcher_needs():
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Robustness Explorer"
    assert entry["Exec"] == "explorer gui"
    assert entry["Terminal"] == "false"
    categories = entry["Categories"].split(";")
    assert {"Science", "Education"} <= set(categories)
    assert entry["Categories"].endswith(";")
    assert entry["Keywords"].endswith(";")
    # the icon is installed under the app's id from explorer/resources/icons/
    # (packaging/README.md); the name a theme looks up must not be a path
    assert entry["Icon"] == APP_ID == DESKTOP.stem
    assert (ICONS / "explorer.svg").is_file()
    assert all((ICONS / f"explorer-{s}.png").is_file() for s in SIZES)
    # the command it runs is the console script the package declares
    scripts = _pyproject()["project"]["scripts"]
    assert entry["Exec"].split()[0] in scripts
    assert entry["TryExec"] in scripts


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate is not installed")
def test_desktop_file_validate_accepts_the_entry():
    done = subprocess.run(["desktop-file-validate", str(DESKTOP)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout
    # hints are advice (Science and Education are both main categories, as
    # asked); errors and warnings are not
    assert not re.search(r": (error|warning): ", done.stdout), done.stdout


# -- AppStream -----------------------------------------------------------------
def test_the_appstream_metadata_has_the_required_elements():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component"
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == _desktop_entry()["Name"]
    assert root.findtext("summary").strip()
    assert root.findtext("metadata_license") == "CC0-1.0"
    licence = (ROOT / "LICENSE").read_text().splitlines()[0]
    assert root.findtext("project_license") == "MIT"
    assert licence == "MIT License"
    assert _pyproject()["project"]["license"] == "MIT"
    assert root.find("description").findall("p")
    assert root.findtext("launchable") == DESKTOP.name
    assert root.find("provides").findtext("binary") == "explorer"
    images = [s.findtext("image") for s in root.find("screenshots")]
    assert images
    assert all((ROOT / image).is_file() for image in images), images
    assert root.find("releases").findall("release")


@pytest.mark.skipif(shutil.which("appstreamcli") is None,
                    reason="appstreamcli is not installed")
def test_appstreamcli_finds_no_error_but_the_screenshots_local_paths():
    """The screenshots are the repository's docs/ images; a publisher points
    them at where it hosts them (AppStream wants a web address there)."""
    done = subprocess.run(["appstreamcli", "validate", "--no-net", "--no-color",
                           str(METAINFO)], capture_output=True, text=True,
                          check=False)
    problems = [line for line in done.stdout.splitlines()
                if re.match(r"[EW]: ", line)
                and not re.search(r"web-url-expected docs/\S+\.png$", line)]
    assert not problems, done.stdout


# -- the PyInstaller spec ------------------------------------------------------
class _Recorder:
    """Stands in for one of PyInstaller's build steps and keeps its arguments."""

    def __init__(self, calls: dict, name: str) -> None:
        self.calls, self.name = calls, name

    def __call__(self, *args, **kwargs):
        self.calls[self.name] = (args, kwargs)
        return types.SimpleNamespace(pure=[], scripts=[], binaries=[], datas=[])


def _run_spec(monkeypatch) -> dict:
    """Execute the spec as PyInstaller would, its build steps recorded
    (PyInstaller itself is installed by `make package` only)."""
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package: [f"{package}.cli.main",
                                                f"{package}.gui.app"]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    calls: dict = {}
    namespace = {"SPECPATH": str(PACKAGING), "__file__": str(SPEC)}
    namespace.update({step: _Recorder(calls, step)
                      for step in ("Analysis", "PYZ", "EXE", "COLLECT")})
    code = compile(SPEC.read_text(), str(SPEC), "exec")
    exec(code, namespace)  # noqa: S102 (our own spec file)
    return calls


def test_the_spec_bundles_the_resources_the_icons_and_the_cli(monkeypatch):
    calls = _run_spec(monkeypatch)
    ((script,),), analysis = calls["Analysis"]
    datas = dict(analysis["datas"])
    resources = ROOT / "explorer" / "resources"
    assert datas[str(resources)] == "explorer/resources"
    assert datas[str(resources / "icons")] == "explorer/resources/icons"
    assert (resources / "fashion-mnist-mini.npz").is_file()
    assert list((resources / "models").glob("*.safetensors"))
    # the program is the `explorer` console script: explorer.cli:main
    assert _pyproject()["project"]["scripts"]["explorer"] == "explorer.cli:main"
    tree = ast.parse(Path(script).read_text())
    imports = [(n.module, [a.name for a in n.names]) for n in ast.walk(tree)
               if isinstance(n, ast.ImportFrom)]
    assert ("explorer.cli", ["main"]) in imports
    assert "explorer.cli.main" in analysis["hiddenimports"]  # lazy commands
    # torchvision's C++ ops, which torch loads as files (import torchvision
    # fails in the bundle without them)
    shipped = {Path(source).name: dest for source, dest in analysis["binaries"]}
    assert shipped.get("_C_stable.so", shipped.get("_C.so")) == "torchvision"
    excludes = set(analysis["excludes"])
    assert {"tkinter", "pytest", "tests"} <= excludes
    assert not excludes & {"torch", "torchvision", "PySide6", "explorer", "scipy"}
    assert calls["EXE"][1]["name"] == "explorer"
    assert calls["EXE"][1]["exclude_binaries"] is True  # one folder, not one file
    assert calls["COLLECT"][1]["name"] == "explorer"

"""Check a built desktop bundle (`make package`): its size, its `explorer
--version` and a page rendered by its `explorer gui --screenshot`.

    python bench/bundle.py [dist/explorer]

Runs the bundle's own program from an empty folder, with a fresh workspace and
settings, offscreen, nothing of the source tree on the path; prints the size
and the time of each check, and exits 1 with one line when a check fails.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer import __version__  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class CheckFailed(Exception):
    pass


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and not p.is_symlink())


def run(command: list[str], env: dict[str, str], cwd: Path,
        timeout: float) -> tuple[str, float]:
    t0 = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              cwd=cwd, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        what = " ".join(command[1:])
        raise CheckFailed(f"`{what}` ran past {timeout:.0f} s") from exc
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise CheckFailed(f"`{' '.join(command[1:])}` exited {done.returncode}: {last}")
    return done.stdout, seconds


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24] if path.is_file() else b""
    if not head.startswith(PNG_MAGIC):
        raise CheckFailed(f"the screenshot {path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def check(bundle: Path, panel: str, timeout: float) -> None:
    program = bundle / "explorer"
    if not program.is_file():
        raise CheckFailed(f"no bundle at {bundle}: {program} is missing "
                          "(build it with `make package`)")
    size = folder_size(bundle)
    print(f"bundle      {bundle}  {size / 2**30:.2f} GiB "
          f"({sum(1 for _ in bundle.rglob('*'))} files)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "EXPLORER_RESOURCES")}
        env.update(QT_QPA_PLATFORM="offscreen", EXPLORER_HOME=str(home / "ws"),
                   EXPLORER_CONFIG_DIR=str(home / "cfg"))
        out, seconds = run([str(program), "--version"], env, home, timeout)
        if out.strip() != f"explorer {__version__}":
            raise CheckFailed(f"the bundle says {out.strip()!r}, the source "
                              f"'explorer {__version__}'")
        print(f"--version   {out.strip()}  {seconds:.1f} s")
        shot = home / "shot.png"
        _, seconds = run([str(program), "gui", "--screenshot", str(shot),
                          "--panel", panel], env, home, timeout)
        width, height = png_size(shot)
        print(f"screenshot  --panel {panel}: {width}x{height} PNG  {seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", type=Path,
                        default=ROOT / "dist" / "explorer",
                        help="the bundle's folder (default: dist/explorer)")
    parser.add_argument("--panel", default="data", help="the page to render")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds each check may take")
    args = parser.parse_args(argv)
    try:
        check(args.bundle, args.panel, args.timeout)
    except CheckFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

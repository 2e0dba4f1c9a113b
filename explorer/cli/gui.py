"""`explorer gui` (and plain `explorer`): open the app, optionally on a page,
or render a page after its demo into a PNG and exit (``--screenshot``)."""

from __future__ import annotations

import argparse
import sys

from explorer.cli.common import EXIT_ERROR, UsageError


def gui_command(args: argparse.Namespace) -> int:
    size = getattr(args, "size", "1280x800")
    try:
        w, h = (int(v) for v in str(size).lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1280x800, got {size!r}") from None
    from explorer.gui.panels import keys

    panel = getattr(args, "panel", None)
    if panel is not None and panel not in keys():
        raise UsageError(f"unknown panel {panel!r} (choose from {', '.join(keys())})")
    presenter, step = getattr(args, "presenter", False), getattr(args, "step", None)
    if step is not None:
        from explorer.gui.presenter.story import default_story

        count = len(default_story().steps)
        if not presenter:
            raise UsageError("--step needs --presenter")
        if not 1 <= step <= count:
            raise UsageError(f"--step must be between 1 and {count}, got {step}")
    from explorer.gui.platform_check import prepare

    screenshot = getattr(args, "screenshot", None)
    problem = prepare(screenshot=bool(screenshot))
    if problem is not None:
        sys.stderr.write(f"error: {problem}\n")
        return EXIT_ERROR
    from explorer.gui.app import run

    return run(
        workspace=args.workspace,
        device=args.device,
        screenshot=screenshot,
        panel=panel,
        size=(w, h),
        startup_probe=getattr(args, "startup_probe", False),
        presenter=presenter,
        step=step or 1,
    )

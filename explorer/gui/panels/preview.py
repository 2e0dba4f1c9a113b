"""Open one panel on its own, on demo data: ``python -m explorer.gui.panels.X``."""

from __future__ import annotations

import sys


def preview(key: str) -> int:
    from explorer.gui.application import application

    app = application()
    from explorer.core import device as devices
    from explorer.gui.context import AppContext
    from explorer.gui.panels import PANELS
    from explorer.gui.runner import JobRunner
    from explorer.gui.session import Session
    from explorer.gui.settings import open_settings
    from explorer.store import Workspace

    spec = next((p for p in PANELS if p.key == key), None)
    if spec is None:
        sys.stderr.write(f"error: unknown panel {key!r}\n")
        return 2
    devices.configure_threads(leave_for_ui=1)
    runner = JobRunner()
    with Workspace.open() as workspace:
        ctx = AppContext(Session(devices.pick()), runner, workspace, open_settings())
        panel = spec.load()(ctx)
        panel.setWindowTitle(f"Robustness Explorer — {spec.title}")
        panel.resize(1100, 760)
        panel.show()
        panel.run_demo()
        code = app.exec()
        runner.shutdown()
    return code

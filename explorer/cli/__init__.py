"""The command line: the same jobs as the GUI, headless.

``common`` holds what every command shares (errors, exit codes, the one-line
parser, model and data resolution), ``running`` runs a core job in the
terminal (progress bar or JSON lines, the workspace run), and each command
has its own module; ``main`` builds the parser and dispatches, importing a
command only when it runs.
"""

from explorer.cli.main import main

__all__ = ["main"]

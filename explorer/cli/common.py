"""What every command shares: errors and exit codes, the one-line parser,
and how a model or a data set named on the command line is found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130


class CliError(Exception):
    """A runtime error for the user: printed as one line, exit code 1."""


class UsageError(CliError):
    """The command line itself is wrong (argparse's convention: exit code 2)."""


class OneLineParser(argparse.ArgumentParser):
    """Raises instead of printing usage and exiting: errors stay one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def resolve_model(source: str, arch: str | None):
    """A built-in name, or a file path (with ``--arch`` for weights-only files)."""
    from explorer.core import models

    if source in models.builtin_names():
        return models.load_builtin(source)
    if not Path(source).exists() and not any(c in source for c in "/\\."):
        raise models.ModelError(
            f"unknown model {source!r}: not a built-in model "
            f"({', '.join(models.builtin_names())}) and no such file"
        )
    return models.load(source, arch=arch)


def load_data(name: str, split: str, root: Any = None) -> Any:
    """``data.load``; unreadable images an image folder skipped are named on
    stderr (one line), and :func:`skipped_files` puts them in the result."""
    from explorer.core import data
    from explorer.core.data.folder import describe_skipped

    dataset = data.load(name, split, root=root)
    skipped = getattr(dataset, "skipped", ())
    if skipped:
        sys.stderr.write(f"warning: {describe_skipped(skipped)}\n")
    return dataset


def skipped_files(*datasets: Any) -> dict[str, list[str]]:
    """``{"skipped_files": [...]}`` for image folders, ``{}`` for other sets."""
    if not any(hasattr(ds, "skipped_files") for ds in datasets):
        return {}
    return {"skipped_files": [f for ds in datasets
                              for f in getattr(ds, "skipped_files", [])]}



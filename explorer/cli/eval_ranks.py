"""`explorer eval` under torchrun: which rank does what.

``torchrun --nproc-per-node N -m explorer eval ...`` starts N copies; each
evaluates a contiguous shard of the first images (the attacks draw per image,
so the split changes nothing) and the per-image results are gathered on
every rank. Rank 0 alone records the one workspace run, writes the report
and prints; the others' stdout goes nowhere. What is not split refuses here,
before any work, with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from explorer.cli.common import UsageError
from explorer.core import distributed
from explorer.core.distributed import World

# flags whose work is not split over the processes, and why
_NOT_SPLIT = {
    "corruptions": "--corruptions (noise, rotation and the adversarial confusion) "
                   "is not split over processes: run it without torchrun",
    "transfer": "--transfer is not split over processes: run it without torchrun",
}


def refuse_unsplit(ns: argparse.Namespace, transfer: bool) -> None:
    """A UsageError for a flag that does not run under torchrun."""
    if not distributed.launched():
        return
    if getattr(ns, "corruptions", False):
        raise _usage_error(_NOT_SPLIT["corruptions"])
    if transfer:
        raise _usage_error(_NOT_SPLIT["transfer"])


def _usage_error(message: str) -> UsageError:
    """The same error on every rank: only rank 0 says it (one line)."""
    if os.environ.get("RANK", "0") != "0":
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the process ends
    return UsageError(message)


def join(args: argparse.Namespace) -> World:
    """Join torchrun's process group (a no-op for one process); only rank 0
    prints; ``args.device`` becomes this rank's device."""
    world = distributed.setup(args.device)
    distributed.silence_others(world)
    args.device = distributed.device_for(world, args.device)
    return world


def check_split(world: World, n: int) -> None:
    """A UsageError when ``n`` images leave a rank without any."""
    if n < world.size:
        raise _usage_error(f"--images (--n): {n} images cannot be split over "
                           f"{world.size} processes; give each process at least "
                           "one")


class _Unrecorded:
    """What a rank other than 0 has instead of a workspace run."""

    id = None
    summary: dict[str, Any] | None = None

    def record(self, _event: Any) -> None:
        pass


@contextlib.contextmanager
def recorded_run(world: World, workspace: Any, kind: str, config: dict[str, Any],
                 title: str = "") -> Iterator[Any]:
    """The command's workspace run on rank 0 (RecordedRun); nothing elsewhere."""
    if not world.main:
        yield _Unrecorded()
        return
    from explorer.cli.running import RecordedRun
    from explorer.store import Workspace

    with Workspace.open(workspace) as ws, \
            RecordedRun(ws, kind, config, title=title) as run:
        yield run

"""`explorer train` as one of several torchrun processes: what every rank
checks before a run is recorded, the ranks other than 0 (which train
rank 0's run silently) and SIGTERM as a cancel (torchrun's and the app's
stop). Rank 0 is :func:`explorer.cli.train.run_training` itself."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from explorer.cli.common import CliError, load_data
from explorer.cli.running import JobInterrupted, run_job

SUMMARY_KEYS = ("epochs", "clean_acc", "robust_acc", "selected_on", "val_n",
                "selected_metric", "best_epoch", "best_val_clean_acc",
                "best_val_robust_acc", "best_test_clean_acc", "best_test_robust_acc",
                "best_robust_acc", "best_val_selected", "best_test_selected",
                "seconds", "world_size", "world_sizes", "checkpoint",
                "best")  # fmt: skip


def check_processes(config, world) -> None:
    """A CliError when the run cannot be split over ``world.size`` processes:
    a method that refuses (its ``sync`` says why) or fewer ``--eval-n``
    images than processes (each evaluates its share)."""
    from explorer.core import distributed
    from explorer.core.defenses.registry import create_wrapped
    from explorer.core.defenses.trainer import sync_mode

    if not world.distributed:
        return
    sync = sync_mode(create_wrapped(config.defense, config.params, config.noilin))
    if sync not in distributed.SYNC_MODES:
        raise CliError(f"{config.defense} cannot train with several processes: "
                       f"{sync}")
    if config.eval_n < world.size:
        raise CliError(f"--eval-n must be at least the number of processes "
                       f"({world.size}): each evaluates its share of the images; "
                       f"got {config.eval_n}")


def train_other(args: argparse.Namespace, world) -> dict[str, Any]:
    """Rank r > 0: rank 0's run and config, trained silently (no workspace,
    no files, no output)."""
    from explorer.core import defenses, distributed
    from explorer.core import device as devices
    from explorer.core.defenses.run_job import train_run
    from explorer.core.jobs import CancelToken

    distributed.share_threads(world, devices.configure_threads(leave_for_ui=0))
    device = devices.pick(distributed.device_for(world, args.device))
    plan = world.broadcast(None)
    if "error" in plan:  # rank 0 says why on stderr
        raise SystemExit(1)
    config = defenses.TrainingConfig.from_json(plan["config"])
    train_set = load_data(config.data, "train", root=config.root)
    test_set = load_data(config.data, "test", root=config.root)
    token = CancelToken()
    events = train_run(config, run_dir=plan["run_dir"], train_set=train_set,
                       test_set=test_set, device=device, resume=plan["resume"],
                       token=token, world=world)
    try:
        with term_cancels(token):
            results = run_job(events, token, as_json=True)
    except (JobInterrupted, distributed.PeerLost):
        raise SystemExit(1) from None  # rank 0 reports
    return {"run_id": plan["run_id"], **{k: results.get(k) for k in SUMMARY_KEYS},
            "defense": config.defense, "params": config.params,
            "noilin": config.noilin, "freeze": config.freeze,
            "device": str(device)}


@contextlib.contextmanager
def term_cancels(token) -> Iterator[None]:
    """SIGTERM (torchrun's and the app's stop) cancels like Ctrl+C. After the
    job, SIGTERM is ignored until :func:`explorer.cli.main.main` returns (it
    restores the handler): torchrun sends it to the survivors when a rank
    dies, and it must not kill rank 0 between its failure and the line and
    run record that say where to resume."""
    signal.signal(signal.SIGTERM, lambda _signum, _frame: token.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)



"""The training job: any defense, checkpointed, resumable, cancellable.

``train(...)`` is a generator of events (see :mod:`explorer.core.jobs`). Per
batch it yields a throttled ``batch_loss`` metric and progress; per epoch the
metrics, then a ``Snapshot`` labelled ``adversarial`` (see
:func:`~explorer.core.defenses.evaluation.adversarial_strip`).

Selection is on validation only. ``config.val_fraction`` of the training
images (at most ``config.val_max``; :mod:`explorer.core.training.split`) are
held out and never trained on; each epoch reports ``val_clean_acc`` and
``val_robust_acc`` on the first ``eval_n`` of them, and ``test_clean_acc`` and
``test_robust_acc`` on the first ``eval_n`` test images beside them. The best
epoch (``best.safetensors``), the defense's ``end_epoch`` hook (NoiLIn's
schedule) and, in the front ends, the overfitting alarms read the validation
figures only; the test figures choose nothing. The figure that chooses is
``val_robust_acc`` unless the defense names another in ``selection_key``
(a key of its ``extra_scores``, e.g. the multi-norm methods' union accuracy;
the result and the best file's metadata say which as ``selected_metric``).
With ``val_fraction`` 0 there
is nothing to select on: every epoch overwrites the best file, so it holds
the last epoch (``selected_on: "last"``).

``run_dir/last.pt`` is rewritten atomically after every epoch, every
``checkpoint_minutes`` and on cancel; ``best.safetensors`` holds the weights
of the best epoch so far (``best.pt2``, re-exported, when the model is a
torch.export program; a model that can be neither, such as ONNX or
TorchScript, gets a log line instead and only ``last.pt``).
``resume=True`` continues from
``last.pt`` exactly where it stopped (same batches, same random draws).
``config.augment`` crops and/or flips each clean training batch before the
defense sees it (:mod:`explorer.core.training.augment`; the draws depend on
seed, epoch and batch only, so a resume repeats them too).
``config.freeze == "features"`` (linear probing) and ``config.new_head`` act
on the model after the defense's ``prepare``
(:mod:`explorer.core.training.fine_tune`): the optimizer then holds the
classifier head's weights only.

Several processes (``world``, :mod:`explorer.core.distributed`, under
torchrun): every rank runs this generator with the same config. The batches
are the trainer's own seeded permutation of the training set, as for one
process, and each rank takes its share of every global batch
(``world.batch_share``; ``batch_size`` stays the global batch). That is a
DistributedSampler's job done here on purpose: a DistributedSampler's
per-rank order depends on the number of ranks, so a run resumed with another
number of processes would not continue the same order, whereas the position
in ``last.pt`` (epoch, global batch) means the same thing for any N.
Augmentation draws are taken for the whole global batch, so each image gets
the crop it would get in one process. The model is kept equal on every rank
as the defense's ``sync`` says (:class:`~explorer.core.distributed.Replicas`:
DistributedDataParallel for plain training forwards, averaged gradients for
losses DDP cannot follow). Adversarial examples are made on each rank's
share; the epoch's train loss and accuracy sums are all-reduced; the
per-epoch evaluation runs on each rank's shard of the validation and test
images (``world.shard``) and is combined with ``world.weighted_mean``; the
adversarial strip and ``batch_loss`` come from rank 0. Only rank 0 writes
``last.pt`` and the best file; every rank reads ``last.pt`` on resume (with
several machines the run folder must be on a file system all of them see).
Rank r > 0 draws its random starts from a stream of its own
(:func:`~explorer.core.distributed.rank_seed` of the seed, r and the step),
rank 0 from the run's, so one process is unchanged. A stop (cancel) is
agreed on by all ranks at the same batch; a rank that dies makes the others
fail in their next collective: rank 0 then saves ``last.pt`` at the last
finished step and raises :class:`~explorer.core.distributed.PeerLost`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core import accel, distributed
from explorer.core import device as devices
from explorer.core.defenses.best_weights import (
    BEST_FILES,
    EXPORT_NOTE,
    is_program,
    save_best,
)
from explorer.core.defenses.config import TrainingConfig
from explorer.core.defenses.evaluation import (
    adversarial_strip,
    clean_and_robust,
)
from explorer.core.defenses.registry import create_wrapped
from explorer.core.inference import make_generator
from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Event,
    Log,
    Metric,
)
from explorer.core.training.augment import augment, batch_generator, resolve
from explorer.core.training.fine_tune import freeze_features, head_of, reset_head
from explorer.core.training.loop import Position, RunState, TrainingLoop
from explorer.core.training.precision import Precision
from explorer.core.training.schedules import check_schedule, make_optimizer
from explorer.core.training.split import validation_split

MAX_LOSS = 1e4
# Must match for a resume: the rest (epochs, eval settings) may change.
# Not augment: checkpoints from before it lack it, and a resume reads the
# mode from the run's stored TrainingConfig anyway. val_n and seed fix the
# held-out images (checkpoints from before the split held out none).
# freeze: a linear probe's optimizer holds the head's weights only.
# Not amp or compile (training/precision.py): a run may resume with another
# precision (a grad scaler it lacked starts afresh) or compiled or not.
FIXED_KEYS = ("method", "params", "batch_size", "optimizer", "n_train", "val_n",
              "seed", "noilin", "freeze")
# what a checkpoint without a key stands for
OLD_CHECKPOINT = {"val_n": 0, "noilin": None, "freeze": "none"}


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or absurdly large."""


@dataclasses.dataclass
class _Position(Position):
    """The shared position plus accuracy counts and the best validation
    robust accuracy (the selection score)."""

    correct: int = 0
    best_robust: float = -1.0

    def next_epoch(self, metrics: dict[str, float], seconds: float) -> None:
        super().next_epoch(metrics, seconds)
        self.correct = 0


def _arrays(dataset) -> tuple[Tensor, Tensor]:
    """The whole set in memory (uint8 images stay uint8 until batched)."""
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if isinstance(images, Tensor) and isinstance(labels, Tensor):
        return images, labels
    return dataset.as_tensors(0, len(dataset))


def _batch(xs: Tensor, ys: Tensor, idx: Tensor, device) -> tuple[Tensor, Tensor]:
    x = accel.to_device(xs[idx], device)  # pinned, non-blocking on CUDA
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return x, accel.to_device(ys[idx], device)


def train(
    model: nn.Module,
    train_set,
    test_set,
    config: TrainingConfig,
    *,
    run_dir: str | Path,
    device: str | torch.device | None = None,
    resume: bool = False,
    token: CancelToken | None = None,
    world: distributed.World = distributed.SINGLE,
) -> Iterator[Event]:
    """Train ``model`` in place as ``config`` says; see the module doc.

    A fresh run seeds torch's global generator with ``config.seed`` (dropout
    and the like draw there). ``config``'s data fields are not read here:
    the caller hands over the sets (see :func:`run_job.train_run`); the
    validation split is drawn here from ``train_set``.
    """
    token = token or CancelToken()
    device = torch.device(device) if device is not None else devices.pick()
    cfg = config
    precision = Precision.for_run(cfg.amp, device, compile=cfg.compile)
    method, epochs, batch_size = cfg.defense, cfg.epochs, cfg.batch_size
    defense = create_wrapped(method, cfg.params, cfg.noilin)
    check_schedule(cfg.schedule)
    lr = cfg.learning_rate
    xs, ys = _arrays(train_set)
    split = validation_split(len(ys), cfg.val_fraction, cfg.val_max, cfg.seed)
    train_idx, val_n, selected_on = split.train, len(split.val), split.selected_on
    augment_mode = resolve(cfg.augment, tuple(xs.shape[1:]))
    n_batches = math.ceil(len(train_idx) / batch_size)
    total = epochs * n_batches * defense.replays
    if world.distributed:
        distributed.check_split(world, method, sync_mode(defense), cfg.eval_n,
                                len(test_set),
                                len(split.val) and min(cfg.eval_n, len(split.val)))
    # What the checkpoint keeps (FIXED_KEYS must match for a resume).
    # (a NoiLIn-wrapped method keeps its own params; the wrapper's are noilin)
    config = {"method": method, "params": getattr(defense, "method_cfg", defense.cfg),
              "noilin": defense.cfg if cfg.noilin is not None else None,
              "epochs": epochs,
              "batch_size": batch_size, "optimizer": cfg.optimizer, "lr": lr,
              "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
              "schedule": cfg.schedule, "seed": cfg.seed,
              "augment": augment_mode, "eval_eps": cfg.eval_eps,
              "eval_steps": cfg.eval_steps, "eval_n": cfg.eval_n,
              "n_train": len(train_idx), "val_n": val_n,
              "selected_on": selected_on,
              "selected_metric": f"val_{defense.selection_key}" if val_n else None,
              "freeze": cfg.freeze, "amp": cfg.amp, "compile": cfg.compile}
    if cfg.init_from is not None:
        config["init_from"] = cfg.init_from  # recorded in the best file's meta
        config["new_head"] = cfg.new_head
    run_dir = Path(run_dir)
    program = is_program(model)
    last_path = run_dir / "last.pt"
    best_path = run_dir / BEST_FILES[1 if program else 0]
    if program:
        yield Log(EXPORT_NOTE)
    prepared = defense.prepare(model)
    model = prepared if prepared is not None else model
    note = _fine_tune(model, cfg)
    if note:
        yield Log(note)
    model = accel.place(model, device)
    note = precision.compile(model)
    if note:
        yield Log(note)
    weights = model.parameters() if cfg.freeze == "none" else [
        p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(weights, cfg.optimizer, lr=lr,
                         momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    method_rng = make_generator(cfg.seed + 1, device)
    eval_x, eval_y = test_set.as_tensors(0, min(cfg.eval_n, len(test_set)))
    val_x, val_y = _batch(xs, ys, split.val[:cfg.eval_n], "cpu")
    # processes of each session of the run (a resume reads the earlier ones)
    sessions: list[int] = [] if resume else [world.size]

    def load_extra(state: dict[str, Any]) -> None:
        defense.load_state_dict(state["method"])
        precision.load_state_dict(state.get("precision"))
        sessions.extend(state.get("world_sizes", [1]))  # older runs: one

    run = RunState(
        last_path, config, FIXED_KEYS, model, opt,
        {"shuffle_rng": shuffle, "method_rng": method_rng},
        extra=lambda pos: {"world_sizes": sessions,
                           "scheduler": {"name": cfg.schedule, "step": pos.step,
                                         "total": total},
                           "method": defense.state_dict(),
                           "precision": precision.state_dict()},
        load_extra=load_extra,
        defaults=OLD_CHECKPOINT, writes=world.main)
    pos = run.start(_Position, seed=cfg.seed, resume=resume)
    if resume:  # after the earlier sessions' sizes last.pt held
        sessions.append(world.size)
    if world.rank > 0:  # a stream of its own; rank 0 keeps the run's
        method_rng.manual_seed(distributed.rank_seed(cfg.seed + 1, world.rank,
                                                     pos.step))
        torch.manual_seed(distributed.rank_seed(cfg.seed, world.rank, pos.step))
        pos.loss_sum, pos.correct, pos.seen = 0.0, 0, 0  # rank 0's, in last.pt
    replicas = distributed.Replicas(model, world, sync_mode(defense), device)
    trained = replicas.trained  # what the loss runs (DDP or the model itself)
    if world.distributed:
        yield Log(f"{world.size} processes ({world.backend}): each trains on "
                  f"its share of every batch of {batch_size} images")
    if resume:
        yield Log(f"resumed from {last_path} at epoch {pos.epoch + 1}, "
                  f"batch {pos.batch}")
    else:
        yield Log(_split_note(val_n, len(train_idx), len(val_y)))
    loop = TrainingLoop(run, pos, shuffle=shuffle, n_items=len(train_idx),
                        batch_size=batch_size, epochs=epochs, total=total, lr=lr,
                        schedule=cfg.schedule,
                        checkpoint_minutes=cfg.checkpoint_minutes,
                        token=token, world=world, precision=precision)

    def train_batch(b: int, idx: Tensor) -> list[float]:
        share = world.batch_share(torch.arange(len(idx)))  # positions in idx
        if augment_mode != "none":  # once per batch: Free-AT replays it as is
            x, y = _batch(xs, ys, train_idx[idx], device)
            x = augment(x, augment_mode, batch_generator(cfg.seed, pos.epoch, b))
            if world.distributed:
                x, y = x[share.to(x.device)], y[share.to(y.device)]
        else:
            x, y = _batch(xs, ys, train_idx[idx[share]], device)
        losses = []
        for _ in range(defense.replays):
            with precision.autocast():  # bf16/fp16 forwards (training/precision.py)
                loss, logits = defense.loss(trained, x, y, method_rng)
            value = float(loss.detach())
            if not math.isfinite(value) or value > MAX_LOSS:
                raise TrainingDiverged(_diverged(value, pos.epoch, b, last_path,
                                                 run.saved_at))
            loop.update(loss, defense.after_backward, sync=replicas.after_backward)
            pos.loss_sum += value * len(y)
            pos.correct += int((logits.detach().argmax(1) == y).sum())
            pos.seen += len(y)
            losses.append(value)
        return losses

    selection = f"val_{defense.selection_key}"  # the figure choosing the best
    unsaved_logged = False  # a model whose best weights cannot be written
    try:
        for epoch in range(pos.epoch, epochs):
            yield from loop.epoch(train_batch)
            if (note := precision.take_note()) is not None:  # compile fell back
                yield Log(note)
            scores: dict[str, float] = {}  # val_* (if held out), then test_*
            parts = ((("val", val_x, val_y),) if val_n else ()) + (
                ("test", eval_x, eval_y),)
            for part, x, y in parts:
                mine = world.shard(len(y))  # this rank's images
                x, y = x[mine.start:mine.stop], y[mine.start:mine.stop]
                clean, robust = clean_and_robust(model, x, y, eps=cfg.eval_eps,
                                                 steps=cfg.eval_steps, device=device,
                                                 token=token)
                extra = defense.extra_scores(model, x, y, eps=cfg.eval_eps,
                                             steps=cfg.eval_steps, device=device,
                                             token=token)
                part_scores = {"clean_acc": clean, "robust_acc": robust, **extra}
                part_scores = world.weighted_mean(part_scores, len(y))
                scores.update((f"{part}_{k}", part_scores[k])
                              for k in ("clean_acc", "robust_acc", *extra))
            strip = adversarial_strip(model, eval_x, eval_y, eps=cfg.eval_eps,
                                      steps=cfg.eval_steps, device=device,
                                      epoch=epoch + 1, epochs=epochs
                                      ) if world.main else None
            model.train()
            loss_sum, correct, seen = world.all_sum(torch.tensor(
                [pos.loss_sum, pos.correct, pos.seen], dtype=torch.float64)).tolist()
            metrics = {"train_loss": loss_sum / max(seen, 1),
                       "train_acc": correct / max(seen, 1), **scores,
                       "lr": opt.param_groups[0]["lr"],
                       "epoch_seconds": pos.epoch_seconds}
            # Report first, then close the epoch with no yield in between: a
            # stop while reporting saves a position whose epoch is not closed,
            # so a resume evaluates it again (the same numbers at the same
            # epoch) instead of skipping numbers nobody received.
            for name, value in metrics.items():
                yield Metric(name, value, epoch + 1)
            if strip is not None:
                yield strip
            # The defense never sees a test figure (NoiLIn reads val_robust_acc).
            defense.end_epoch({k: v for k, v in metrics.items()
                               if not k.startswith("test_")})
            if val_n:
                improved = scores[selection] > pos.best_robust
            else:  # nothing to select on: the last epoch is the best one
                improved = True
            if improved:
                pos.best_robust = scores.get(selection, -1.0)
                pos.best_epoch = epoch + 1
            pos.next_epoch(metrics, loop.seconds())
            unsaved = None
            if improved and world.main:
                unsaved = save_best(model, best_path, config, epoch + 1, metrics,
                                     train_set)
            run.save(pos)
            if improved and unsaved is None:
                yield Artifact("best", best_path)
            elif unsaved is not None and not unsaved_logged:
                unsaved_logged = True
                yield Log(f"{method}: {best_path.name} is not written ({unsaved}); "
                          "last.pt holds the trained weights")
    except Cancelled:
        loop.save()
        raise
    except RuntimeError as exc:  # DistributedError, or gloo/NCCL's in DDP
        lost = distributed.lost_peer(exc, world)
        if lost is None:
            raise
        if token.cancelled:
            # A stop signal and a lost peer: the ranks got a stop at different
            # points, or torchrun is ending the run because another process
            # failed (it sends SIGTERM); which came first cannot be told here.
            loop.save()
            raise Cancelled(
                f"stopped by a signal (Stop, Ctrl+C, or torchrun ending the run "
                f"after another process failed); {lost}; last.pt holds the "
                f"weights after {pos.epoch} epochs and {pos.batch} batches") from None
        # The weights are those of the last finished step (a failed step's
        # backward or all-reduce never reached the optimizer), and so is pos.
        loop.save()
        raise distributed.PeerLost(
            f"{lost}; last.pt holds the weights after {pos.epoch} epochs and "
            f"{pos.batch} batches") from None
    finally:
        precision.uncompile(model)
    last = pos.history[-1] if pos.history else {}
    best = pos.history[pos.best_epoch - 1] if pos.best_epoch else {}
    yield Done({"epochs": pos.epoch, "clean_acc": last.get("test_clean_acc"),
                "robust_acc": last.get("test_robust_acc"),
                "selected_on": selected_on, "val_n": val_n,
                "selected_metric": config["selected_metric"],
                "best_epoch": pos.best_epoch,
                # the best epoch's figures: validation chose it, test reports it
                "best_val_clean_acc": best.get("val_clean_acc"),
                "best_val_robust_acc": best.get("val_robust_acc"),
                "best_test_clean_acc": best.get("test_clean_acc"),
                "best_test_robust_acc": best.get("test_robust_acc"),
                # the figure that chose it (selected_metric) and its test twin
                "best_val_selected": best.get(selection) if val_n else None,
                "best_test_selected": best.get(
                    f"test_{defense.selection_key}") if val_n else None,
                "best_robust_acc": best.get("test_robust_acc"),
                "seconds": loop.seconds(), "world_size": world.size,
                "world_sizes": sessions,
                "checkpoint": str(last_path),
                "best": str(best_path) if best_path.exists() else None})


def sync_mode(defense) -> str:
    """How the ranks keep the model of ``defense`` equal (its ``sync``; a
    NoiLIn wrapper trains as the method it wraps does)."""
    inner = getattr(defense, "inner", None)
    return (inner if inner is not None else defense).sync


def _fine_tune(model: nn.Module, cfg: TrainingConfig) -> str | None:
    """Apply ``cfg.new_head`` and ``cfg.freeze`` to the (prepared) model:
    what was done, for the log (None: nothing); a ParamError naming the
    model when its classifier head cannot be identified."""
    if cfg.freeze == "none" and not cfg.new_head:
        return None
    why = "freeze features" if cfg.freeze == "features" else "new_head"
    head = head_of(model, str(cfg.init_from), why)
    done = []
    if cfg.new_head:
        reset_head(head, cfg.seed)
        done.append(f"classifier head re-initialised (seed {cfg.seed})")
    if cfg.freeze == "features":
        total = sum(p.numel() for p in model.parameters())
        trained = sum(p.numel() for p in freeze_features(model, head))
        done.append(f"linear probe: only the classifier head trains ({trained:,} "
                    f"of {total:,} weights); the rest is frozen in eval mode")
    return "; ".join(done)


def _split_note(val_n: int, n_train: int, scored: int) -> str:
    if not val_n:
        return (f"no validation split (val_fraction 0): training on all {n_train} "
                "images; the best checkpoint is the last epoch, chosen on nothing")
    return (f"validation split: {val_n} training images held out, {n_train} "
            f"trained on; the best epoch is chosen on the first {scored} held-out "
            "images, never on test images")


def _diverged(value: float, epoch: int, batch: int, path: Path,
              saved: tuple[int, int]) -> str:
    what = "nan" if math.isnan(value) else f"{value:g}"
    return (f"loss became {what} at epoch {epoch + 1} batch {batch + 1}; the last "
            f"good checkpoint is kept: {path} (after {saved[0]} epochs and "
            f"{saved[1]} batches)")

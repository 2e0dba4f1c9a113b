"""Training a denoiser: plain denoising loss, or HAT (Yan et al.).

HAT mixes the plain loss on noisy observations v with the loss on ObsAtk's
perturbed observations v + d*: ``(L(f(v), x) + w * L(f(v + d*), x)) / (1 + w)``
with mixing weight ``w`` (``w = 0`` is plain training). The job follows the
classifier trainer's protocol: throttled ``batch_loss``, per epoch
``train_loss``, ``test_psnr_clean``, ``test_psnr_attacked``,
``test_psnr_noisy`` (the noisy input itself: the bar a denoiser must clear),
``lr`` and ``epoch_seconds``; ``run_dir/last.pt`` after every
epoch, every ``checkpoint_minutes`` and on cancel; ``best.safetensors``
whenever the attacked PSNR improves; ``resume=True`` continues exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from explorer.core import device as devices
from explorer.core import params as P
from explorer.core.denoise import files, noise
from explorer.core.denoise.evaluation import evaluate_batch
from explorer.core.denoise.obsatk import ObsAtk
from explorer.core.inference import make_generator
from explorer.core.jobs import (
    Artifact,
    Cancelled,
    CancelToken,
    Done,
    Event,
    Metric,
)
from explorer.core.training.loop import Position, RunState, TrainingLoop
from explorer.core.training.schedules import check_schedule, make_optimizer

METHODS = ("standard", "hat")
FIXED_KEYS = ("method", "noise", "level", "hat_weight", "rho", "attack_steps",
              "batch_size", "crop", "n_train")
PARAMS = (
    P.Param("noise", str, "gaussian", "noise model of the observations",
            choices=tuple(noise.KINDS)),
    # range checked per noise model by noise.check (sigma, peak or amount)
    P.Param("level", float, 0.1, "noise level (sigma, peak or amount)"),
    P.Param("hat_weight", float, 1.0, "HAT: weight of the loss on ObsAtk-perturbed "
            "observations (0 = plain training)", 0.0, 100.0),
    P.Param("rho", float, 0.44, "HAT: ObsAtk l2 budget during training", 0.0, 100.0),
    P.Param("attack_steps", int, 2, "HAT: ObsAtk steps during training", 1, 100),
)


def denoising_loss(out: Tensor, x: Tensor) -> Tensor:
    """Mean squared error (over pixels and images)."""
    return (out - x).pow(2).mean()


def hat_loss(model: nn.Module, v: Tensor, x: Tensor, weight: float,
             attack: ObsAtk | None, generator=None) -> Tensor:
    """The HAT objective; ``weight == 0`` gives exactly the plain loss."""
    plain = denoising_loss(model(v), x)
    if weight == 0 or attack is None:
        return plain
    d = attack.last_iterate(model, v, x, generator)
    adv = denoising_loss(model(v + d), x)
    return (plain + weight * adv) / (1.0 + weight)


@dataclasses.dataclass
class _Position(Position):
    best: float = -math.inf  # best attacked PSNR so far


def _images(dataset) -> Tensor:
    images = getattr(dataset, "images", None)
    if isinstance(images, Tensor):
        return images
    return dataset.as_tensors(0, len(dataset))[0]


def _crop(x: Tensor, size: int | None, gen: torch.Generator) -> Tensor:
    """Random ``size``×``size`` crops, one position per image (larger images)."""
    h, w = x.shape[-2:]
    if size is None or (size >= h and size >= w):
        return x
    size_h, size_w = min(size, h), min(size, w)
    tops = torch.randint(0, h - size_h + 1, (len(x),), generator=gen)
    lefts = torch.randint(0, w - size_w + 1, (len(x),), generator=gen)
    return torch.stack([img[:, t:t + size_h, s:s + size_w]
                        for img, t, s in zip(x, tops.tolist(), lefts.tolist(),
                                             strict=True)])


def train_denoiser(
    model: nn.Module, train_set, test_set, *, method: str = "standard",
    params: dict[str, Any] | None = None, epochs: int, run_dir: str | Path,
    batch_size: int = 64, crop: int | None = None, lr: float = 1e-3,
    schedule: str = "cosine", seed: int = 0, eval_rho: float = 0.44,
    eval_steps: int = 10, eval_n: int = 200, device: str | torch.device | None = None,
    checkpoint_minutes: float = 5.0, resume: bool = False,
    token: CancelToken | None = None,
) -> Iterator[Event]:
    """Train ``model`` (a denoiser) in place; see the module doc."""
    token = token or CancelToken()
    if method not in METHODS:
        raise P.ParamError(f"method must be one of {', '.join(METHODS)}, "
                           f"got {method!r}")
    cfg = P.validate(PARAMS, params or {})
    cfg["level"] = noise.check(cfg["noise"], cfg["level"])
    if method == "standard":
        cfg["hat_weight"] = 0.0
    check_schedule(schedule)
    if epochs < 1:
        raise P.ParamError(f"epochs must be at least 1, got {epochs}")
    device = torch.device(device) if device is not None else devices.pick()
    xs = _images(train_set)
    files.check_input(model, xs[:1].float())
    n_batches = math.ceil(len(xs) / batch_size)
    total = epochs * n_batches
    config = {"method": method, **cfg, "epochs": epochs, "batch_size": batch_size,
              "crop": crop, "lr": lr, "schedule": schedule, "seed": seed,
              "eval_rho": eval_rho, "eval_steps": eval_steps, "eval_n": eval_n,
              "n_train": len(xs), "optimizer": "adam"}
    attack = ObsAtk(cfg["rho"], cfg["attack_steps"]) if method == "hat" else None
    run_dir = Path(run_dir)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.safetensors"
    model.to(device)
    opt = make_optimizer(model.parameters(), "adam", lr=lr, momentum=0.0,
                         weight_decay=0.0)
    shuffle = torch.Generator().manual_seed(seed)
    noise_rng = make_generator(seed + 1, device)
    crop_rng = torch.Generator().manual_seed(seed + 2)
    eval_x = test_set.as_tensors(0, min(eval_n, len(test_set)))[0]
    run = RunState(last_path, config, FIXED_KEYS, model, opt,
                   {"shuffle_rng": shuffle, "noise_rng": noise_rng,
                    "crop_rng": crop_rng},
                   extra=lambda pos: {"kind": "denoiser"})
    pos = run.start(_Position, seed=seed, resume=resume)
    loop = TrainingLoop(run, pos, shuffle=shuffle, n_items=len(xs),
                        batch_size=batch_size, epochs=epochs, total=total, lr=lr,
                        schedule=schedule, checkpoint_minutes=checkpoint_minutes,
                        token=token)

    def train_batch(b: int, idx: Tensor) -> list[float]:
        x = xs[idx]
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        x = _crop(x, crop, crop_rng).to(device)
        v = noise.apply(x, cfg["noise"], cfg["level"], noise_rng)
        loss = hat_loss(model, v, x, cfg["hat_weight"], attack, noise_rng)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeError(f"loss became {value} at epoch {pos.epoch + 1} "
                               f"batch {b + 1}; {last_path} is kept")
        loop.update(loss)
        pos.loss_sum += value * len(x)
        pos.seen += len(x)
        return [value]

    try:
        for epoch in range(pos.epoch, epochs):
            yield from loop.epoch(train_batch)
            scores = evaluate_batch(model, eval_x, cfg["noise"], cfg["level"],
                                    rho=eval_rho, steps=eval_steps, seed=0,
                                    device=device)
            model.train()
            metrics = {"train_loss": pos.loss_sum / max(pos.seen, 1),
                       "test_psnr_clean": scores["psnr_denoised"],
                       # the bar to clear; the same every epoch (same noise)
                       "test_psnr_noisy": scores["psnr_noisy"],
                       "test_psnr_attacked": scores["psnr_attacked"],
                       "lr": opt.param_groups[0]["lr"],
                       "epoch_seconds": pos.epoch_seconds}
            # Report, then close the epoch with no yield in between (as the
            # classifier trainer does): a stop never skips reported numbers.
            for name, value in metrics.items():
                yield Metric(name, value, epoch + 1)
            improved = metrics["test_psnr_attacked"] > pos.best
            if improved:
                pos.best, pos.best_epoch = metrics["test_psnr_attacked"], epoch + 1
            pos.next_epoch(metrics, loop.seconds())
            if improved:
                meta = dataclasses.replace(model.meta, training={
                    **config, "epoch": epoch + 1, **metrics})
                files.save(model, best_path, meta)
            run.save(pos)
            if improved:
                yield Artifact("best", best_path)
    except Cancelled:
        loop.save()
        raise
    last = pos.history[-1] if pos.history else {}
    model.eval()
    yield Done({"epochs": pos.epoch, "psnr_noisy": last.get("test_psnr_noisy"),
                "psnr_clean": last.get("test_psnr_clean"),
                "psnr_attacked": last.get("test_psnr_attacked"),
                "best_psnr_attacked": pos.best if pos.best_epoch else None,
                "best_epoch": pos.best_epoch,
                "seconds": loop.seconds(),
                "checkpoint": str(last_path),
                "best": str(best_path) if best_path.exists() else None})

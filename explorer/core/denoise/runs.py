"""Whole Denoiser Lab runs: several denoisers attacked one after the other in
one job, and a training run from the data set's name to its checkpoints.

The Denoiser Lab and ``explorer train-denoiser`` run the same
:func:`train_denoiser_run` with the same config (what the workspace stores).
Files and data sets are read here, in the job, never on the UI thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from explorer.core import data, denoise
from explorer.core.data.base import ArrayDataset
from explorer.core.inference import seeded
from explorer.core.jobs import CancelToken, Done, Event, Progress, Snapshot

PLAN = "plan"  # a training run's first snapshot: its batches per epoch
SEP = "|"  # "<denoiser>|<step label>" in the live attack's snapshot labels


def obsatk_rows(denoisers: Mapping[str, nn.Module], x: torch.Tensor, *,
                kind: str, level: float, rho: float, steps: int, seed: int = 0,
                every: int = 1, token: CancelToken) -> Iterator[Event]:
    """ObsAtk live on the same noisy observations for each denoiser in turn.

    Snapshots are labelled ``"<name>|<step label>"``; ``Done`` maps each name
    to its ``obsatk_live`` results plus ``psnr_random`` (per image, the random
    zero-mean baseline of the same norm, drawn after the same noise).
    """
    results: dict[str, Any] = {}
    for i, (name, model) in enumerate(denoisers.items()):
        token.check()
        yield Progress(i, len(denoisers), f"ObsAtk on {name}")
        for event in denoise.obsatk_live(model, x, kind=kind, level=level, rho=rho,
                                         steps=steps, seed=seed, every=every,
                                         token=token):
            if isinstance(event, Snapshot):
                yield Snapshot(event.step, event.total, event.arrays,
                               f"{name}{SEP}{event.label}")
            elif isinstance(event, Done):
                results[name] = dict(event.results)
        random = denoise.evaluate_batch(model, x, kind, level, attack="random",
                                        rho=rho, steps=steps, seed=seed,
                                        per_image=True)
        results[name]["psnr_random"] = np.asarray(random["psnr_attacked"]).tolist()
        results[name]["ssim_random"] = np.asarray(random["ssim_attacked"]).tolist()
    yield Progress(len(denoisers), len(denoisers), "done")
    yield Done({"denoisers": results, "rho": rho, "steps": steps})


def obsatk_real_rows(denoisers: Mapping[str, nn.Module], path: str,
                     reference: str | None = None, *, rms: float, steps: int,
                     seed: int = 0, every: int = 1,
                     token: CancelToken) -> Iterator[Event]:
    """ObsAtk live on a user's real noisy image, for each denoiser in turn.

    The file is read here, off the UI thread, as each denoiser takes it
    (channels, crop); the budget is the RMS per pixel, so rho follows the
    image's size. Snapshots as in :func:`obsatk_rows`; ``Done`` maps each
    name to its ``obsatk_real_live`` results plus ``shape`` and ``notes``.
    """
    results: dict[str, Any] = {}
    for i, (name, model) in enumerate(denoisers.items()):
        token.check()
        yield Progress(i, len(denoisers), f"reading {Path(path).name} for {name}")
        try:
            obs = denoise.real.prepare(path, model, reference)
        except denoise.DenoiserError as exc:
            raise denoise.DenoiserError(f"{name}: {exc}") from None
        shape = tuple(obs.noisy.shape)
        yield Progress(i, len(denoisers), f"ObsAtk on {name}")
        clean = None if obs.clean is None else obs.clean[None]
        for event in denoise.obsatk_real_live(
                model, obs.noisy[None], clean, rho=denoise.rms_to_rho(rms, shape),
                steps=steps, seed=seed, every=every, token=token):
            if isinstance(event, Snapshot):
                yield Snapshot(event.step, event.total, event.arrays,
                               f"{name}{SEP}{event.label}")
            elif isinstance(event, Done):
                results[name] = {**event.results, "shape": list(shape),
                                 "notes": list(obs.notes)}
    yield Progress(len(denoisers), len(denoisers), "done")
    yield Done({"denoisers": results, "steps": steps, "reference": bool(reference)})


def _limited(dataset, n: int | None):
    if n is None or n >= len(dataset):
        return dataset
    images, labels = dataset.as_tensors(0, n)
    return ArrayDataset(images, labels, dataset.classes, dataset.info)


def denoiser_shape(config: Mapping[str, Any], data_shape: tuple[int, ...]):
    """The input shape a denoiser is built for: random crops when ``crop``."""
    crop = config.get("crop")
    return (data_shape[0], crop, crop) if crop else tuple(data_shape)


def build_denoiser(config: Mapping[str, Any], shape: tuple[int, ...]) -> nn.Module:
    """The untrained denoiser, its initial weights drawn from the run's seed."""
    with seeded(config.get("seed", 0)):
        return denoise.create(config["arch"], in_shape=tuple(shape),
                              dataset=config["data"], **config["arch_params"])


def train_denoiser_run(config: Mapping[str, Any], *, run_dir, train_set=None,
                       test_set=None, device=None, resume: bool = False,
                       token: CancelToken) -> Iterator[Event]:
    """Load the data set's splits (unless given), build the denoiser, train it.

    ``config`` holds ``data``, ``root``, ``arch``, ``arch_params``, ``method``,
    ``params`` (noise, level, hat_weight, rho, attack_steps), ``epochs``,
    ``batch_size``, ``lr``, ``eval_n``, ``eval_steps``, ``limit_train`` and
    optionally ``crop`` (random crops of that side) and ``seed``.
    """
    root = config.get("root") or None
    if train_set is None:
        train_set = data.load(config["data"], "train", root=root)
    train_set = _limited(train_set, config.get("limit_train"))
    token.check()
    if test_set is None:
        test_set = data.load(config["data"], "test", root=root)
    model = build_denoiser(config, denoiser_shape(config, train_set.info.shape))
    batches = math.ceil(len(train_set) / config["batch_size"])
    yield Snapshot(0, config["epochs"], {"steps_per_epoch": np.array(batches)}, PLAN)
    yield from denoise.train_denoiser(
        model, train_set, test_set, method=config["method"],
        params=config["params"], epochs=config["epochs"], run_dir=run_dir,
        batch_size=config["batch_size"], crop=config.get("crop"), lr=config["lr"],
        seed=config.get("seed", 0), eval_rho=config["params"]["rho"],
        eval_steps=config["eval_steps"], eval_n=config["eval_n"], device=device,
        resume=resume, token=token)

"""`explorer denoise` and `explorer train-denoiser`: the Denoiser Lab headless.

``denoise`` scores a denoiser on the first N images of a split: PSNR of the
noisy input and of the reconstruction, SSIM, and with ``--attack`` the same
under ObsAtk or the random zero-mean baseline of the same norm. With
``--classifier NAME`` it scores the denoiser as a classifier's defense
instead: the classifier's accuracy on clean, noisy and denoised images, after
ObsAtk and after an adaptive attack through the denoiser.
``train-denoiser`` trains a DnCNN (standard or HAT) with the workspace's run
folder holding ``last.pt`` and ``best.safetensors``. The ObsAtk budget is
``--rms K`` (RMS K/255 per pixel; default 4, for any image size) or ``--rho``
(its l2 norm).
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    OneLineParser,
    UsageError,
    load_data,
    resolve_model,
    skipped_files,
)
from explorer.cli.running import RecordedRun, print_result, run_job


def _common(p: OneLineParser) -> None:
    p.add_argument("--data", default="fashion-mnist-mini", help="data set name")
    p.add_argument("--root", help="folder of a torchvision or image-folder set")
    p.add_argument("--noise", default="gaussian",
                   help="gaussian, poisson or salt-pepper (default: gaussian)")
    p.add_argument("--sigma", type=float, default=0.1,
                   help="noise level: sigma, peak or amount (default: 0.1)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")


def _budget_flags(p: OneLineParser) -> None:
    p.add_argument("--rms", type=float, default=None, metavar="K",
                   help="ObsAtk budget as RMS K/255 per pixel, for any image "
                        "size (default: RMS 4/255, i.e. rho 0.44 on 28×28)")
    p.add_argument("--rho", type=float, default=None,
                   help="the budget as the l2 norm of the perturbation instead "
                        "of --rms")


def _budget(ns: argparse.Namespace, shape: tuple[int, ...]) -> float:
    """--rho, or --rms K (default 4) as rho for images of ``shape``."""
    from explorer.core.denoise.obsatk import DEFAULT_RMS, rms_to_rho

    if ns.rho is not None and ns.rms is not None:
        raise UsageError("give the budget as --rms or as --rho, not both")
    if ns.rho is not None:
        return ns.rho
    if ns.rms is None:
        return rms_to_rho(DEFAULT_RMS, shape)
    if not ns.rms >= 0 or ns.rms == float("inf"):
        raise UsageError(f"--rms must be a finite number >= 0 (K/255 per pixel), "
                         f"got {ns.rms:g}")
    return rms_to_rho(ns.rms / 255, shape)


def _denoise_parser() -> OneLineParser:
    p = OneLineParser(prog="explorer denoise", allow_abbrev=False,
                      description="Score a denoiser (PSNR/SSIM), optionally "
                                  "under ObsAtk or a random zero-mean baseline.")
    p.add_argument("--model", required=True, help="built-in denoiser or a file")
    p.add_argument("--split", default="test", help="split (default: test)")
    p.add_argument("--attack", default="none", help="none, obsatk or random")
    _budget_flags(p)
    p.add_argument("--steps", type=int, default=20, help="ObsAtk steps")
    p.add_argument("--n", type=int, default=200, help="first N images of the split")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--classifier", metavar="NAME",
                   help="a built-in classifier or a model file: report its "
                        "accuracy on clean, noisy and denoised images, after "
                        "ObsAtk, and after an adaptive attack through the "
                        "denoiser (same rho and steps) instead of PSNR")
    p.add_argument("--classifier-arch", metavar="ARCH",
                   help="the architecture of a weights-only --classifier file")
    _common(p)
    return p


def denoise_command(args: argparse.Namespace) -> int:
    from explorer.core import denoise
    from explorer.core import device as devices
    from explorer.core.denoise.evaluation import check_attack
    from explorer.core.denoise.obsatk import check_budget, rho_to_rms
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    ns = _denoise_parser().parse_args(list(args.argv))
    if ns.n < 1:
        raise UsageError(f"--n must be at least 1, got {ns.n}")
    if ns.classifier is not None:
        return _classifier_command(args, ns)
    if ns.classifier_arch is not None:
        raise UsageError("--classifier-arch goes with --classifier")
    check_attack(ns.attack)
    check_budget(ns.rho if ns.rho is not None else 0.0, ns.steps)
    denoise.noise.check(ns.noise, ns.sigma)
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(ns.data, ns.split, root=ns.root)
    model = denoise.load_any(ns.model).to(device)
    denoise.check_input(model, dataset.as_tensors(0, 1)[0])
    ns.rho = _budget(ns, tuple(dataset.info.shape))
    config = {"model": ns.model, "data": ns.data, "split": ns.split,
              "noise": ns.noise, "level": ns.sigma, "attack": ns.attack,
              "rho": ns.rho, "steps": ns.steps, "n": ns.n, "device": str(device)}
    token = CancelToken()
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "denoise", config) as run:
        events = denoise.denoise_dataset(
            model, dataset, kind=ns.noise, level=ns.sigma, attack=ns.attack,
            rho=ns.rho, steps=ns.steps, n=ns.n, seed=ns.seed, device=device,
            token=token)
        results = run_job(events, token, as_json=ns.json, recorder=run.record,
                          title="denoising")
        run.summary = results
    shape = tuple(dataset.info.shape)
    results = {**results, "rms": rho_to_rms(ns.rho, shape), "model": ns.model,
               "data": ns.data, "run_id": run.id, **skipped_files(dataset)}
    if ns.json:
        print_result(results)
        return 0
    line = (f"PSNR noisy {results['psnr_noisy']:.2f} dB, denoised "
            f"{results['psnr_denoised']:.2f} dB (SSIM {results['ssim_denoised']:.3f})")
    if ns.attack != "none":
        line += (f", {ns.attack} (rho {ns.rho:g} = RMS "
                 f"{255 * results['rms']:.2f}/255) {results['psnr_attacked']:.2f} dB")
    print(f"{line} on {results['n']} images — run {run.id}")
    return 0


CLASSIFIER_LABELS = {"clean": "clean", "noisy": "noisy", "denoised": "denoised",
                     "obsatk": "after ObsAtk", "adaptive": "after adaptive attack"}


def _load_classifier(ns: argparse.Namespace):
    """--classifier as every command reads a model (resolve_model)."""
    from explorer.core.models import ModelError

    try:
        return resolve_model(ns.classifier, ns.classifier_arch)
    except (ModelError, OSError) as exc:
        text = str(exc).replace("pass --arch", "pass --classifier-arch")
        named = ns.classifier in text
        raise ModelError(f"--classifier{'' if named else ' ' + ns.classifier}: "
                         f"{text}") from None


def _classifier_command(args: argparse.Namespace, ns: argparse.Namespace) -> int:
    """``denoise --classifier``: ``classifier_accuracy`` on the first --n images."""
    from explorer.core import denoise
    from explorer.core import device as devices
    from explorer.core.denoise.jobs import check_classifier
    from explorer.core.denoise.obsatk import check_budget, rho_to_rms
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    if ns.attack != "none":
        raise UsageError("--attack goes with the PSNR score: --classifier runs "
                         "ObsAtk and the adaptive attack itself")
    check_budget(ns.rho if ns.rho is not None else 0.0, ns.steps)
    denoise.noise.check(ns.noise, ns.sigma)
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(ns.data, ns.split, root=ns.root)
    model = denoise.load_any(ns.model).to(device)
    denoise.check_input(model, dataset.as_tensors(0, 1)[0])
    ns.rho = _budget(ns, tuple(dataset.info.shape))
    classifier = _load_classifier(ns)
    check_classifier(classifier, dataset.info)
    classifier = classifier.to(device)
    config = {"model": ns.model, "classifier": ns.classifier, "data": ns.data,
              "split": ns.split, "noise": ns.noise, "level": ns.sigma,
              "rho": ns.rho, "steps": ns.steps, "n": ns.n, "device": str(device)}
    token = CancelToken()
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "denoise", config,
                        title=f"{ns.model} defending {ns.classifier}") as run:
        events = denoise.classifier_accuracy(
            classifier, model, dataset, kind=ns.noise, level=ns.sigma, rho=ns.rho,
            steps=ns.steps, n=ns.n, seed=ns.seed, device=device, token=token)
        results = run_job(events, token, as_json=ns.json, recorder=run.record,
                          title="classifier accuracy")
        run.summary = results
    results = {**results, "rms": rho_to_rms(ns.rho, tuple(dataset.info.shape)),
               "model": ns.model, "classifier": ns.classifier, "data": ns.data,
               "run_id": run.id, **skipped_files(dataset)}
    if ns.json:
        print_result(results)
        return 0
    shown = ", ".join(f"{label} {100 * results[f'acc_{key}']:.1f}%"
                      for key, label in CLASSIFIER_LABELS.items())
    print(f"{ns.classifier} behind {ns.model}: {shown} (rho {ns.rho:g} = RMS "
          f"{255 * results['rms']:.2f}/255, {ns.steps} steps) on {results['n']} "
          f"images — run {run.id}")
    return 0


def _train_parser() -> OneLineParser:
    p = OneLineParser(prog="explorer train-denoiser", allow_abbrev=False,
                      description="Train a DnCNN denoiser (standard or HAT).")
    p.add_argument("--method", default="standard", help="standard or hat")
    p.add_argument("--arch", default="dncnn", help="dncnn or unet")
    p.add_argument("--width", type=int, default=None, help="hidden channels")
    p.add_argument("--depth", type=int, default=None, help="dncnn: conv layers")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop", type=int, default=None,
                   help="random crops of this side (larger images)")
    p.add_argument("--hat-weight", type=float, default=1.0)
    _budget_flags(p)
    p.add_argument("--attack-steps", type=int, default=1)
    p.add_argument("--eval-n", type=int, default=100)
    p.add_argument("--eval-steps", type=int, default=5)
    p.add_argument("--limit-train", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0)
    _common(p)
    return p


def train_denoiser_command(args: argparse.Namespace) -> int:
    """The Denoiser Lab's Train tab job (``train_denoiser_run``), headless."""
    from explorer.core import device as devices
    from explorer.core.denoise.runs import denoiser_shape, train_denoiser_run
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    ns = _train_parser().parse_args(list(args.argv))
    for flag, value in (("--epochs", ns.epochs), ("--batch-size", ns.batch_size),
                        ("--eval-n", ns.eval_n), ("--eval-steps", ns.eval_steps)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if ns.limit_train is not None and ns.limit_train < 1:
        raise UsageError(f"--limit-train must be at least 1, got {ns.limit_train}")
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    # Loaded here so unreadable image files are named before the run.
    train_set = load_data(ns.data, "train", root=ns.root)
    test_set = load_data(ns.data, "test", root=ns.root)
    arch_params = {k: getattr(ns, k) for k in ("width", "depth")
                   if getattr(ns, k) is not None}
    rho = _budget(ns, denoiser_shape({"crop": ns.crop}, train_set.info.shape))
    params = {"noise": ns.noise, "level": ns.sigma, "hat_weight": ns.hat_weight,
              "rho": rho, "attack_steps": ns.attack_steps}
    config = {"data": ns.data, "root": ns.root, "arch": ns.arch,
              "arch_params": arch_params, "method": ns.method, "params": params,
              "epochs": ns.epochs, "batch_size": ns.batch_size, "lr": ns.lr,
              "eval_n": ns.eval_n, "eval_steps": ns.eval_steps,
              "limit_train": ns.limit_train, "crop": ns.crop, "seed": ns.seed}
    token = CancelToken()
    with Workspace.open(args.workspace) as ws, \
            RecordedRun(ws, "train-denoiser", config,
                        title=f"{ns.method} {ns.arch} on {ns.data}") as run:
        events = train_denoiser_run(config, run_dir=ws.run_dir(run.id),
                                    train_set=train_set, test_set=test_set,
                                    device=device, token=token)
        results = run_job(events, token, as_json=ns.json, recorder=run.record,
                          title="training denoiser")
        run.summary = results
    results: dict[str, Any] = {**results, "method": ns.method, "run_id": run.id,
                               "device": str(device),
                               **skipped_files(train_set, test_set)}
    if ns.json:
        print_result(results)
        return 0
    print(f"{ns.method}: {results['epochs']} epochs, PSNR "
          f"{results['psnr_clean']:.2f} dB, under ObsAtk "
          f"{results['psnr_attacked']:.2f} dB — run {run.id}")
    return 0

"""Denoisers, noise models, ObsAtk, HAT and image-quality metrics.

``names()/spec()/create()`` build architectures (``dncnn``, ``unet``);
``save/load`` use safetensors with denoiser metadata; ``builtin_names()`` /
``load_builtin(name)`` read the shipped weights; ``noise.apply`` makes noisy
observations; ``ObsAtk`` and ``random_baseline`` perturb them; ``psnr`` and
``ssim`` measure per image; ``real`` reads a user's real noisy image and
attacks it without a clean image (``obsatk_real_live``); the jobs evaluate,
sweep rho, compare classifier accuracy and train (``train_denoiser``).
"""

from explorer.core.denoise import noise, real
from explorer.core.denoise.evaluation import denoise_dataset, evaluate_batch
from explorer.core.denoise.files import (
    builtin_names,
    check_input,
    load,
    load_any,
    load_builtin,
    save,
)
from explorer.core.denoise.jobs import (
    adaptive_through_denoiser,
    classifier_accuracy,
    obsatk_live,
    psnr_vs_rho,
)
from explorer.core.denoise.metrics import psnr, ssim
from explorer.core.denoise.obsatk import (
    ObsAtk,
    ObsAtkStep,
    project,
    random_baseline,
    rho_to_rms,
    rms_to_rho,
)
from explorer.core.denoise.real import obsatk_real_live
from explorer.core.denoise.registry import (
    DenoiserError,
    DenoiserMeta,
    create,
    names,
    spec,
)
from explorer.core.denoise.training import hat_loss, train_denoiser

__all__ = [
    "DenoiserError",
    "DenoiserMeta",
    "ObsAtk",
    "ObsAtkStep",
    "adaptive_through_denoiser",
    "builtin_names",
    "check_input",
    "classifier_accuracy",
    "create",
    "denoise_dataset",
    "evaluate_batch",
    "hat_loss",
    "load",
    "load_any",
    "load_builtin",
    "names",
    "noise",
    "obsatk_live",
    "obsatk_real_live",
    "project",
    "psnr",
    "psnr_vs_rho",
    "random_baseline",
    "real",
    "rho_to_rms",
    "rms_to_rho",
    "save",
    "spec",
    "ssim",
    "train_denoiser",
]

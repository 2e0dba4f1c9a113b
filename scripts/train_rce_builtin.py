"""Train the built-in ``fmnist-cnn-rce``: reverse cross-entropy (Pang et al.
2018, seed 003), the training that makes the non-maximal-entropy detector
work, with the app's own trainer.

    python scripts/train_rce_builtin.py                  # mini train split
    python scripts/train_rce_builtin.py --idx-dir DIR    # official 60k

small-cnn as ``fmnist-cnn-standard`` (width 16, dense 256) trained with the
``rce`` defense: cross-entropy of softmax(Z) against the reverse label (0 at
y, 1/(L-1) elsewhere); the model outputs the negated logits -Z, so its argmax
is RCE's prediction and the detectors read softmax(-Z) as in the paper. Adam,
no augmentation. The training images are the bundled mini train split
(6,000), or the official Fashion-MNIST training set from its IDX files with
``--idx-dir``. The trainer holds out ``--val-n`` of them (a seeded draw) and
chooses the best epoch by clean accuracy on the first ``--select-n`` of
those held-out training images, never on test images. The result is saved to
``explorer/resources/models/`` with its metadata; ``--detect N`` then scores
the non-ME and kd detectors on PGD-20 l-inf eps 0.1 examples of the first N
mini test images for this model and for ``fmnist-cnn-standard`` (detectors
fitted on mini train images), prints the AUCs and keeps them in the model
card (measured after the choice; they choose nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch
from official_data import official_train, train_printing

from explorer.core import data, defenses, models
from explorer.core.certify.detect import detect_job
from explorer.core.jobs import run_to_end
from explorer.core.resources import resource_path

NAME = "fmnist-cnn-rce"
DETECT = {"detector": ("non-me", "kd"), "attack": "pgd", "eps": 0.1, "steps": 20}



def detection(model: torch.nn.Module, n: int) -> dict:
    """Detector AUCs on PGD examples of the first ``n`` mini test images."""
    r = run_to_end(detect_job(model, data.load("fashion-mnist-mini", "test"), n=n,
                              fit_dataset=data.load("fashion-mnist-mini", "train"),
                              **DETECT))
    return {"n_images": r["n"], "n_clean": r["n_clean"], "n_adv": r["n_adv"],
            **{name: {"auc": round(d["auc"], 3),
                      "tpr_at_5fpr": round(d["tpr_at_5fpr"], 3)}
               for name, d in r["detectors"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", type=Path, default=None,
                        help="folder of the official IDX files (default: the "
                             "bundled mini train split)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-n", type=int, default=5000)
    parser.add_argument("--select-n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--detect", type=int, default=200, metavar="N",
                        help="score the detectors on the first N mini test "
                             "images after training (0: skip)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.idx_dir is not None:
        train_set, source = official_train(args.idx_dir), "official Fashion-MNIST train"
    else:
        train_set, source = data.load("fashion-mnist-mini", "train"), \
            "fashion-mnist-mini train"
    test_set = data.load("fashion-mnist-mini", "test")
    info = test_set.info
    model = models.create("small-cnn", in_shape=info.shape,
                          num_classes=len(info.classes), mean=info.mean,
                          std=info.std, classes=info.classes,
                          dataset="fashion-mnist")
    out = args.out or resource_path("models", f"{NAME}.safetensors")
    run_dir = Path(tempfile.mkdtemp(prefix="rce-builtin-"))
    started = time.perf_counter()
    # eval_eps 0: each epoch is scored (and the best one chosen) on clean
    # accuracy of the held-out training images; RCE is not adversarial training.
    config = defenses.TrainingConfig(
        defense="rce", params={}, epochs=args.epochs, batch_size=128,
        optimizer="adam", lr=args.lr, weight_decay=0.0, augment="none",
        seed=args.seed, eval_eps=0.0, eval_steps=1, eval_n=args.select_n,
        val_fraction=args.val_n / len(train_set), val_max=args.val_n)
    result = train_printing(model, train_set, test_set, config, run_dir)
    best = models.load(run_dir / "best.safetensors")
    card: dict = {}
    if args.detect:  # measured on the mini test split, after the choice
        standard = models.load_builtin("fmnist-cnn-standard")
        card["detect_mini_test"] = {
            "attack": f"PGD-{DETECT['steps']} l-inf eps {DETECT['eps']:g}",
            "fitted_on": "fashion-mnist-mini train (first 400)",
            NAME: detection(best, args.detect),
            "fmnist-cnn-standard": detection(standard, args.detect)}
        for name in (NAME, "fmnist-cnn-standard"):
            d = card["detect_mini_test"][name]
            print(f"{name}: non-ME AUC {d['non-me']['auc']:.3f}, kd AUC "
                  f"{d['kd']['auc']:.3f} ({d['n_clean']} clean, {d['n_adv']} "
                  f"adversarial of the first {d['n_images']} mini test images)")
    meta = dataclasses.replace(best.meta, training={
        **best.meta.training, "script": "scripts/train_rce_builtin.py",
        "train_set": f"{source} less {args.val_n} held out",
        "selection": f"clean accuracy on the first {min(args.select_n, args.val_n):,} "
                     f"of the {args.val_n:,} held-out training images",
        "architecture": "small-cnn width 16 (conv 16-32-64), dense 256",
        "recipe": f"reverse cross-entropy (Pang et al. 2018), the model outputs "
                  f"the negated logits; adam lr {args.lr:g}, {args.epochs} epochs",
        "train_seconds": round(time.perf_counter() - started, 1), **card})
    models.save(best, out, meta)
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"saved {out}: chosen epoch {result.get('best_epoch')} on "
          f"{result.get('selected_on')}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

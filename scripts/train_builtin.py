"""Train the built-in ``fmnist-cnn-standard`` model (small-cnn, no defense).

    python scripts/train_builtin.py            # ~5 minutes on 2 CPU cores

Trains on the full official Fashion-MNIST training set (60k), reports accuracy
on the official 10k test set and on the bundled mini test split, and saves
``explorer/resources/models/fmnist-cnn-standard.safetensors`` with its metadata.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.core import models
from explorer.core.data.idx import read_idx
from explorer.core.resources import resource_path

FMNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)
log = logging.getLogger("train_builtin")


def load_split(idx_dir: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(idx_dir / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(idx_dir / f"{prefix}-labels-idx1-ubyte.gz")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_mini() -> tuple[torch.Tensor, torch.Tensor] | None:
    path = resource_path("fashion-mnist-mini.npz")
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        x = torch.from_numpy(npz["x_test"].astype(np.float32) / 255.0).unsqueeze(1)
        return x, torch.from_numpy(npz["y_test"].astype(np.int64))


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 pixels."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = sum(
        int((model(x[i : i + 1000]).argmax(1) == y[i : i + 1000]).sum())
        for i in range(0, len(x), 1000)
    )
    return correct / len(x)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    x_train, y_train = load_split(args.idx_dir, "train")
    x_test, y_test = load_split(args.idx_dir, "t10k")
    model = models.create(
        "small-cnn",
        in_shape=(1, 28, 28),
        num_classes=10,
        mean=FMNIST_MEAN,
        std=FMNIST_STD,
        classes=FMNIST_CLASSES,
        dataset="fashion-mnist",
    )
    steps_per_epoch = len(x_train) // args.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch
    )
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size : (step + 1) * args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if args.augment:
                xb = augment(xb, gen)
            loss = F.cross_entropy(model(xb), yb, label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        log.info(
            "epoch %d/%d  loss %.4f  test acc %.4f  %.0fs",
            epoch + 1,
            args.epochs,
            total / steps_per_epoch,
            accuracy(model, x_test, y_test),
            time.perf_counter() - start,
        )
    seconds = time.perf_counter() - start
    test_acc = accuracy(model, x_test, y_test)
    training = {
        "method": "standard",
        "epochs": args.epochs,
        "seed": args.seed,
        "optimizer": "adamw",
        "lr": args.lr,
        "schedule": "one-cycle",
        "batch_size": args.batch_size,
        "augment": bool(args.augment),
        "label_smoothing": 0.05,
        "test_accuracy": round(test_acc, 4),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
    }
    mini = load_mini()
    if mini is not None:
        training["mini_test_accuracy"] = round(accuracy(model, *mini), 4)
    model.meta.training = training
    models.save(model, args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"official test accuracy: {test_acc:.4f}")
    if mini is not None:
        print(f"mini test accuracy:     {training['mini_test_accuracy']:.4f}")
    else:
        print("mini test split not found; skipped")
    print(f"parameters: {params}, training time: {seconds:.0f}s")
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--idx-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist")
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=resource_path("models", "fmnist-cnn-standard.safetensors"),
    )
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train(parser.parse_args())


if __name__ == "__main__":
    main()

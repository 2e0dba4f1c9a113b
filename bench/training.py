"""Defense training quality and cost (Defense issue), printed, not asserted.

On fashion-mnist-mini (6,000 train images), small-cnn, eps 0.1:
  1. PGD-AT via the trainer vs a plain reference PGD-AT written below, same
     data, seed, optimizer and epochs: robust accuracy under PGD-20 on the
     1,000 test images (target: ours >= reference).
  2. Fast-AT at its defaults: robust accuracy after every epoch (target: no
     catastrophic overfitting, i.e. no collapse to ~0 while training goes on).
  3. Epoch cost: PGD-AT with k steps over (k+1) standard epochs (target
     <= 1.15); Fast-AT over a standard epoch (target <= 2.3).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.nn import functional as F

from explorer.core import attacks, data, defenses, models
from explorer.core.jobs import Done, Metric

EPS, STEPS = 0.1, 7
ALPHA = 2.5 * EPS / STEPS


def fresh_model(seed: int):
    torch.manual_seed(seed)
    info = data.info("fashion-mnist-mini")
    return models.create("small-cnn", in_shape=info.shape, num_classes=10,
                         mean=info.mean, std=info.std, classes=info.classes)


def robust_acc(model, x, y) -> float:
    atk = attacks.create("pgd", model, eps=EPS, alpha=EPS / 8, steps=20)
    x_adv = atk(x, y)
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item()


def ours(method: str, epochs: int, seed: int, params=None) -> tuple:
    train, test = (data.load("fashion-mnist-mini", s) for s in ("train", "test"))
    model = fresh_model(seed)
    per_epoch, seconds = [], []
    with tempfile.TemporaryDirectory() as run_dir:
        config = defenses.TrainingConfig(
            defense=method, params=params or {}, epochs=epochs, batch_size=128,
            seed=seed, lr=0.05, schedule="constant", eval_eps=EPS, eval_steps=10,
            eval_n=500, val_fraction=0.0)  # all 6,000 images, as the reference
        for ev in defenses.train(model, train, test, config, run_dir=run_dir,
                                 device="cpu"):
            if isinstance(ev, Metric) and ev.name == "test_robust_acc":
                per_epoch.append(ev.value)
            elif isinstance(ev, Metric) and ev.name == "epoch_seconds":
                seconds.append(ev.value)
            elif isinstance(ev, Done):
                pass
    return model.eval(), per_epoch, seconds


def reference_pgd_at(epochs: int, seed: int):
    """Madry et al.'s PGD-AT, written out plainly (no trainer, no helpers)."""
    train = data.load("fashion-mnist-mini", "train")
    x_all, y_all = train.as_tensors()
    model = fresh_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                          weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(y_all), generator=gen)
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            x, y = x_all[idx], y_all[idx]
            model.eval()
            delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * EPS
            x_adv = (x + delta).clamp(0, 1)
            for _ in range(STEPS):
                x_adv.requires_grad_(True)
                loss = F.cross_entropy(model(x_adv), y)
                (g,) = torch.autograd.grad(loss, x_adv)
                x_adv = x_adv.detach() + ALPHA * g.sign()
                x_adv = torch.min(torch.max(x_adv, x - EPS), x + EPS).clamp(0, 1)
            model.train()
            opt.zero_grad()
            F.cross_entropy(model(x_adv), y).backward()
            opt.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    x, y = data.load("fashion-mnist-mini", "test").as_tensors()

    t = time.perf_counter()
    ref = reference_pgd_at(args.epochs, args.seed)
    t_ref = time.perf_counter() - t
    ours_model, _, pgd_seconds = ours("pgd-at", args.epochs, args.seed,
                                      {"eps": EPS, "alpha": ALPHA, "steps": STEPS})
    r_ref, r_ours = robust_acc(ref, x, y), robust_acc(ours_model, x, y)
    print(f"PGD-AT, {args.epochs} epochs, PGD-20 robust accuracy on 1,000 images:")
    print(f"  reference {100 * r_ref:.1f}%   ours {100 * r_ours:.1f}%  "
          f"(target ours >= reference: {'meets' if r_ours >= r_ref else 'MISSES'})"
          f"   reference training {t_ref:.0f} s")

    _, fast_curve, fast_seconds = ours("fast-at", args.epochs, args.seed)
    collapsed = max(fast_curve) - fast_curve[-1] > 0.3 or fast_curve[-1] < 0.05
    print("Fast-AT robust accuracy per epoch (PGD-10, 500 images): "
          + ", ".join(f"{100 * a:.1f}%" for a in fast_curve)
          + f"  (catastrophic overfitting: {'YES' if collapsed else 'no'})")

    _, _, std_seconds = ours("standard", 2, args.seed)
    std = min(std_seconds)
    pgd = min(pgd_seconds)
    fast = min(fast_seconds)
    print(f"epoch cost: standard {std:.1f} s, PGD-AT-{STEPS} {pgd:.1f} s, "
          f"Fast-AT {fast:.1f} s")
    print(f"  PGD-AT-{STEPS} / ({STEPS}+1) standard epochs: "
          f"{pgd / ((STEPS + 1) * std):.2f} (target <= 1.15)")
    print(f"  Fast-AT / standard epoch: {fast / std:.2f} (target <= 2.3)")


if __name__ == "__main__":
    main()

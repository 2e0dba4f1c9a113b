"""Attack speed (Attack issue): printed ratios measured in one run.

  PGD-10 time / 10 forward+backward passes of the same batch   target <= 1.10
  our PGD-10 time / torchattacks' PGD-10 time (when installed)  target <= 1.00

The reference forward+backward is the cheapest an attack step can be: eval
mode, parameters frozen, gradient with respect to the input only. Both PGDs
run the same algorithm (random start, 10 signed steps, projection; ours with
``use_best=False``); ours with its default ``use_best=True`` is shown too.
Small CNN with batch 256 and PreAct-ResNet-18 with batch 64 on 28x28 inputs,
CPU. Medians of several repeats.

With ``--device cuda`` each model also runs channels-last and channels-last
with bfloat16 autocast (explorer.core.accel); the reference passes then use
the same layout and precision, so every ratio compares like with like.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from explorer.core import accel, attacks, data, models

STEPS = 10


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, kernels, cuDNN autotuning)
    times = []
    for _ in range(repeats):
        _sync()
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def forward_backward(model, x, y):
    def run():
        for _ in range(STEPS):
            xi = x.clone().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(xi), y, reduction="none")
            torch.autograd.grad(loss.sum(), xi)
    return run


def bench(label, model, x, y, repeats, device, *, channels_last=False, amp=False):
    model = accel.place(model, device, channels_last=channels_last).eval()
    x, y = x.to(device), y.to(device)
    if channels_last:
        label += ", channels-last"
    if amp:
        label += f", autocast {str(accel.amp_dtype(device)).split('.')[-1]}"
    reference = accel.Autocast(model) if amp else model
    for p in model.parameters():
        p.requires_grad_(False)
    t_ref = median_time(forward_backward(reference, x, y), repeats)
    for p in model.parameters():
        p.requires_grad_(True)
    ours = attacks.create("pgd", model, eps=0.1, alpha=0.01, steps=STEPS,
                          use_best=False, amp=amp)
    ours_best = attacks.create("pgd", model, eps=0.1, alpha=0.01, steps=STEPS,
                               amp=amp)
    t_ours = median_time(lambda: ours(x, y), repeats)
    t_best = median_time(lambda: ours_best(x, y), repeats)
    ids = torch.arange(len(x), device=x.device)  # per-image draws, as the suites
    t_ids = median_time(lambda: ours(x, y, ids=ids), repeats)
    print(f"{label}:")
    print(f"  10 x forward+backward      {t_ref * 1000:8.1f} ms")
    print(f"  our PGD-10                 {t_ours * 1000:8.1f} ms   ratio "
          f"{t_ours / t_ref:.3f} (target <= 1.10: "
          f"{'meets' if t_ours / t_ref <= 1.10 else 'MISSES'})")
    print(f"  our PGD-10, use_best       {t_best * 1000:8.1f} ms   ratio "
          f"{t_best / t_ref:.3f}")
    print(f"  our PGD-10, per-image ids  {t_ids * 1000:8.1f} ms   ratio "
          f"{t_ids / t_ref:.3f}")
    try:
        import torchattacks
    except ImportError:
        print("  torchattacks not installed: no comparison")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torchattacks.PGD(reference, eps=0.1, alpha=0.01, steps=STEPS,
                                  random_start=True)
        t_theirs = median_time(lambda: theirs(x, y), repeats)
    print(f"  torchattacks PGD-10        {t_theirs * 1000:8.1f} ms   ours/theirs "
          f"{t_ours / t_theirs:.3f} (target <= 1.00: "
          f"{'meets' if t_ours / t_theirs <= 1.0 else 'MISSES'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", default="small-cnn,preact-resnet18",
                        help="comma-separated: small-cnn, preact-resnet18")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {args.device}")
    x, y = data.load("fashion-mnist-mini", "test").as_tensors(0, 256)
    chosen = args.models.split(",")
    variants = [{}]
    if torch.device(args.device).type == "cuda":
        variants += [{"channels_last": True},
                     {"channels_last": True, "amp": True}]
    else:
        print("(CPU: channels-last and autocast are CUDA speed-ups; run with "
              "--device cuda to measure them)")
    for variant in variants:
        if "small-cnn" in chosen:
            bench("small-cnn (built-in), batch 256", models.load_builtin(
                "fmnist-cnn-standard"), x, y, args.repeats, args.device, **variant)
        if "preact-resnet18" in chosen:
            resnet = models.create("preact-resnet18", in_shape=(1, 28, 28),
                                   num_classes=10)
            bench("preact-resnet18, batch 64", resnet, x[:64], y[:64],
                  max(3, args.repeats // 2), args.device, **variant)


if __name__ == "__main__":
    main()

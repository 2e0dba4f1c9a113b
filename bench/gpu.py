"""GPU readiness (scale-out issue): one table of ratios measured in one run.

  (a) PGD-10 time / 10 forward+backward passes of the same batch, with fp32,
      channels-last, and channels-last + bf16 autocast (the project's PGD and
      explorer.core.accel)                                     target <= 1.10
  (b) Fast-AT epoch throughput through the trainer (``defenses.train``: its
      batches, autocast, update path) with amp bf16 and channels-last, in
      images/s, over a raw standard training step (forward, backward, SGD
      step on a batch already on the device, same precision and layout)
                                                               target >= 0.45
      Fast-AT is about 2 forward+backward passes per step (one FGSM step and
      the update), so the ideal is 0.5; Wong et al. (2020) trained CIFAR-10
      with it in 12 minutes. Standard training through the trainer is shown
      beside it: the trainer's own overhead.
  (c) (b) again with 2 processes, one GPU each (torch.multiprocessing spawn,
      explorer.core.distributed's process group; Fast-AT through the trainer
      with its DistributedDataParallel, the raw step through DDP;
      global batch as in (b)), when 2 GPUs are present; otherwise the row
      says why it is skipped.

PreAct-ResNet-18 on synthetic 3x32x32 images, batch 512 on a GPU (a few
minutes on an H200-class GPU); each figure is a median of several repeats
(a trainer figure: of its epochs after the first). ``--quick`` is a tiny
CPU version (small-cnn, batch 16, seconds) that the test suite runs so this
script never rots.
Every row is ``| name | value | unit | ratio | target |``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from attack_speed import STEPS, forward_backward, median_time

from explorer.core import accel, attacks, defenses, models
from explorer.core.data.base import ArrayDataset, DataInfo
from explorer.core.jobs import Metric
from explorer.core.training.precision import Precision

EPS = 8 / 255
PGD_TARGET, FAST_TARGET = 1.10, 0.45
SHAPE = (3, 32, 32)


def row(name: str, value: float, unit: str, ratio: float | None = None,
        target: str = "") -> None:
    shown = "" if ratio is None else f"{ratio:.3f}"
    print(f"| {name:<48} | {value:10.1f} | {unit:<5} | {shown:>6} | {target} |",
          flush=True)


def verdict(ok: bool, target: str) -> str:
    return f"{target} {'meets' if ok else 'MISSES'}"


def fresh(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.create(arch, in_shape=SHAPE, num_classes=10)


# -- (a) PGD-10 over 10 forward+backward passes ------------------------------------
def pgd_rows(arch: str, device: str, batch: int, repeats: int) -> None:
    x = torch.rand(batch, *SHAPE, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    for label, channels_last, amp in (("fp32", False, False),
                                      ("channels-last", True, False),
                                      ("channels-last + bf16", True, True)):
        model = accel.place(fresh(arch), device, channels_last=channels_last).eval()
        reference = accel.Autocast(model) if amp else model
        for p in model.parameters():
            p.requires_grad_(False)
        t_ref = median_time(forward_backward(reference, x, y), repeats)
        for p in model.parameters():
            p.requires_grad_(True)
        pgd = attacks.create("pgd", model, eps=EPS, alpha=EPS / 4, steps=STEPS,
                             use_best=False, amp=amp)
        t_pgd = median_time(lambda pgd=pgd: pgd(x, y), repeats)
        row(f"(a) 10 x forward+backward, {label}", t_ref * 1000, "ms")
        row(f"(a) PGD-10, {label}", t_pgd * 1000, "ms", t_pgd / t_ref,
            verdict(t_pgd / t_ref <= PGD_TARGET, f"<= {PGD_TARGET}"))


# -- (b) Fast-AT through the trainer over a raw standard step -----------------------
def raw_rate(arch: str, device: str, batch: int, steps: int, amp: str, repeats: int,
             model: torch.nn.Module | None = None) -> float:
    """Images/s of plain standard training steps on one device-resident batch
    (the median of ``repeats`` runs of ``steps`` steps, after a warm-up run)."""
    model = model if model is not None else accel.place(fresh(arch), device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    precision = Precision(amp, device)
    x = torch.rand(batch, *SHAPE, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = F.cross_entropy(model(x), y)
        precision.step(loss, opt)

    def run() -> None:
        for _ in range(steps):
            step()

    return batch * steps / median_time(run, repeats)


def synthetic(n: int, seed: int) -> ArrayDataset:
    gen = torch.Generator().manual_seed(seed)
    info = DataInfo("synthetic", "synthetic 3x32x32", "builtin",
                    tuple(str(i) for i in range(10)), SHAPE, ("train", "test"))
    images = torch.randint(0, 256, (n, *SHAPE), generator=gen, dtype=torch.uint8)
    return ArrayDataset(images, torch.randint(0, 10, (n,), generator=gen),
                        info.classes, info)


def trainer_rate(arch: str, defense: str, device: str, batch: int, batches: int,
                 amp: str, timed: int, world=None) -> float:
    """Images/s of the trainer: the median of ``timed`` epochs after the
    first (which warms up); with ``world`` (a distributed World) one rank of
    a run of several processes, ``batch`` the global batch."""
    from explorer.core import distributed

    world = world or distributed.SINGLE
    train, test = synthetic(batch * batches, 0), synthetic(8, 1)
    params = {"eps": EPS} if defense == "fast-at" else {}
    config = defenses.TrainingConfig(
        defense=defense, params=params, epochs=1 + timed, batch_size=batch, lr=0.01,
        schedule="constant", augment="none", eval_eps=EPS, eval_steps=1, eval_n=8,
        val_fraction=0.0, checkpoint_minutes=1e6, amp=amp)
    seconds = []
    with tempfile.TemporaryDirectory() as run_dir:
        for event in defenses.train(accel.place(fresh(arch), device), train, test,
                                    config, run_dir=run_dir, device=device,
                                    world=world):
            if isinstance(event, Metric) and event.name == "epoch_seconds":
                seconds.append(event.value)
    return len(train) / statistics.median(seconds[1:])


def training_rows(arch: str, device: str, batch: int, batches: int, amp: str,
                  repeats: int) -> None:
    raw = raw_rate(arch, device, batch, batches, amp, repeats)
    timed = min(repeats, 3)
    standard = trainer_rate(arch, "standard", device, batch, batches, amp, timed)
    fast = trainer_rate(arch, "fast-at", device, batch, batches, amp, timed)
    row(f"(b) raw standard step, {amp}", raw, "img/s")
    row(f"(b) standard via the trainer, {amp}", standard, "img/s", standard / raw,
        "trainer / raw")
    row(f"(b) Fast-AT via the trainer, {amp}", fast, "img/s", fast / raw,
        verdict(fast / raw >= FAST_TARGET, f">= {FAST_TARGET} (ideal 0.5)"))


# -- (c) 2 processes ----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, size: int, port: int, args: dict, out: str) -> None:
    """One rank of (c): raw standard steps under DDP and Fast-AT through the
    trainer, each rank on its share of the global batch; rank 0 writes the
    rates."""
    from torch.nn.parallel import DistributedDataParallel

    from explorer.core import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    world = distributed.setup(args["device"])
    device = distributed.device_for(world, args["device"]) or "cpu"
    share, steps, amp = args["batch"] // size, args["batches"], args["amp"]
    model = accel.place(fresh(args["arch"]), device)
    ddp = DistributedDataParallel(model, device_ids=[rank] if world.backend == "nccl"
                                  else None)
    raw = raw_rate(args["arch"], device, share, steps, amp, args["repeats"],
                   model=ddp) * size
    world.barrier()
    # Fast-AT through the trainer itself: each rank its share of every
    # global batch, DDP averaging the gradients (rank 0's epoch times)
    fast = trainer_rate(args["arch"], "fast-at", device, args["batch"], steps, amp,
                        min(args["repeats"], 3), world=world)
    if world.main:
        Path(out).write_text(json.dumps({"raw": raw, "fast": fast}))
    distributed.shutdown()


def processes_rows(arch: str, device: str, batch: int, batches: int, amp: str,
                   repeats: int, processes: int) -> None:
    import torch.multiprocessing as mp

    args = {"arch": arch, "device": device, "batch": batch, "batches": batches,
            "amp": amp, "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rates.json")
        mp.spawn(_rank_main, args=(processes, _free_port(), args, out),
                 nprocs=processes, join=True)
        rates = json.loads(Path(out).read_text())
    label = f"{processes} processes"
    row(f"(c) raw standard step, {label}, {amp}", rates["raw"], "img/s")
    row(f"(c) Fast-AT via the trainer, {label}, {amp}", rates["fast"], "img/s",
        rates["fast"] / rates["raw"],
        verdict(rates["fast"] / rates["raw"] >= FAST_TARGET, f">= {FAST_TARGET}"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--arch", default="preact-resnet18")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: 512 on a GPU, 64 on a CPU)")
    parser.add_argument("--batches", type=int, default=None,
                        help="timed training batches (default: 40 on a GPU, 4 "
                             "on a CPU)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats of each (a) timing (default: 5; 1 quick)")
    parser.add_argument("--amp", default=None, choices=("off", "bf16", "fp16"),
                        help="precision of (b) and (c) (default: bf16)")
    parser.add_argument("--processes", type=int, default=None,
                        help="(c)'s processes (default: 2 when 2 GPUs are "
                             "present; gloo on CPUs when given)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny CPU version: small-cnn, batch 16, seconds")
    args = parser.parse_args(argv)
    on_gpu = torch.device(args.device).type == "cuda"
    if args.quick:
        args.device, args.arch, on_gpu = "cpu", "small-cnn", False
        args.batch, args.batches = args.batch or 16, args.batches or 2
        args.repeats = args.repeats or 1
    batch = args.batch or (512 if on_gpu else 64)
    batches = args.batches or (40 if on_gpu else 4)
    repeats = args.repeats or 5
    amp = args.amp or "bf16"
    gpus = torch.cuda.device_count() if on_gpu else 0
    print(f"torch {torch.__version__}, device {args.device}"
          f"{f' ({torch.cuda.get_device_name()}, {gpus} GPUs)' if on_gpu else ''}, "
          f"{args.arch}, batch {batch}, 3x32x32 synthetic, "
          f"{torch.get_num_threads()} threads")
    print(f"| {'row':<48} | {'value':>10} | unit  | {'ratio':>6} | target |")
    pgd_rows(args.arch, args.device, batch, repeats)
    training_rows(args.arch, args.device, batch, batches, amp, repeats)
    processes = args.processes or (2 if gpus >= 2 else 0)
    if processes >= 2:
        processes_rows(args.arch, args.device, batch, batches, amp, repeats,
                       processes)
    else:
        why = (f"{gpus} GPU" if on_gpu else "no GPU") + "; --processes 2 forces it"
        print(f"2 processes: skipped ({why})")


if __name__ == "__main__":
    main()

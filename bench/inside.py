"""Look-inside speed: printed ratios measured in one run (target <= 1.2 each).

  101x101 image-space slice of small-cnn / 10,201 forward passes     <= 1.2
  21x21 weight landscape on 1,000 images / 441 forwards of 1,000    <= 1.2

The reference is the pure forward pass the grid needs: the same model in
eval mode under ``inference_mode``, the same number of images in batches of
the same size, on random inputs, timed before and after each job
(averaged; the landscape's reference is 2×21 forwards scaled to 441). The
slice's time is the whole job (PGD for the adversarial direction and point
included) and, separately, its grid evaluation alone. Also printed: the
playground's snapshot rate (standard vs PGD-AT on moons, 5 updates per
snapshot). ``--quick`` uses smaller grids.
"""

from __future__ import annotations

import argparse
import time

import torch

from explorer.core import data, models
from explorer.core import device as devices
from explorer.core.analysis.landscape import weight_landscape
from explorer.core.analysis.slices import image_slice, image_slice_job
from explorer.core.defenses.playground import Learner, Playground, playground_job
from explorer.core.jobs import Progress

TARGET = 1.2


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.inference_mode()
def forward_time(model, n_images: int, batch: int, device, repeats: int = 1) -> float:
    x = torch.rand(min(batch, n_images), 1, 28, 28, device=device)
    model(x)  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        done = 0
        while done < n_images:
            model(x[: min(batch, n_images - done)])
            done += batch
    sync(device)
    return time.perf_counter() - start


def bench_slice(model, image, label, grid: int, device) -> None:
    model(image[None].to(device))
    # The reference is taken before and after the job and averaged, which
    # evens out load from other processes that changes while it runs.
    ref_before = forward_time(model, grid * grid, 2048, device)
    start = time.perf_counter()
    grid_start = None
    for event in image_slice_job([model], image, label, grid=grid, eps=0.1):
        if grid_start is None and isinstance(event, Progress) \
                and event.label == "adversarial points":
            sync(device)
            grid_start = time.perf_counter()
    sync(device)
    end = time.perf_counter()
    ref = (ref_before + forward_time(model, grid * grid, 2048, device)) / 2
    whole, only = (end - start) / ref, (end - grid_start) / ref
    print(f"slice {grid}x{grid} small-cnn: job {end - start:.3f} s, grid "
          f"{end - grid_start:.3f} s, {grid * grid} forwards {ref:.3f} s -> ratio "
          f"job {whole:.2f}, grid {only:.2f} (target <= {TARGET})")


def bench_landscape(model, x, y, grid: int, device) -> None:
    # grid forwards before and after (averaged), scaled to grid² of them.
    ref_before = forward_time(model, len(x), len(x), device, repeats=grid)
    start = time.perf_counter()
    weight_landscape(model, x, y, grid=grid, batch_size=len(x))
    sync(device)
    took = time.perf_counter() - start
    ref_after = forward_time(model, len(x), len(x), device, repeats=grid)
    ref = (ref_before + ref_after) / 2 * grid
    print(f"weight landscape {grid}x{grid} on {len(x)} images: {took:.2f} s, "
          f"{grid * grid} forwards of {len(x)} {ref:.2f} s -> ratio "
          f"{took / ref:.2f} (target <= {TARGET})")


def bench_playground(seconds: float) -> None:
    pg = Playground([Learner(), Learner("pgd-at", {"eps": 0.05})], data="moons")
    start, count = time.perf_counter(), 0
    for _ in playground_job(pg, steps=10**6, steps_per_snapshot=5):
        count += 1
        if time.perf_counter() - start > seconds:
            break
    rate = count / (time.perf_counter() - start)
    print(f"playground standard vs pgd-at on moons, 100x100 grid, 6 probes: "
          f"{rate:.1f} snapshots/s (target >= 10 on CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="smaller grids")
    args = parser.parse_args()
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    print(f"device {devices.describe(device)}, {torch.get_num_threads()} threads")
    model = models.load_builtin("fmnist-cnn-standard").to(device).eval()
    ds = data.load("fashion-mnist-mini", "test")
    x, y = ds.as_tensors(0, 1000)
    image_slice([model], x[0], int(y[0]), grid=3, steps=1)  # warm-up
    bench_slice(model, x[0], int(y[0]), 31 if args.quick else 101, device)
    bench_landscape(model, x.to(device), y.to(device), 5 if args.quick else 21,
                    device)
    bench_playground(2.0 if args.quick else 5.0)


if __name__ == "__main__":
    main()

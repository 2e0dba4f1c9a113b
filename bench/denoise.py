"""Denoiser figures (Denoiser Lab issue), printed, measured in one run.

On the first 200 test images of fashion-mnist-mini, Gaussian noise sigma 0.1,
PSNR averaged per image (scikit-image, nothing clipped):

  standard denoiser: PSNR gain over the noisy input            target >= +5 dB
  ObsAtk-20 at RMS 4/255: extra loss beyond the random
    zero-mean baseline of the same norm (standard denoiser)    target >= 1.5 dB
  under ObsAtk: HAT PSNR - standard PSNR                       target >= 0.5 dB
  clean: standard PSNR - HAT PSNR                              target < 0.5 dB

It also prints what the figures are made of: each denoiser's ObsAtk cost
beyond the random baseline, and its gain along ObsAtk's direction and along
a random zero-mean one (||f(v + t·d) - f(v)|| / ||t·d|| for a small t, i.e.
how much of the perturbation passes through the denoiser). With ``--control
FILE`` (a standard denoiser trained exactly as long as the HAT one) it
prints HAT - control under ObsAtk, HAT's edge at equal training.

Natural photos (issue 19): the same comparison for dncnn-natural-standard
and dncnn-natural-hat on the test photos of natural-patches (camera, chelsea,
gravel, never seen in training) whole, and on its 40×40 test patches,
Gaussian sigma 0.1, ObsAtk-20 at RMS 4/255 of each image's size:

  under ObsAtk: HAT PSNR - standard PSNR                       target >= 0.3 dB
  clean: standard PSNR - HAT PSNR                              target <= 0.5 dB

beside each denoiser's pass-through gains along ObsAtk's direction and a
random one. ``--natural-control FILE`` adds a third denoiser (e.g. a
control run of the training script) to that table.
"""

from __future__ import annotations

import argparse

import torch

from explorer.core import data, denoise
from explorer.core.data import natural
from explorer.core.denoise.obsatk import default_rho, pass_through_gain
from explorer.core.jobs import run_to_end


def scores(model, dataset, attack: str, rho: float, steps: int, n: int) -> dict:
    return run_to_end(denoise.denoise_dataset(
        model, dataset, kind="gaussian", level=0.1, attack=attack, rho=rho,
        steps=steps, n=n, seed=0))


def gains(model, dataset, rho: float, steps: int, n: int) -> tuple[float, float]:
    """Gain along ObsAtk's perturbation and along the random baseline's."""
    x = dataset.as_tensors(0, n)[0]
    gen = torch.Generator().manual_seed(0)
    v = denoise.noise.apply(x, "gaussian", 0.1, gen)
    d_atk = denoise.ObsAtk(rho, steps)(model, v, x)
    d_rnd = denoise.random_baseline(tuple(v.shape), rho, gen)
    return (float(pass_through_gain(model, v, d_atk).mean()),
            float(pass_through_gain(model, v, d_rnd).mean()))


def photo_scores(model, x, steps: int, seed: int = 0) -> dict:
    """Clean and ObsAtk PSNR (per image) at RMS 4/255, and the gains along
    ObsAtk's direction and a random one, on images ``x`` (N×1×H×W)."""
    gen = torch.Generator().manual_seed(seed)
    v = denoise.noise.apply(x, "gaussian", 0.1, gen)
    rho = default_rho(tuple(x.shape[1:]))
    d_atk = denoise.ObsAtk(rho, steps)(model, v, x)
    d_rnd = denoise.random_baseline(tuple(v.shape), rho, gen)
    with torch.no_grad():
        clean, attacked = model(v), model(v + d_atk)
    return {"clean": denoise.psnr(x, clean), "attacked": denoise.psnr(x, attacked),
            "noisy": denoise.psnr(x, v),
            "gain_obsatk": pass_through_gain(model, v, d_atk).numpy(),
            "gain_random": pass_through_gain(model, v, d_rnd).numpy()}


def natural_section(names: dict[str, str], steps: int, n_patches: int) -> None:
    """The natural-photo comparison (see the module doc), printed."""
    models = {label: denoise.load_any(name) for label, name in names.items()}
    photos = natural.test_photos()
    test = data.load("natural-patches", "test")
    # every k-th test patch, so that a few still come from all three photos
    patches = test.as_tensors()[0][::max(1, len(test) // max(n_patches, 1))][
        :n_patches]
    print(f"\nnatural photos (natural-patches test photos, never trained on): "
          f"Gaussian sigma 0.1, ObsAtk {steps} steps at RMS 4/255 of each image")
    per: dict[str, dict[str, dict]] = {label: {} for label in models}
    for label, model in models.items():
        for name, x in photos.items():
            per[label][name] = photo_scores(model, x[None], steps)
        if len(patches):
            per[label]["patches"] = photo_scores(model, patches, steps)
    items = [*photos, *(["patches"] if len(patches) else [])]
    sizes = {name: "×".join(map(str, x.shape[1:][::-1])) for name, x in photos.items()}
    sizes["patches"] = f"{len(patches)} of 40×40"
    for item in items:
        noisy = float(per[next(iter(models))][item]["noisy"].mean())
        print(f"  {item:8s} ({sizes[item]}, noisy {noisy:.2f} dB)")
        for label in models:
            r = per[label][item]
            print(f"    {label:9s} clean {r['clean'].mean():6.2f} dB, ObsAtk "
                  f"{r['attacked'].mean():6.2f} dB; gain along ObsAtk "
                  f"{r['gain_obsatk'].mean():.2f}, random "
                  f"{r['gain_random'].mean():.2f}")

    def mean(label: str, key: str, keys) -> float:
        return float(sum(per[label][k][key].mean() for k in keys) / len(keys))

    for title, keys in (("the 3 test photos whole (mean over photos)",
                         list(photos)),
                        ("the test patches (mean over patches)", ["patches"])):
        if keys == ["patches"] and not len(patches):
            continue
        robust = mean("HAT", "attacked", keys) - mean("standard", "attacked", keys)
        cost = mean("standard", "clean", keys) - mean("HAT", "clean", keys)
        print(f"  {title}:")
        print(f"    {'HAT - standard under ObsAtk':30s} {robust:+6.2f} dB  target "
              f">= 0.3  {'ok' if robust >= 0.3 else 'MISSED'}")
        print(f"    {'clean cost of HAT':30s} {cost:+6.2f} dB  target <= 0.5  "
              f"{'ok' if cost <= 0.5 else 'MISSED'}")
        for label in models:
            if label not in ("standard", "HAT"):
                under = (mean(label, "attacked", keys)
                         - mean("standard", "attacked", keys))
                clean = mean(label, "clean", keys) - mean("standard", "clean", keys)
                print(f"    {label} - standard: under ObsAtk {under:+.2f} dB, "
                      f"clean {clean:+.2f} dB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--standard", default="dncnn-fmnist-standard")
    parser.add_argument("--hat", default="dncnn-fmnist-hat")
    parser.add_argument("--control", default=None, help="a standard denoiser "
                        "trained as long as the HAT one (prints HAT's edge over it)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--natural-standard", default="dncnn-natural-standard")
    parser.add_argument("--natural-hat", default="dncnn-natural-hat")
    parser.add_argument("--natural-control", action="append", default=[],
                        metavar="FILE", help="another natural denoiser to compare "
                        "(repeatable)")
    parser.add_argument("--patches", type=int, default=365, help="natural "
                        "section: test patches to add (spread over the split; "
                        "0: the whole photos only)")
    parser.add_argument("--only", choices=("fmnist", "natural"), default=None,
                        help="print one section only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only != "natural":
        fmnist_section(args)
    if args.only != "fmnist":
        names = {"standard": args.natural_standard, "HAT": args.natural_hat}
        names.update({f"control {i + 1}": f
                      for i, f in enumerate(args.natural_control)})
        natural_section(names, args.steps, args.patches)


def fmnist_section(args) -> None:
    dataset = data.load("fashion-mnist-mini", "test")
    rho = denoise.rms_to_rho(4 / 255, tuple(dataset.info.shape))
    std, hat = denoise.load_any(args.standard), denoise.load_any(args.hat)
    s_obs = scores(std, dataset, "obsatk", rho, args.steps, args.n)
    s_rnd = scores(std, dataset, "random", rho, args.steps, args.n)
    h_obs = scores(hat, dataset, "obsatk", rho, args.steps, args.n)
    h_rnd = scores(hat, dataset, "random", rho, args.steps, args.n)
    gain = s_obs["psnr_denoised"] - s_obs["psnr_noisy"]
    extra = s_rnd["psnr_attacked"] - s_obs["psnr_attacked"]
    robust = h_obs["psnr_attacked"] - s_obs["psnr_attacked"]
    cost = s_obs["psnr_denoised"] - h_obs["psnr_denoised"]
    print(f"rho {rho:.4f} (RMS 4/255), ObsAtk {args.steps} steps, n {args.n}")
    print(f"noisy {s_obs['psnr_noisy']:.2f} dB; standard {s_obs['psnr_denoised']:.2f}"
          f" dB clean, {s_rnd['psnr_attacked']:.2f} random, "
          f"{s_obs['psnr_attacked']:.2f} ObsAtk; HAT {h_obs['psnr_denoised']:.2f} "
          f"clean, {h_obs['psnr_attacked']:.2f} ObsAtk")
    rows = [("standard gain over noisy", gain, ">= 5.0", gain >= 5.0),
            ("ObsAtk cost beyond random", extra, ">= 1.5", extra >= 1.5),
            ("HAT - standard under ObsAtk", robust, ">= 0.5", robust >= 0.5),
            ("clean cost of HAT", cost, "< 0.5", cost < 0.5)]
    for name, value, target, ok in rows:
        print(f"{name:30s} {value:+6.2f} dB  target {target:7s} "
              f"{'ok' if ok else 'MISSED'}")
    print("\nwhat they are made of:")
    for label, model, obs, rnd in (("standard", std, s_obs, s_rnd),
                                   ("HAT", hat, h_obs, h_rnd)):
        g_atk, g_rnd = gains(model, dataset, rho, args.steps, min(args.n, 100))
        print(f"  {label:8s} ObsAtk cost beyond random "
              f"{rnd['psnr_attacked'] - obs['psnr_attacked']:5.2f} dB; gain along "
              f"ObsAtk's direction {g_atk:.2f}, along a random one {g_rnd:.2f}")
    if args.control:
        ctl = denoise.load_any(args.control)
        c_obs = scores(ctl, dataset, "obsatk", rho, args.steps, args.n)
        print(f"  control {args.control}: {c_obs['psnr_denoised']:.2f} dB clean, "
              f"{c_obs['psnr_attacked']:.2f} ObsAtk; HAT - control under ObsAtk "
              f"{h_obs['psnr_attacked'] - c_obs['psnr_attacked']:+.2f} dB, clean "
              f"{h_obs['psnr_denoised'] - c_obs['psnr_denoised']:+.2f} dB")


if __name__ == "__main__":
    main()

"""`explorer attack`: attack the first N images of a data set, headless.

An attack's flags depend on the attack, so the arguments are parsed in two
passes: first the common ones (to learn ``--attack``), then again with that
attack's parameters added as flags (``explorer attack --attack pgd --help``
lists PGD's). The sub-command in ``explorer.cli.main`` hands over its arguments
verbatim. Every usage error is one line naming the flag.
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    OneLineParser,
    UsageError,
    add_data_flags,
    add_model_file_flags,
    guardrail_warnings,
    load_data,
    model_from_flags,
    naming_flag,
    skipped_files,
)
from explorer.cli.running import RecordedRun, print_result, run_job
from explorer.cli.wrap_flags import (
    add_wrap_flag,
    add_wrapper_flags,
    apply_wrapper,
    wrapper_values,
)

KEPT_EXAMPLES = 16
SUMMARY_KEYS = ("clean_acc", "robust_acc", "success_rate", "success_rate_all",
                "mean_linf", "mean_l2", "mean_l1", "seconds", "images_per_second",
                "n", "attack", "params")  # fmt: skip


def _common_parser() -> OneLineParser:
    p = OneLineParser(prog="explorer attack", add_help=False, allow_abbrev=False,
                description="Attack the first N images of a data set; the "
                            "attack's own parameters are flags too.")
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    p.add_argument("--attack", help="attack name (see `explorer attack --help`)")
    p.add_argument("--model", help="built-in model name or a weights file")
    add_model_file_flags(p)
    add_data_flags(p)
    p.add_argument("--n", type=int, default=1000,
                   help="attack the first N images of the split (default: 1000)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="attack seed (default: 0)")
    add_wrap_flag(p)
    p.add_argument("--save", action="store_true",
                   help=f"save the first {KEPT_EXAMPLES} examples (npz, PNGs) "
                        "into the run folder")
    p.add_argument("--record", metavar="FILE",
                   help="write the attack's steps on one image as an animation "
                        "(.gif, or .mp4 with imageio-ffmpeg): original | "
                        "perturbation | adversarial with the top-5 classes, one "
                        "frame for the start and one per step")
    p.add_argument("--record-index", type=int, default=0, metavar="I",
                   help="the image --record records (default: 0, the first)")
    p.add_argument("--json", action="store_true",
                   help="JSON lines; the last line holds the results")
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """Both passes; ``ns.attack_params`` holds the validated values given."""
    from explorer.core import attacks
    from explorer.core.params import add_flag_group, given_values

    ns, _ = _common_parser().parse_known_args(argv)
    if ns.attack is None:
        if ns.help:
            return ns, _common_parser()
        raise UsageError(f"--attack is required (choose from "
                       f"{', '.join(attacks.names())})")
    params = attacks.spec(ns.attack)  # unknown attack: ParamError naming it
    parser = _common_parser()
    # A parameter named like a common flag (universal's batch_size) gets the
    # flag --attack-NAME instead.
    flags = add_flag_group(parser, f"parameters of {ns.attack}", params,
                           prefix="attack", taken=vars(ns))
    if ns.wrap is not None:
        add_wrapper_flags(parser, ns.wrap)
    ns = parser.parse_args(argv)
    ns.wrap_params = wrapper_values(ns) if ns.wrap is not None else {}
    given = given_values(flags, ns, params)
    ns.attack_params = given
    return ns, parser


def _help_text(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if ns.attack is not None:
        return parser.format_help()
    from explorer.core import attacks

    names = "\n".join(f"  {n:12} {attacks.attack_class(n).title}"
                      for n in attacks.names())
    return (parser.format_help() + "\nattacks (`--attack NAME --help` lists its "
            f"flags):\n{names}\n")


def _check(ns: argparse.Namespace) -> None:
    if ns.model is None:
        raise UsageError("--model is required (a built-in model name or a file)")
    if ns.n < 1:
        raise UsageError(f"--n must be at least 1, got {ns.n}")
    if ns.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {ns.batch_size}")
    if ns.record is not None:
        from explorer.core.recording import check_path

        with naming_flag("--record"):
            check_path(ns.record)
    if not 0 <= ns.record_index < ns.n:
        raise UsageError(f"--record-index must be in [0, {ns.n - 1}] (one of the "
                         f"--n images attacked), got {ns.record_index}")


def run_attack(args: argparse.Namespace, ns: argparse.Namespace) -> dict[str, Any]:
    """Load, attack, record the run; the results' scalars plus ``run_id``."""
    from explorer.core import accel, attacks, models
    from explorer.core import device as devices
    from explorer.core.attacks.jobs import attack_dataset, save_examples
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    _check(ns)
    devices.configure_threads(leave_for_ui=0)
    device = devices.pick(args.device)
    dataset = load_data(ns.data, ns.split, root=ns.root, shape=ns.input_shape)
    model = model_from_flags(ns.model, ns)
    models.check_compatible(model, dataset.info)
    model, wrapper = apply_wrapper(model, ns)
    model = accel.place(model, device)
    # Validates the cross-parameter rules before a run is recorded.
    cfg = attacks.create(ns.attack, model, seed=ns.seed, **ns.attack_params).cfg
    if ns.record is not None and ns.record_index >= len(dataset):
        raise UsageError(f"--record-index must be below the {len(dataset)} images "
                         f"of {ns.data} ({ns.split}), got {ns.record_index}")
    k = len(dataset.info.classes)
    if cfg.get("targeted") == "class" and k and cfg["target_class"] >= k:
        raise UsageError(f"--target-class must be in [0, {k - 1}] for {ns.data}, "
                       f"got {cfg['target_class']}")
    config = {"model": ns.model, "data": ns.data, "split": ns.split, "n": ns.n,
              "batch_size": ns.batch_size, "seed": ns.seed, "device": str(device),
              "attack": ns.attack, "params": cfg}
    if wrapper is not None:
        config["wrapper"] = wrapper
    token = CancelToken()
    title = f"{ns.attack} on {ns.model}"
    with (Workspace.open(args.workspace) as ws,
          RecordedRun(ws, "attack", config, title=title) as run):
        events = attack_dataset(
            model, dataset, attack=ns.attack, params=cfg, n=ns.n,
            batch_size=ns.batch_size, seed=ns.seed, device=device,
            keep_examples=KEPT_EXAMPLES if ns.save else 0, token=token)
        results = run_job(events, token, as_json=ns.json,
                          recorder=lambda e: run.record(_lean(e)),
                          title=f"{ns.attack} attack")
        summary = {key: results[key] for key in SUMMARY_KEYS}
        if ns.save:
            folder = ws.run_dir(run.id) / "examples"
            for path in save_examples(folder, results, classes=dataset.classes):
                ws.add_artifact(run.id, path.name, path)
            summary["examples"] = str(folder)
        if ns.record is not None:
            summary.update(_record(ns, model, cfg, dataset, device))
        run.summary = summary
    warnings = guardrail_warnings(model, dataset, device, results["clean_acc"],
                                  eot=int(cfg.get("eot", 1)))
    return {**summary, "model": ns.model, "data": ns.data, "split": ns.split,
            "device": str(device), "run_id": run.id, "warnings": warnings,
            **skipped_files(dataset)}


def _record(ns: argparse.Namespace, model, cfg: dict[str, Any], dataset,
            device) -> dict[str, Any]:
    """The attack's steps on image ``--record-index`` written to ``--record``:
    the start and every step, so ``steps + 1`` frames for an iterative attack."""
    import torch

    from explorer.core import attacks, recording

    x, y = dataset[ns.record_index]
    atk = attacks.create(ns.attack, model, seed=ns.seed, **cfg)
    frames = recording.attack_frames(atk, x[None].to(device),
                                     torch.tensor([y], device=device),
                                     dataset.classes)
    path = recording.write_frames(ns.record, frames)
    return {"recording": str(path), "recording_frames": len(frames)}


def _lean(event):
    """The Done event without its example arrays (the store keeps scalars)."""
    from explorer.core.jobs import Done

    if isinstance(event, Done):
        return Done({k: event.results[k] for k in SUMMARY_KEYS
                     if k in event.results})
    return event


def attack_command(args: argparse.Namespace) -> int:
    ns, parser = parse(list(args.argv))
    if ns.help:
        print(_help_text(ns, parser), end="")
        return 0
    results = run_attack(args, ns)
    if ns.json:
        print_result(results)
        return 0
    print(f"{results['attack']} on {results['model']}: {results['n']} images of "
          f"{results['data']} ({results['split']})\n"
          f"  clean accuracy   {100 * results['clean_acc']:6.2f}%\n"
          f"  robust accuracy  {100 * results['robust_acc']:6.2f}%\n"
          f"  success rate     {100 * results['success_rate']:6.2f}% of the "
          "clean-correct images\n"
          f"  mean perturbation  linf {results['mean_linf']:.4g}, "
          f"l2 {results['mean_l2']:.4g}, l1 {results['mean_l1']:.4g}\n"
          f"  {results['seconds']:.1f} s ({results['images_per_second']:.0f} "
          f"images/s) — run {results['run_id']}")
    if "examples" in results:
        print(f"  examples: {results['examples']}")
    if "recording" in results:
        print(f"  recording: {results['recording']} "
              f"({results['recording_frames']} frames)")
    return 0

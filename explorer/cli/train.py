"""`explorer train`: train a model with a defense, headless and resumable.

A defense's (and an architecture's) flags depend on ``--defense`` and
``--arch``, so arguments are parsed in two passes like ``explorer attack``.
The run is recorded in the workspace (kind ``train``); its folder is the
trainer's run directory (``last.pt``, ``best.safetensors``, or ``best.pt2``
when a torch.export program is fine-tuned). ``--init MODEL`` (alias
``--init-from``) starts from a loaded model's weights instead of fresh ones;
``--freeze features`` then trains its classifier head only (linear probing)
and ``--new-head`` re-initialises that head first. ``--resume RUN_ID``
continues such a run to its planned epochs with its stored config.
``--amp {off,bf16,fp16}`` and ``--compile`` choose mixed precision and
torch.compile (:mod:`explorer.core.training.precision`); a resume keeps
the run's own unless they are given.
``--val-fraction`` of the training images (at most ``--val-max``) are held
out: the best epoch is chosen on them, and the results say so
(``selected_on``, ``val_n``, the best epoch's validation and test figures).

``torchrun --nproc-per-node N -m explorer train ...`` (or ``python -m
torch.distributed.run ...``; ``--nnodes``/``--rdzv-endpoint`` are torchrun's
own) trains one run with N processes (:mod:`explorer.core.distributed`; how
the trainer shares the work is in its module doc). Rank 0 opens the
workspace, records the run, creates its folder and prints; it sends the run
and its config to the other ranks, which train silently. ``--resume`` works
with any number of processes. SIGTERM (what torchrun and the app send to
stop a run) acts like Ctrl+C: ``last.pt`` is saved where the run stopped. A
rank that dies makes rank 0 save ``last.pt`` at the last finished step, mark
the run failed and exit 1 with the resume command.
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    CliError,
    OneLineParser,
    UsageError,
    load_data,
    naming_flag,
    skipped_files,
)
from explorer.cli.running import (
    JobInterrupted,
    RecordedRun,
    print_result,
    run_job,
)
from explorer.cli.train_output import EpochLines, best_text, pct
from explorer.cli.train_ranks import (
    SUMMARY_KEYS,
    check_processes,
    term_cancels,
    train_other,
)

DEFAULT_ARCH = "small-cnn"
TORCHRUN_NOTE = ("several processes or machines: torchrun --nproc-per-node N -m "
                 "explorer train ... (--batch-size stays the global batch)")


def _defenses_epilog() -> str:
    from explorer.core import defenses

    rows = [f"  {name:<14} {defenses.defense_class(name).title}"
            for name in defenses.names()]
    return ("defenses (--defense NAME; `explorer train --defense NAME --help` "
            "shows its flags):\n" + "\n".join(rows) + "\n\n" + TORCHRUN_NOTE)


def _common_parser() -> OneLineParser:
    from explorer.core.training.augment import MODES, PAD
    from explorer.core.training.precision import AMP_MODES
    from explorer.core.training.split import VAL_FRACTION, VAL_MAX

    p = OneLineParser(prog="explorer train", add_help=False, allow_abbrev=False,
                      description="Train a model with a defense; the defense's and "
                                  "the architecture's parameters are flags too.",
                      epilog=_defenses_epilog(),
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    p.add_argument("--resume", metavar="RUN_ID",
                   help="continue a stopped training run (other flags ignored, but "
                        "--amp and --compile)")
    p.add_argument("--defense", help="defense name (see `explorer train --help`)")
    p.add_argument("--arch", help="architecture of a fresh model (default: "
                                  "small-cnn)")
    p.add_argument("--init", "--init-from", dest="init_from", metavar="MODEL",
                   help="fine-tune: start from this model's weights instead of "
                        "fresh ones: a built-in model name (`explorer models "
                        "list`) or a model file (.safetensors, a .pt2 torch.export "
                        "program, .pt/.pth with --init-arch, ONNX, TorchScript); "
                        "it brings its own architecture, so no --arch. The best "
                        "epoch of a .pt2 is written as best.pt2")
    p.add_argument("--init-arch", metavar="ARCH",
                   help="architecture of a weights-only --init file "
                        "(.pt/.pth, or safetensors without our metadata)")
    p.add_argument("--freeze", default="none", metavar="{none,features}",
                   help="with --init: none = full fine-tuning (default); "
                        "features = linear probing: only the classifier head "
                        "trains, the rest keeps its weights and batch-norm "
                        "statistics (any --defense: attacks still go through it)")
    p.add_argument("--new-head", action="store_true",
                   help="with --init: re-initialise the classifier head (from "
                        "--seed) before training, so it is learnt from scratch")
    p.add_argument("--noilin", action="store_true",
                   help="wrap the (adversarial) defense in NoiLIn: labels flipped "
                        "at a rate that grows when validation robust accuracy "
                        "drops (Zhang et al. 2022)")
    for flag, meta in (("--noilin-rate", "initial share of flipped labels "
                        "(default 0.05)"),
                       ("--noilin-growth", "relative rate increase after a drop "
                        "in validation robust accuracy (default 0.05)"),
                       ("--noilin-rate-max", "largest share of flipped labels "
                        "(default 0.6)")):
        p.add_argument(flag, metavar="X", help=f"with --noilin: {meta}")
    p.add_argument("--data", default="fashion-mnist-mini", help="data set name")
    p.add_argument("--root", help="folder of a torchvision or image-folder set")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--lr", type=float, help="learning rate (sgd 0.1, adam 1e-3)")
    p.add_argument("--schedule", default="piecewise",
                   choices=("piecewise", "cosine", "cyclic", "constant"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", choices=MODES, default="auto",
                   help="augment the training images: crop = a random window of "
                        f"the image padded with {PAD} zero pixels per side, flip "
                        "= mirror half of them left-right (default: auto = "
                        "crop-flip for 3x32x32 sets such as CIFAR-10 and SVHN, "
                        "none otherwise; the run records what auto chose)")
    p.add_argument("--eval-eps", default="0.1",
                   help="l-inf budget of the per-epoch PGD evaluation (8/255 ok)")
    p.add_argument("--eval-steps", type=int, default=10)
    p.add_argument("--eval-n", type=int, default=500,
                   help="evaluate on the first N validation images and the first "
                        "N test images (default: 500)")
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION, metavar="F",
                   help="hold out this share of the training images (seeded "
                        f"draw; default: {VAL_FRACTION:g}) as a validation split: "
                        "the best checkpoint is the epoch of highest robust "
                        "accuracy on them, never on test images; 0 = no split, "
                        "the last epoch is kept")
    p.add_argument("--val-max", type=int, default=VAL_MAX, metavar="N",
                   help=f"hold out at most N images (default: {VAL_MAX})")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--train-images", type=int, dest="limit_train", metavar="N",
                   help="train on the first N training images only (validation "
                        "split included; 0, omitted or more than the set has: "
                        "all): how a method copes with little data")
    p.add_argument("--limit-train", type=int, dest="limit_train",
                   help=argparse.SUPPRESS)  # the older name
    p.add_argument("--amp", choices=AMP_MODES, default=None,
                   help="mixed precision of the training forward passes: off "
                        "(float32, default), bf16 (CPUs and recent GPUs), fp16 "
                        "(CUDA, with loss scaling); with --resume: switch to it")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the model with torch.compile (falls back to "
                        "uncompiled, with a log line, where it does not work); "
                        "with --resume: switch it on or off")
    p.add_argument("--json", action="store_true",
                   help="JSON lines: one per epoch; the last line holds the results")
    return p


def parse(argv: list[str]) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    from explorer.core import defenses, models
    from explorer.core.params import add_flag_group, given_values

    ns, _ = _common_parser().parse_known_args(argv)
    if ns.resume is not None:
        return _common_parser().parse_args(argv), _common_parser()
    if ns.init_from is not None and ns.arch is not None:
        raise UsageError("--init and --arch: the model to fine-tune brings "
                         "its own architecture; drop --arch")
    if ns.init_arch is not None and ns.init_from is None:
        raise UsageError("--init-arch is for a weights-only --init file; "
                         "give --init too (or --arch for a fresh model)")
    _check_fine_tune_flags(ns)
    if ns.defense is None:
        if ns.help:
            return ns, _common_parser()
        raise UsageError(f"--defense is required (choose from "
                       f"{', '.join(defenses.names())})")
    arch = ns.arch or DEFAULT_ARCH
    dparams = defenses.spec(ns.defense)
    aparams = () if ns.init_from is not None else models.spec(arch)
    parser = _common_parser()
    taken = set(vars(ns))
    dflags = add_flag_group(parser, f"parameters of {ns.defense}", dparams,
                            prefix="defense", taken=taken)
    aflags = add_flag_group(parser, f"parameters of {arch}", aparams,
                            prefix="arch", taken=taken | set(dflags))
    ns = parser.parse_args(argv)
    ns.defense_params = given_values(dflags, ns, dparams)
    ns.arch_params = given_values(aflags, ns, aparams)
    return ns, parser


def _check_fine_tune_flags(ns: argparse.Namespace) -> None:
    """--freeze's value, and --freeze features / --new-head only with --init."""
    from explorer.core.training.fine_tune import check_freeze

    with naming_flag("--freeze"):
        check_freeze(ns.freeze)
    if ns.init_from is None:
        for flag, given in ((f"--freeze {ns.freeze}", ns.freeze != "none"),
                            ("--new-head", ns.new_head)):
            if given:
                raise UsageError(f"{flag} is for fine-tuning a loaded model; "
                                 f"give --init MODEL too")


def _config(ns: argparse.Namespace):
    from explorer.core import defenses
    from explorer.core.params import Param

    for flag, value in (("--epochs", ns.epochs), ("--batch-size", ns.batch_size),
                        ("--eval-steps", ns.eval_steps), ("--eval-n", ns.eval_n)):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if ns.limit_train is not None and ns.limit_train < 0:
        raise UsageError(f"--train-images must be a number of images (0 = all), "
                         f"got {ns.limit_train}")
    if ns.lr is not None and not ns.lr > 0:
        raise UsageError(f"--lr must be positive, got {ns.lr}")
    if not 0 <= ns.val_fraction < 1:
        raise CliError(f"--val-fraction must be at least 0 and below 1, got "
                       f"{ns.val_fraction:g}")
    if ns.val_max < 1:
        raise CliError(f"--val-max must be at least 1, got {ns.val_max}")
    with naming_flag("--eval-eps"):
        eval_eps = Param("eval_eps", float, 0.1, minimum=0, maximum=1).validate(
            ns.eval_eps)
    params = defenses.create(ns.defense, **ns.defense_params).cfg
    noilin = _noilin(ns, params)
    return defenses.TrainingConfig(
        data=ns.data, root=ns.root, arch=ns.arch or DEFAULT_ARCH,
        arch_params=ns.arch_params, init_from=ns.init_from, init_arch=ns.init_arch,
        freeze=ns.freeze, new_head=ns.new_head, defense=ns.defense,
        params=params, noilin=noilin, epochs=ns.epochs,
        batch_size=ns.batch_size, optimizer=ns.optimizer, lr=ns.lr,
        schedule=ns.schedule, seed=ns.seed, augment=ns.augment, eval_eps=eval_eps,
        eval_steps=ns.eval_steps, eval_n=ns.eval_n, val_fraction=ns.val_fraction,
        val_max=ns.val_max, checkpoint_minutes=ns.checkpoint_minutes,
        limit_train=ns.limit_train or None)


def _speed(config, ns: argparse.Namespace, device):
    """``config`` with the --amp and --compile given (a resumed run keeps its
    own unless they are), checked against ``device`` before a run is
    recorded: fp16 on a CPU is a one-line error."""
    from explorer.core.params import ParamError
    from explorer.core.training.precision import check_device

    changes = {k: v for k, v in (("amp", ns.amp), ("compile", ns.compile))
               if v is not None}
    config = config.replace(**changes) if changes else config
    try:
        check_device(config.amp, device, name="--amp")
    except ParamError as exc:
        raise CliError(str(exc)) from None
    return config


NOILIN_FLAGS = (("rate", "--noilin-rate"), ("growth", "--noilin-growth"),
                ("rate_max", "--noilin-rate-max"))


def _noilin(ns: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any] | None:
    """The NoiLIn wrapper's values (None without --noilin), each bad one a
    usage error naming its flag."""
    from explorer.core import defenses
    from explorer.core.defenses.noilin import WRAPPER_PARAMS

    given = {key: getattr(ns, key_flag.lstrip("-").replace("-", "_"))
             for key, key_flag in NOILIN_FLAGS}
    if not ns.noilin:
        extra = [flag for key, flag in NOILIN_FLAGS if given[key] is not None]
        if extra:
            raise UsageError(f"{extra[0]} is a parameter of --noilin; add --noilin")
        return None
    values: dict[str, Any] = {}
    spec = {p.name: p for p in WRAPPER_PARAMS}
    for key, flag in NOILIN_FLAGS:
        if given[key] is not None:
            with naming_flag(flag):
                values[key] = spec[key].validate(given[key])
    with naming_flag("--noilin"):
        return defenses.create_wrapped(ns.defense, params, values).cfg


def _check_split(config, train_set) -> None:
    """A --val-fraction that leaves no image to train on, named before the
    run is recorded."""
    from explorer.core.defenses.run_job import limited
    from explorer.core.params import ParamError
    from explorer.core.training.split import validation_size

    n = len(limited(train_set, config.limit_train))
    try:
        validation_size(n, config.val_fraction, config.val_max)
    except ParamError as exc:
        raise CliError(str(exc).replace("val_fraction", "--val-fraction", 1)) from None


def _with_init_arch(config, info):
    """``config`` recording the architecture of the model it starts from,
    which is loaded and checked against the data set here, so a bad file is
    a one-line error before any run is recorded (and so is a model whose
    classifier head --freeze features or --new-head cannot find)."""
    from explorer.core.defenses.run_job import load_init
    from explorer.core.models import ModelError
    from explorer.core.params import ParamError
    from explorer.core.training.fine_tune import head_of

    try:
        model = load_init(config, info)
    except ModelError as exc:  # the loaders name --arch, here it is --init-arch
        raise CliError(str(exc).replace("pass --arch", "pass --init-arch")) from None
    meta = model.meta
    if config.freeze != "none" or config.new_head:
        why = (f"--freeze {config.freeze}" if config.freeze != "none"
               else "--new-head")
        try:
            head_of(model, config.init_from, why)
        except ParamError as exc:
            raise UsageError(str(exc).replace("use freeze none",
                                              "use --freeze none")) from None
    return config.replace(arch=meta.arch, arch_params=dict(meta.arch_params))


class _ResumedRun(RecordedRun):
    """An existing workspace run, marked running again."""

    def __init__(self, ws, run_id: str) -> None:
        ws.resume(run_id)
        self.ws, self.id, self.summary = ws, run_id, None


# The plan (sizes the app's progress) and the adversarial strip, as JSON
# lines for a run the app started as a subprocess.
APP_SNAPSHOTS = ("plan", "adversarial")


def run_training(args: argparse.Namespace, ns: argparse.Namespace) -> dict[str, Any]:
    """The Training page's job (``train_run``), recorded as a workspace run;
    under torchrun one rank of a run of several processes."""
    from explorer.core import distributed

    world = distributed.setup(args.device)
    distributed.silence_others(world)
    try:
        if world.main:
            return _train_main(args, ns, world)
        return train_other(args, world)
    finally:
        distributed.shutdown()


def _prepare(ws, ns: argparse.Namespace, world, device):
    """The run's config and data sets, checked; every bad value is a one-line
    error before any run is recorded."""
    from explorer.core import defenses

    if ns.resume is not None:
        record = ws.get(ns.resume)
        if record.kind != "train":
            raise CliError(f"run {ns.resume} is a {record.kind} run, not training")
        config = defenses.TrainingConfig.from_json(record.config)
    else:
        config = _config(ns)
    config = _speed(config, ns, device)
    check_processes(config, world)
    # Loaded here so unreadable image files are named before the run.
    train_set = load_data(config.data, "train", root=config.root)
    test_set = load_data(config.data, "test", root=config.root)
    if ns.resume is None:  # the run records what "auto" means for this set
        config = config.resolved(tuple(train_set.info.shape))
        _check_split(config, train_set)
        if config.init_from is not None:
            config = _with_init_arch(config, train_set.info)
    return config, train_set, test_set


def _train_main(args: argparse.Namespace, ns: argparse.Namespace,
                world) -> dict[str, Any]:
    """Rank 0 (or the only process): record, print, write."""
    from explorer.core import device as devices
    from explorer.core import distributed
    from explorer.core.defenses.registry import selection_key
    from explorer.core.defenses.run_job import run_title, train_run
    from explorer.core.jobs import CancelToken
    from explorer.store import Workspace

    distributed.share_threads(world, devices.configure_threads(leave_for_ui=0))
    device = devices.pick(distributed.device_for(world, args.device))
    with Workspace.open(args.workspace) as ws:
        try:
            config, train_set, test_set = _prepare(ws, ns, world, device)
            if ns.resume is not None:
                run = _ResumedRun(ws, ns.resume)
            else:
                run = RecordedRun(ws, "train", config.to_json(),
                                  title=run_title(config), device=str(device))
        except Exception as exc:
            world.broadcast({"error": str(exc)})  # the others stop quietly
            raise
        run_dir = ws.run_dir(run.id)
        world.broadcast({"config": config.to_json(), "run_dir": str(run_dir),
                         "run_id": run.id, "resume": ns.resume is not None})
        token = CancelToken()
        with run:
            events = train_run(config, run_dir=run_dir, train_set=train_set,
                               test_set=test_set, device=device,
                               resume=ns.resume is not None, token=token,
                               world=world)
            try:
                with term_cancels(token):
                    results = run_job(events, token, as_json=ns.json,
                                      recorder=run.record,
                                      title=f"training {config.defense}",
                                      run_id=run.id, snapshots=APP_SNAPSHOTS,
                                      on_event=EpochLines(
                                          ns.json, config.val_fraction > 0,
                                          selection_key(config.defense)))
            except JobInterrupted as exc:
                raise JobInterrupted(f"{exc}; resume with explorer train --resume "
                                     f"{run.id}") from None
            except distributed.PeerLost as exc:
                raise CliError(f"{exc}; resume with explorer train --resume "
                               f"{run.id}") from None
            run.summary = {k: results.get(k) for k in SUMMARY_KEYS}
    return {"run_id": run.id, **run.summary, "defense": config.defense,
            "params": config.params, "noilin": config.noilin,
            "freeze": config.freeze, "device": str(device),
            **skipped_files(train_set, test_set)}


def train_command(args: argparse.Namespace) -> int:
    ns, parser = parse(list(args.argv))
    if ns.help:
        print(parser.format_help(), end="")
        return 0
    results = run_training(args, ns)
    if ns.json:
        print_result(results)
        return 0
    print(f"{results['defense']}: {results['epochs']} epochs, {best_text(results)}"
          f"; last epoch test clean {pct(results['clean_acc'])}, robust "
          f"{pct(results['robust_acc'])}, {results['seconds']:.1f} s — run "
          f"{results['run_id']}")
    return 0

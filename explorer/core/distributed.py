"""Several processes, one run: torch.distributed as torchrun sets it up.

``torchrun --nproc-per-node N -m explorer train ...`` starts N copies of the
command with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
(``MASTER_ADDR``/``MASTER_PORT``) in their environment. :func:`setup` reads
them once: with no ``WORLD_SIZE`` (a plain ``explorer ...``) it returns the
one-process :data:`SINGLE` and touches nothing. Otherwise it joins the
process group (NCCL when every rank has its own GPU, gloo on CPUs) and
answers which device this rank uses (``cuda:LOCAL_RANK``).

Everything here is a no-op for one process, so callers write one code path:
``world.all_sum(t)``, ``world.shard(n)``, ``world.gather(obj)``,
``world.broadcast(obj)``. Only rank 0 (``world.main``) writes files and
prints; :func:`silence_others` makes that so for stdout.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
# how long a rank waits in a collective for the others before it fails;
# a dead peer usually fails it at once (its sockets close)
TIMEOUT_SECONDS = float(os.environ.get("EXPLORER_DIST_TIMEOUT", "300"))


class DistributedError(RuntimeError):
    """The process group cannot be joined, or a rank stopped mid-run."""


class PeerLost(DistributedError):
    """Another rank of a training run stopped; this rank saved what it could
    (the message says where the checkpoint stands)."""


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: one process, no process group

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, records and output."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1 and self.backend is not None

    def shard(self, n: int) -> range:
        """This rank's contiguous share of ``n`` items (ranks 0.. get the
        larger shares when ``n`` does not divide); all of them for one
        process."""
        base, extra = divmod(n, self.size)
        start = self.rank * base + min(self.rank, extra)
        return range(start, start + base + (self.rank < extra))

    def batch_share(self, idx: Tensor) -> Tensor:
        """This rank's share of one global batch of indices: every
        ``size``-th item from position ``rank``. A batch smaller than the
        world wraps around, so no rank is left without an item."""
        if not self.distributed:
            return idx
        if len(idx) < self.size:
            idx = idx.repeat(-(-self.size // max(len(idx), 1)))
        return idx[self.rank::self.size]

    def all_sum(self, values: Tensor) -> Tensor:
        """The element-wise sum of ``values`` over the ranks (a copy on the
        CPU in float64; the input is not changed)."""
        out = values.detach().to("cpu", torch.float64).clone()
        if self.distributed:
            out = out.to(self._comm_device())
            _collective(lambda: torch.distributed.all_reduce(out))
            out = out.cpu()
        return out

    def weighted_mean(self, scores: dict[str, float], weight: int) -> dict[str, float]:
        """Each score averaged over the ranks, rank ``r``'s counted ``weight``
        times (its number of images): accuracies measured on shards become
        the accuracy on the whole set. The keys must be the same on every
        rank."""
        if not self.distributed:
            return dict(scores)
        keys = sorted(scores)
        values = torch.tensor([scores[k] * weight for k in keys] + [weight],
                              dtype=torch.float64)
        total = self.all_sum(values)
        n = float(total[-1])
        return {k: float(total[i]) / n if n else float("nan")
                for i, k in enumerate(keys)}

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order (on every rank); ``[obj]`` for
        one process. For per-image results: small, picklable values."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        _collective(lambda: torch.distributed.all_gather_object(out, obj))
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (e.g. the run folder it created)."""
        if not self.distributed:
            return obj
        box = [obj if self.main else None]
        _collective(lambda: torch.distributed.broadcast_object_list(box, src=0))
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            _collective(torch.distributed.barrier)

    def _comm_device(self) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


SINGLE = World()
_current: World = SINGLE


def launched() -> bool:
    """Whether torchrun (or another launcher) started this process as one
    of several: ``WORLD_SIZE`` is set and above 1."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def setup(device: str | None = None) -> World:
    """Join the process group torchrun described (once; later calls return
    the same World). ``device`` is the user's ``--device``: "cpu" forces
    gloo; otherwise every rank takes ``cuda:LOCAL_RANK`` when CUDA has a GPU
    for it, else the CPU. A DistributedError names a bad environment."""
    global _current
    if _current.distributed or not launched():
        return _current
    try:
        rank, size, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE",
                                                         "LOCAL_RANK"))
    except KeyError as exc:
        raise DistributedError(f"WORLD_SIZE is set but {exc.args[0]} is not: start "
                               "the command with torchrun") from None
    except ValueError:
        values = ", ".join(f"{k}={os.environ.get(k)!r}" for k in ENV_KEYS)
        raise DistributedError(f"torchrun's environment is not whole numbers: "
                               f"{values}") from None
    try:  # NCCL only when every rank on this machine has a GPU of its own:
        # the backend must be the same on all ranks
        local_size = int(os.environ.get("LOCAL_WORLD_SIZE", local + 1))
    except ValueError:
        local_size = local + 1
    use_cuda = (device != "cpu" and torch.cuda.is_available()
                and torch.cuda.device_count() >= max(local_size, local + 1))
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
    try:
        torch.distributed.init_process_group(
            backend, rank=rank, world_size=size,
            timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(f"rank {rank} of {size} could not join the process "
                               f"group ({backend}): {reason(exc)}") from None
    _current = World(rank, size, local, backend)
    return _current


def current() -> World:
    """The World :func:`setup` joined, or :data:`SINGLE`."""
    return _current


def device_for(world: World, device: str | None) -> str | None:
    """The device this rank trains or attacks on: its own GPU under NCCL,
    otherwise what the user asked for."""
    if world.backend == "nccl":
        return f"cuda:{world.local_rank}"
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a command)."""
    global _current
    if _current.distributed and torch.distributed.is_initialized():
        try:
            torch.distributed.destroy_process_group()
        except (RuntimeError, ValueError):  # a peer already gone
            pass
    _current = SINGLE


def share_threads(world: World, threads: int) -> int:
    """Torch's intra-op threads for this rank: ``threads`` (the machine's
    share for one process) divided among the ranks on this machine
    (torchrun's ``LOCAL_WORLD_SIZE``); unchanged for one process or when
    ``EXPLORER_THREADS`` fixes it."""
    if not world.distributed or os.environ.get("EXPLORER_THREADS"):
        return threads
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world.size)))
    except ValueError:
        local = world.size
    n = max(1, threads // local)
    torch.set_num_threads(n)
    return n


def silence_others(world: World) -> None:
    """Send stdout of every rank but 0 to nowhere: one process prints."""
    if world.distributed and not world.main:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives with the process


def check_split(world: World, method: str, sync: str, eval_n: int, n_test: int,
                n_val: int) -> None:
    """A ParamError when training ``method`` (whose defense ``sync`` mode
    this is) or its evaluation cannot be split over ``world.size``
    processes."""
    from explorer.core.params import ParamError

    if sync not in SYNC_MODES:
        raise ParamError(f"{method} cannot train with several processes: {sync}")
    smallest = min(eval_n, n_test, *([n_val] if n_val else []))
    if smallest < world.size:
        raise ParamError(f"eval_n: each of the {world.size} processes evaluates its "
                         f"share of the images, so at least {world.size} are "
                         f"needed, got {smallest}")


def lost_peer(exc: BaseException, world: World) -> str | None:
    """What to say when ``exc`` is a collective failing because another rank
    went away (a DistributedError, or the RuntimeError gloo or NCCL raise
    inside DDP's backward); None for any other error."""
    if not world.distributed:
        return None
    if isinstance(exc, DistributedError):
        return str(exc)
    text = str(exc).lower()
    if not (isinstance(exc, torch.distributed.DistBackendError)
            or any(word in text for word in ("gloo", "nccl", "connection", "peer"))):
        return None
    return (f"rank {world.rank} of {world.size}: another process of the run "
            f"stopped or cannot be reached ({reason(exc)})")


def concat_ranked(parts: Sequence[Sequence[Any]]) -> list[Any]:
    """Per-rank lists (from :meth:`World.gather` of contiguous shards)
    joined in rank order: the whole set's list."""
    return [item for part in parts for item in part]


def reason(exc: BaseException) -> str:
    """The gist of a (C++) error text: its first line without a leading
    ``[source:line]`` and cut after the first sentence."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    line = text[0]
    if line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    line = line.split(". ", 1)[0].rstrip(".")
    return line if len(line) <= 160 else line[:157] + "..."


def _collective(call) -> None:
    """A collective; a peer that died turns into a DistributedError that
    says so (gloo and NCCL raise RuntimeErrors with long C++ texts)."""
    try:
        call()
    except RuntimeError as exc:
        world = _current
        raise DistributedError(
            f"rank {world.rank} of {world.size}: another process of the run "
            f"stopped or cannot be reached ({reason(exc)})") from None


# -- training: one model, the same on every rank ------------------------------

SYNC_MODES = ("ddp", "ddp-unused", "average")


class TrainingDDP(torch.nn.parallel.DistributedDataParallel):
    """DistributedDataParallel for the training forward passes only.

    A defense's loss runs attacks on the model it trains: they freeze it
    (eval mode, no weight gradients) and backpropagate to the input alone.
    Through DDP such a forward would arm the gradient reducer, which then
    waits for a weight gradient that never comes and fails at the next
    forward. So a forward goes through DDP only in train mode with gradients
    on and some weight requiring one; every other call (attacks, no_grad
    passes) is the bare module's.
    """

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if (torch.is_grad_enabled() and self.module.training
                and any(p.requires_grad for p in self.module.parameters())):
            return super().forward(*args, **kwargs)
        return self.module(*args, **kwargs)


class Replicas:
    """Keeps a trained module equal on every rank, as a defense allows.

    ``mode`` (a defense's ``sync``): ``"ddp"`` wraps the module in
    :class:`TrainingDDP` (gradients averaged during backward, buffers sent
    from rank 0 at each training forward); ``"ddp-unused"`` the same with
    ``find_unused_parameters`` (a step may leave some weights without a
    gradient, e.g. one expert per example); ``"average"`` leaves the module
    bare and :meth:`after_backward` averages the gradients and sends rank 0's
    buffers itself: for losses that call other methods of the model than
    ``forward`` or take gradients with ``torch.autograd.grad``, which DDP's
    reducer does not see. For one process ``trained`` is the module itself
    and everything is a no-op.
    """

    def __init__(self, module: torch.nn.Module, world: World, mode: str,
                 device: torch.device) -> None:
        if mode not in SYNC_MODES:
            raise ValueError(f"sync mode must be one of {', '.join(SYNC_MODES)}, "
                             f"got {mode!r}")
        self.module, self.world, self.mode = module, world, mode
        self.trained: torch.nn.Module = module
        if not world.distributed:
            return
        if mode == "average":
            self.broadcast_(list(module.parameters()) + list(module.buffers()))
        else:
            ids = None
            if device.type == "cuda":
                ids = [device.index if device.index is not None
                       else torch.cuda.current_device()]
            self.trained = TrainingDDP(module, device_ids=ids,
                                       find_unused_parameters=mode == "ddp-unused")

    def after_backward(self) -> None:
        """Average this step's gradients over the ranks (mode ``average``)."""
        if not self.world.distributed or self.mode != "average":
            return
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p)
                 for p in params]
        had = torch.tensor([p.grad is not None for p in params],
                           dtype=torch.float32, device=params[0].device)
        flat = torch.cat([g.detach().reshape(-1).float() for g in grads] + [had])
        _collective(lambda: torch.distributed.all_reduce(flat))
        flat /= self.world.size
        start = 0
        for p, g in zip(params, grads, strict=True):
            part = flat[start:start + g.numel()].view_as(g)
            start += g.numel()
            if p.grad is None:
                p.grad = part.to(p.dtype).clone()
            else:
                p.grad.copy_(part)
        for p, count in zip(params, flat[start:].tolist(), strict=True):
            if count == 0:  # no rank computed one: the optimizer skips it
                p.grad = None
        self.broadcast_(list(self.module.buffers()))

    def broadcast_(self, tensors: list[Tensor]) -> None:
        """Rank 0's values of ``tensors`` on every rank, in place."""
        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            flat = torch.cat([t.detach().reshape(-1) for t in group])
            _collective(lambda flat=flat: torch.distributed.broadcast(flat, src=0))
            start = 0
            with torch.no_grad():
                for t in group:
                    t.copy_(flat[start:start + t.numel()].view_as(t))
                    start += t.numel()

    def any_true(self, flag: bool) -> bool:
        """Whether ``flag`` is set on some rank (one small all-reduce): how
        the ranks agree to stop at the same batch."""
        if not self.world.distributed:
            return flag
        return bool(self.world.all_sum(torch.tensor([float(flag)]))[0] > 0)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """A seed for rank ``rank``'s random draws from ``step`` on: rank 0's
    stream is the run's own (``seed``), every other rank's differs, so the
    ranks do not draw the same random starts for different images."""
    if rank == 0:
        return seed
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % (2 ** 63 - 1)

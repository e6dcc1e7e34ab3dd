"""Distributed runs on PyTorch's own engine: ``torchrun ... -m serkit run R.yaml``.

Every rank runs the whole ``serkit run``; this module is the little each of them needs to
cooperate:

- :func:`init_distributed` reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins the process group: ``gloo``
  on CPU, ``nccl`` on CUDA (each rank on ``cuda:<LOCAL_RANK>``). Without those variables
  (a plain ``serkit run``) it returns the single-process :data:`SINGLE` context and
  nothing is initialised, so the single-process code path is unchanged.
- :class:`DistContext` answers "who am I" (:attr:`~DistContext.rank`,
  :attr:`~DistContext.is_main`) and wraps the few collectives serkit uses (barrier,
  broadcast and gather of small Python objects, sums of floats). On a single process
  every collective is the identity, so callers never branch on ``enabled`` for them.
- :func:`launch` is ``serkit run --nproc N``: it starts ``python -m torch.distributed.run
  --standalone --nproc-per-node N -m serkit run ...`` (the same thing a user would type)
  and returns its exit code.

What runs where is described in ``docs/scaling.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from serkit.errors import SerkitError

__all__ = [
    "SINGLE",
    "DistContext",
    "cleanup",
    "distributed_session",
    "env_world_size",
    "init_distributed",
    "launch",
    "run_device",
]

#: Seconds a rank waits in a collective (e.g. for rank 0's extraction) before failing;
#: override with the ``SERKIT_DIST_TIMEOUT`` environment variable.
DEFAULT_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class DistContext:
    """One process's place in a (possibly single-process) run.

    Attributes:
        rank: global rank, ``0 .. world_size - 1``.
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        backend: ``"gloo"`` / ``"nccl"``, or ``None`` when not distributed.
        owns_group: whether :func:`init_distributed` created the process group (and
            :func:`cleanup` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only rank that writes the run folder and prints."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        """``(rank, world_size)``."""
        return self.rank, self.world_size

    # -- collectives (identity on a single process) ---------------------------------
    def _collective(self, what: str, fn: Any) -> Any:
        """Run ``fn()``; a rank that stopped (its error is printed by that rank) or a timeout
        becomes one short :class:`SerkitError` here instead of a backend traceback."""
        try:
            return fn()
        except RuntimeError as err:  # DistBackendError, DistNetworkError, gloo/nccl errors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SerkitError(
                f"rank {self.rank}/{self.world_size}: {what} failed, another rank probably stopped "
                f"(see its error) or the wait exceeded SERKIT_DIST_TIMEOUT ({first[:200]})"
            ) from err

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if not self.enabled:
            return
        import torch.distributed as dist

        if self.backend == "nccl":
            self._collective("barrier", lambda: dist.barrier(device_ids=[self.local_rank]))
        else:
            self._collective("barrier", dist.barrier)

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        """``obj`` of rank ``src`` on every rank (pickled over the process group only)."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj if self.rank == src else None]
        self._collective("broadcast", lambda: dist.broadcast_object_list(box, src=src))
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        self._collective("all_gather", lambda: dist.all_gather_object(out, obj))
        return out

    def sum_floats(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks of equally long float lists (float64)."""
        if not self.enabled:
            return [float(v) for v in values]
        import torch
        import torch.distributed as dist

        device = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
        self._collective("all_reduce", lambda: dist.all_reduce(t, op=dist.ReduceOp.SUM))
        return [float(v) for v in t.cpu()]

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the block on rank 0 first, then on the other ranks (e.g. fill a cache once).

        If rank 0 fails inside the block, it never reaches the barrier; torchrun then stops
        the waiting ranks.
        """
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


#: The context of a plain single-process run.
SINGLE = DistContext()


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise SerkitError(f"environment WORLD_SIZE={raw!r}: expected an integer (set by torchrun)") from None


def _env_int(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None:
        raise SerkitError(
            f"environment: WORLD_SIZE is set but {name} is not; start distributed runs with "
            "torchrun (or serkit run --nproc N)"
        )
    try:
        return int(raw)
    except ValueError:
        raise SerkitError(f"environment {name}={raw!r}: expected an integer (set by torchrun)") from None


def _timeout() -> timedelta:
    raw = os.environ.get("SERKIT_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        raise SerkitError(f"environment SERKIT_DIST_TIMEOUT={raw!r}: expected seconds (a number)") from None
    if seconds <= 0:
        raise SerkitError(f"environment SERKIT_DIST_TIMEOUT={raw!r}: expected a positive number of seconds")
    return timedelta(seconds=seconds)


def init_distributed(device: str = "auto") -> DistContext:
    """Join torchrun's process group, or return :data:`SINGLE` outside torchrun.

    Args:
        device: the recipe's ``device``; ``cuda`` (or ``auto`` with a GPU) selects the
            ``nccl`` backend and ``cuda:<LOCAL_RANK>``, anything else ``gloo``.

    Raises:
        SerkitError: torchrun's variables are incomplete or malformed, or the recipe asks
            for a device this backend cannot serve (``mps`` with several processes).
    """
    world = env_world_size()
    if world <= 1:
        return SINGLE
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world:
        raise SerkitError(f"environment RANK={rank}: expected 0..{world - 1} (WORLD_SIZE={world})")
    import torch
    import torch.distributed as dist

    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if device.startswith("mps"):
        raise SerkitError("device: 'mps' cannot be used by several processes; use device: cpu with torchrun")
    backend = "nccl" if use_cuda else "gloo"
    if dist.is_initialized():  # a caller (or a test) set the group up already
        return DistContext(rank, world, local_rank, dist.get_backend(), owns_group=False)
    if use_cuda:
        if not torch.cuda.is_available():
            raise SerkitError(f"device: {device!r} requested but CUDA is not available here; use device: cpu")
        check_gpus(_env_int("LOCAL_WORLD_SIZE") if os.environ.get("LOCAL_WORLD_SIZE") else local_rank + 1, device)
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, timeout=_timeout())
    return DistContext(rank, world, local_rank, backend, owns_group=True)


def check_gpus(nproc: int, device: str) -> None:
    """Processes that train on CUDA need one GPU each on this machine.

    Raises:
        SerkitError: ``device`` is CUDA (or ``auto`` with a GPU) and fewer than ``nproc``
            GPUs are visible; the message names both numbers and the ways out.
    """
    import torch

    if not (device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())):
        return
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if nproc > visible:
        hint = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f" (CUDA_VISIBLE_DEVICES={hint})" if hint is not None else ""
        raise SerkitError(
            f"--nproc {nproc}: one process per GPU needs {nproc} GPUs, but this machine shows {visible}{shown}; "
            f"use --nproc {max(visible, 1)}, or device: cpu to run {nproc} processes on the CPU (gloo)"
        )


def run_device(ctx: DistContext, device: Any) -> Any:
    """The device this rank trains on: ``cuda:<local_rank>`` under nccl, else ``device``."""
    if ctx.backend == "nccl":
        import torch

        return torch.device("cuda", ctx.local_rank)
    return device


def cleanup(ctx: DistContext, *, synchronize: bool = True) -> None:
    """Leave the process group if :func:`init_distributed` created it.

    With ``synchronize`` (a rank that finished normally), the ranks first meet at a
    barrier, so no rank tears down while another is still in a collective. Garbage from
    training (e.g. a DistributedDataParallel wrapper kept alive by a reference cycle) is
    collected before the group is destroyed: gloo objects left for the interpreter's
    shutdown can abort the process ("terminate called without an active exception", seen
    on about one run in ten before this was done). After an error, pass
    ``synchronize=False``: the other ranks may never reach the barrier.
    """
    if not ctx.owns_group:
        return
    import gc

    import torch.distributed as dist

    if not dist.is_initialized():
        return
    gc.collect()
    if synchronize:
        ctx.barrier()
    dist.destroy_process_group()
    gc.collect()


@contextmanager
def distributed_session(device: str = "auto") -> Iterator[DistContext]:
    """``with distributed_session(recipe.device) as ctx:`` init on entry, cleanup on exit
    (synchronised with the other ranks only when the block finished without an error)."""
    ctx = init_distributed(device)
    try:
        yield ctx
    except BaseException:
        cleanup(ctx, synchronize=False)
        raise
    cleanup(ctx)


def launch(
    nproc: int, serkit_args: Sequence[str], *, env: dict[str, str] | None = None, device: str | None = None
) -> int:
    """Run ``serkit SERKIT_ARGS`` in ``nproc`` processes on this machine; returns the exit code.

    Equivalent to ``python -m torch.distributed.run --standalone --nproc-per-node NPROC -m
    serkit SERKIT_ARGS`` (``--standalone``: a private rendezvous on a free local port, so
    several launches can share a machine).

    ``device`` (the recipe's) is checked first: on CUDA every process needs its own GPU
    (:func:`check_gpus`).

    Raises:
        SerkitError: ``nproc < 1``, too few GPUs, or this process already is a rank of a
            distributed run.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise SerkitError(f"--nproc: expected a positive number of processes; got {nproc!r}")
    if device is not None:
        check_gpus(nproc, device)
    if env_world_size() > 1:
        raise SerkitError("--nproc: this process already runs under torchrun (WORLD_SIZE is set); drop --nproc")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "serkit",
        *serkit_args,
    ]
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("OMP_NUM_THREADS", "1")  # what torchrun would set, without its warning
    return subprocess.call(cmd, env=full_env)

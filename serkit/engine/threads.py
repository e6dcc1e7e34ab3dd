"""Torch threads that fit the machine, and runs that share it.

PyTorch starts one intra-op thread per core it sees. Two runs on a 2-core machine then
run four busy OpenMP threads on two cores, and each waits for the other's threads to
yield: measured 3.75x slower per run than a lone run (``benchmarks/concurrent_runs.py``),
and 20-100x with three runs.

:func:`choose_threads` takes, in this order: the recipe's ``threads`` (an int), the
``OMP_NUM_THREADS`` the user set, ``SLURM_CPUS_PER_TASK``, and the CPUs this process may
use (``os.sched_getaffinity``). Only in the last two cases (``threads: auto`` with nothing
said) does serkit share: the CPUs are divided by the number of ``serkit run`` processes
alive on this host, which register in ``<serkit cache>/active-runs/`` while they train
(:class:`ActiveRuns`). :meth:`ThreadPlan.refresh` recounts at every epoch, so a run gets
its cores back when the others finish.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ActiveRuns", "ThreadPlan", "available_cpus", "choose_threads"]


def available_cpus() -> tuple[int, str]:
    """CPUs this process may use and where that number came from."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm), "SLURM_CPUS_PER_TASK"
    try:
        return max(1, len(os.sched_getaffinity(0))), "CPU affinity"
    except (AttributeError, OSError):  # macOS / Windows
        return max(1, os.cpu_count() or 1), "os.cpu_count()"


def _omp_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass
class ThreadPlan:
    """How many intra-op threads this run uses, and why.

    Attributes:
        threads: the number chosen now.
        source: ``"recipe"``, ``"OMP_NUM_THREADS"``, or the CPU count's source.
        cpus: CPUs available to the process (before sharing).
        shared: True when the number follows the other runs on this host.
        runs: live serkit runs counted at the last choice (this one included).
    """

    threads: int
    source: str
    cpus: int
    shared: bool
    runs: int = 1
    active: ActiveRuns | None = None

    def apply(self) -> None:
        """Set torch's intra-op thread count to :attr:`threads`."""
        import torch

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def refresh(self) -> None:
        """Recount the runs sharing the host (shared plans only) and apply the new number."""
        if self.shared and self.active is not None:
            self.runs = self.active.count()
            self.threads = max(1, self.cpus // self.runs)
        self.apply()

    def as_dict(self) -> dict[str, Any]:
        """What ``environment.json`` records under ``threads``."""
        return {
            "threads": self.threads,
            "source": self.source,
            "cpus": self.cpus,
            "shared": self.shared,
            "runs_on_host": self.runs,
        }


def choose_threads(spec: int | str = "auto", active: ActiveRuns | None = None) -> ThreadPlan:
    """The thread plan for a recipe's ``threads`` value (an int or ``"auto"``)."""
    if isinstance(spec, int):
        return ThreadPlan(spec, "recipe", spec, shared=False)
    cpus, source = available_cpus()
    omp = _omp_threads()
    if omp is not None:
        return ThreadPlan(omp, "OMP_NUM_THREADS", cpus, shared=False)
    runs = active.count() if active is not None else 1
    return ThreadPlan(max(1, cpus // runs), source, cpus, shared=True, runs=runs, active=active)


class ActiveRuns:
    """This process's entry in ``root`` while it trains; counts the live entries of this host.

    One empty file per process, ``<hostname>-<pid>``; entries whose process is gone
    (killed runs) are removed when counted. Use as a context manager.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.host = socket.gethostname()
        self.mine = self.root / f"{self.host}-{os.getpid()}"

    def __enter__(self) -> ActiveRuns:
        with contextlib.suppress(OSError):  # a read-only cache: no sharing, nothing breaks
            self.root.mkdir(parents=True, exist_ok=True)
            self.mine.touch()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.mine.unlink()

    def count(self) -> int:
        """Live serkit runs on this host, this one included (at least 1)."""
        live = 1
        try:
            entries = list(self.root.glob(f"{self.host}-*"))
        except OSError:
            return 1
        for path in entries:
            if path == self.mine:
                continue
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and _alive(int(pid)):
                live += 1
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return live


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True

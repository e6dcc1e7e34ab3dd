"""Torch threads: the user's choice first, else the CPUs shared among the runs on the host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serkit.engine.threads import ActiveRuns, available_cpus, choose_threads


@pytest.fixture(autouse=True)
def _no_thread_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)


def test_the_recipe_wins_then_omp_num_threads_then_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")
    plan = choose_threads(5)
    assert (plan.threads, plan.source, plan.shared) == (5, "recipe", False)
    plan = choose_threads("auto")
    assert (plan.threads, plan.source, plan.cpus, plan.shared) == (3, "OMP_NUM_THREADS", 6, False)
    monkeypatch.delenv("OMP_NUM_THREADS")
    plan = choose_threads("auto")
    assert (plan.threads, plan.source, plan.shared) == (6, "SLURM_CPUS_PER_TASK", True)


def test_without_settings_the_affinity_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert available_cpus() == (4, "CPU affinity")
    assert choose_threads("auto").threads == 4


def test_runs_on_one_host_share_the_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with ActiveRuns(tmp_path) as active:
            (tmp_path / f"{active.host}-{other.pid}").touch()  # a live run
            (tmp_path / f"{active.host}-999999999").touch()  # a run killed long ago
            (tmp_path / "elsewhere-1").touch()  # another host's run (shared cache)
            plan = choose_threads("auto", active)
            assert (plan.threads, plan.runs) == (2, 2)
            assert not (tmp_path / f"{active.host}-999999999").exists()  # stale entries are removed
            other.kill()
            other.wait()
            plan.refresh()
            assert (plan.threads, plan.runs) == (4, 1)  # the other run ended: the cores come back
            assert plan.as_dict() == {
                "threads": 4,
                "source": "SLURM_CPUS_PER_TASK",
                "cpus": 4,
                "shared": True,
                "runs_on_host": 1,
            }
        assert not active.mine.exists()
    finally:
        other.kill()


def test_a_read_only_registry_just_counts_one(tmp_path: Path) -> None:
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    with ActiveRuns(target / "active") as active:
        assert active.count() == 1

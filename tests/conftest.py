"""Shared test setup: a private cache, offline hubs, fresh plugin state per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# One math thread per process: the suite's tiny models are faster single-threaded, and
# OpenMP spin-waiting makes 2-thread LSTMs 10x slower whenever the 2 cores are shared.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder shared by the whole session (synthetic corpora, features)."""
    return tmp_path_factory.mktemp("serkit-cache")


@pytest.fixture(autouse=True)
def _isolated(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from serkit.plugins import reset_plugins

    monkeypatch.setenv("SERKIT_CACHE", str(session_cache))
    # third-party plugins installed next to serkit must not change the core tests' outcomes;
    # the plugin-loading tests turn autoload back on explicitly
    monkeypatch.setenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugins()
    yield
    reset_plugins()

"""pytest plugin (entry point ``pytest11``): fixtures for serkit and its plugins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def serkit_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private feature/synthetic-data cache folder (``SERKIT_CACHE``) for one test."""
    cache = tmp_path / "serkit-cache"
    monkeypatch.setenv("SERKIT_CACHE", str(cache))
    yield cache


@pytest.fixture
def serkit_isolated(serkit_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One test isolated from the machine's serkit state; yields its private cache folder.

    A private ``SERKIT_CACHE`` (:func:`serkit_cache`), no third-party plugin autoloaded
    (``SERKIT_DISABLE_PLUGIN_AUTOLOAD=1``: the test loads what it names) and a fresh
    process-wide plugin manager before and after the test. A plugin's ``conftest.py``
    makes it autouse::

        @pytest.fixture(autouse=True)
        def _isolated(serkit_isolated): ...
    """
    from serkit.plugins import reset_plugins

    monkeypatch.setenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugins()
    yield serkit_cache
    reset_plugins()

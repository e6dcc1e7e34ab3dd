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

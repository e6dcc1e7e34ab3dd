"""Test setup of serkit-plugin-byol: one math thread, no other plugins autoloaded."""

from __future__ import annotations

import pytest
from serkit.testing.plugins import one_math_thread

one_math_thread()


@pytest.fixture(autouse=True)
def _isolated(serkit_isolated: object) -> None:
    """A private SERKIT_CACHE, no plugin autoload and fresh plugin state (serkit's pytest plugin)."""

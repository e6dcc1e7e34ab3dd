"""Test setup of serkit-plugin-opensmile: one math thread, no other plugins autoloaded."""

from __future__ import annotations

import os

import pytest

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from serkit.plugins import reset_plugins

    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path / "serkit-cache"))
    monkeypatch.setenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugins()
    yield
    reset_plugins()

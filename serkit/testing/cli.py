"""Run the ``serkit`` command line in-process from tests."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["run_cli"]


def run_cli(args: Sequence[str]) -> int:
    """Run ``serkit ARGS`` in this process and return its exit code (0 on success)."""
    from serkit.cli.main import main

    try:
        main(list(args))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0

"""What several ``serkit`` commands share (kept apart from :mod:`serkit.cli.main`, which imports the commands)."""

from __future__ import annotations

import click

__all__ = ["plugin_warnings"]


def plugin_warnings() -> None:
    """Print every plugin that failed to load as one ``warning: ...`` line on stderr."""
    from serkit.plugins import get_plugin_manager

    for err in get_plugin_manager().errors:
        click.secho(f"warning: {err}", fg="yellow", err=True)

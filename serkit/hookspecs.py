"""Every hook a serkit plugin can implement.

A plugin is a module exposed under the entry-point group ``serkit.plugins``::

    [project.entry-points."serkit.plugins"]
    urdu = "serkit_plugin_urdu.plugin"

and implements some of the hooks below with the :data:`serkit.hookimpl` marker. Load
order: serkit's built-ins first (they are a plugin like any other, entry point
``builtin``), then every other entry point in name order. ``SERKIT_DISABLE_PLUGIN_AUTOLOAD=1``
loads only the built-ins; ``serkit --no-plugin NAME`` skips one plugin (entry-point or
distribution name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from serkit.registry import Registry

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("serkit")
hookimpl = pluggy.HookimplMarker("serkit")


@hookspec
def serkit_register_components(registry: Registry) -> None:
    """Add component classes to the registry.

    Call ``registry.register(cls)`` for each dataset, extractor, encoder, fusion, head,
    loss or optimizer class the plugin provides. Registering a name another plugin
    already owns is an error (a :class:`~serkit.errors.PluginError` naming both
    plugins); the plugin's other components stay usable. Import heavy libraries inside
    the components, not at plugin import, so that ``serkit --help`` stays fast.
    """


@hookspec
def serkit_add_cli_commands(cli: click.Group) -> None:
    """Add ``click`` commands to the ``serkit`` command line (``cli.add_command(cmd)``)."""


@hookspec
def serkit_label_aliases() -> dict[str, str]:
    """Return extra ``{corpus label: canonical label}`` aliases (keys compared lower-case).

    Used by :func:`serkit.data.labels.canonical_label`; a plugin for a corpus whose
    labels are in another language maps them here (e.g. ``{"ghussa": "angry"}``).
    """


@hookspec
def serkit_on_run_start(run_dir: str, recipe: dict[str, Any]) -> None:
    """Called once when ``serkit run`` starts, after the run folder exists.

    ``recipe`` is the resolved recipe (every default filled in, as in ``recipe.yaml``).
    With :func:`serkit_on_epoch_end` and :func:`serkit_on_run_end` this is how experiment
    trackers plug in: serkit's built-in TensorBoard and MLflow loggers
    (:mod:`serkit.builtin.loggers`, switched by the recipe's ``logging`` section) use these
    three hooks, and a third-party plugin adds another tracker (W&B, Neptune...) the same
    way, keeping its state per ``run_dir``. Raising a
    :class:`~serkit.errors.SerkitError` here stops the run before training.
    """


@hookspec
def serkit_on_epoch_end(
    run_dir: str, repeat: int, fold: int, epoch: int, metrics: dict[str, float]
) -> None:
    """Called after each training epoch with that epoch's metrics.

    ``metrics`` has ``epoch``, ``train_loss`` and, per domain ``d``, ``val_ua/d``,
    ``val_wa/d`` and ``val_loss/d``; the same rows end up in ``runs/r<repeat>-f<fold>.json``
    (``history``). Called with ``--quiet`` too.
    """


@hookspec
def serkit_on_run_end(run_dir: str, results: dict[str, Any]) -> None:
    """Called once when a run has finished, with the content of ``results.json``.

    ``results["runs"]`` holds every (repeat, fold) run with its ``test`` metrics per
    domain; ``results["domains"]`` their mean and std.
    """

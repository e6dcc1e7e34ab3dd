"""``serkit plugin ...``: commands for plugin authors (``serkit plugin new``).

The group is added to the main command line with ``cli.add_command(plugin)``. Importing
this module is cheap: the scaffold is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["plugin"]


@click.group()
def plugin() -> None:
    """Create serkit plugins (a dataset plugin for your language in minutes)."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder in which serkit-plugin-NAME/ is created.",
)
@click.option(
    "--language",
    default="und",
    show_default=True,
    metavar="CODE",
    help="ISO 639 code of the corpus's language, e.g. sw, swa, pt-BR.",
)
def new(name: str, dest: Path, language: str) -> None:
    """Create serkit-plugin-NAME/: a dataset plugin package for your corpus.

    NAME is snake_case (e.g. swahili, my_language); it becomes the dataset's name in
    recipes (type: NAME). Nothing is overwritten.
    """
    from serkit.scaffold import FILES, new_plugin, plugin_names

    target = new_plugin(name, dest, language=language)
    names = plugin_names(name, language)
    click.echo(f"created {target}/ ({len(FILES)} files)")
    shown = target if dest != Path(".") else Path(target.name)
    click.echo(
        "next steps:\n"
        f"  1. edit {shown}/src/{names.package}/dataset.py: LABELS, FILE_RE, parse() and the\n"
        "     corpus metadata (every place is marked TODO)\n"
        f"  2. put real file names of your corpus in {shown}/tests/test_dataset.py (FILES)\n"
        f"  3. pytest {shown}/tests\n"
        f"  4. pip install -e {shown}\n"
        f"  5. serkit plugins    (lists dataset {name} from {names.dist})\n"
        "guide: docs/writing-a-dataset-plugin.md"
    )

"""mkdocs hook: add the generated reference pages (recipe, components, hooks, CLI) at build time.

Registered in ``mkdocs.yml`` under ``hooks:``. The pages come from :mod:`serkit.docs_gen`
and exist only in memory during the build (``docs/reference/`` holds no files), so the
site always documents the serkit, and the plugins, of the environment that builds it.
A plugin that fails to load is a build warning, so ``mkdocs build --strict`` fails
instead of publishing a reference with components missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.serkit_reference")

#: Folder of the generated pages inside the site (and the virtual docs folder).
REFERENCE = "reference"


def on_files(files: Files, config: Any) -> Files:
    from serkit.docs_gen import reference_pages
    from serkit.plugins import get_plugin_manager

    manager = get_plugin_manager()
    for err in manager.errors:
        log.warning("serkit plugin problem (its components are missing from the reference): %s", err)
    for rel, text in reference_pages(manager).items():
        uri = f"{REFERENCE}/{rel}"
        if files.get_file_from_path(uri) is not None:
            raise PluginError(
                f"docs/{uri} is generated at build time by docs/hooks/reference.py; delete the file from docs/"
            )
        files.append(File.generated(config, uri, content=text))
    return files


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """``mkdocs serve``: rebuild when serkit's code (docstrings, params, hooks, CLI) changes."""
    import serkit

    server.watch(str(Path(serkit.__file__).parent))
    return server

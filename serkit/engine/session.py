"""One ``serkit run`` session as this process sees it: the recipe, the run folder, the device, the console.

Made by :mod:`serkit.engine.run` when a run starts and handed to every part of it
(:mod:`serkit.engine.fit` for each ``(repeat, fold)`` run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Session"]


@dataclass
class Session:
    """This process's part of one ``serkit run``: the recipe, where it writes, and how it runs.

    Attributes:
        recipe: the validated recipe (with ``init_from``'s heads merged in).
        source: where the recipe came from (its path), for messages.
        run_dir: the run folder.
        resolved: the resolved recipe (``recipe.yaml``).
        dist: this process's :class:`~serkit.engine.distributed.DistContext`.
        console: where progress is printed (quiet on ranks other than 0).
        manager: the plugin manager (registry and hooks).
        device: the torch device.
        threads: the CPU thread budget (:mod:`serkit.engine.threads`).
        init: ``init_from``'s initial run, or None.
        raw: domain -> the dataset's utterances (:func:`serkit.engine.prepare.load_domains`).
        progress: print progress.
        resume: continue the run in ``run_dir``.
    """

    recipe: Any
    source: str
    run_dir: Path
    resolved: dict[str, Any]
    dist: Any
    console: Any
    manager: Any
    device: Any
    threads: Any
    init: Any
    raw: dict[str, Any]
    progress: bool
    resume: bool

    @property
    def main(self) -> bool:
        """Whether this process is rank 0: it alone writes the run folder, prints and calls the run hooks."""
        return bool(self.dist.is_main)

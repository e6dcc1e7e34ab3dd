"""Every user-facing failure in serkit is a :class:`SerkitError`.

The CLI catches ``SerkitError`` and prints its message without a traceback; anything
else reaching the top level is a bug in serkit (or a plugin) and is shown in full.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "CacheError",
    "DatasetError",
    "ModelError",
    "PluginError",
    "RecipeError",
    "SerkitError",
    "StorageError",
]


class SerkitError(Exception):
    """Base class of every error serkit reports to its users."""


class RecipeError(SerkitError):
    """A recipe (YAML file, ``--set`` override or component parameters) is invalid.

    ``problems`` holds one ``(path, line, message)`` triple per problem, so that callers
    (``serkit validate``, editors, tests) can use them one by one.
    """

    def __init__(self, message: str, problems: list[tuple[str, int | None, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


class PluginError(SerkitError):
    """A plugin failed to load, registered a duplicate name or implements an unknown hook."""


class AudioError(SerkitError):
    """An audio file is unreadable, empty, silent, non-finite or too short."""


class CacheError(SerkitError):
    """The feature store is unreadable, locked or holds a corrupt entry."""


class DatasetError(SerkitError):
    """A dataset is missing, malformed, or its labels/speakers break an invariant."""


class ModelError(SerkitError):
    """A model, checkpoint or run folder cannot be built or loaded."""


class StorageError(SerkitError, OSError):
    """A file could not be written (no space left, quota, read-only file system, permissions).

    Also an :class:`OSError` (``errno``, ``strerror``, ``filename``), so code that handles
    file-system errors keeps handling it.
    """

    def __str__(self) -> str:
        hint = {28: "free some space or write elsewhere", 122: "free some space or write elsewhere",
                30: "the file system is read-only; write elsewhere", 13: "no permission; write elsewhere"}
        extra = hint.get(self.errno or 0)
        return f"cannot write {self.filename}: {self.strerror or 'error'}" + (f" ({extra})" if extra else "")

"""``serkit plugin new``: generate a dataset plugin package for a new language or corpus.

The generated package is the worked URDU plugin's shape with the corpus-specific parts
marked ``TODO``: a pip-installable project with the ``serkit.plugins`` entry point, a
working folder-style dataset component, contract tests on a fake corpus, and a README.
Templates are plain files under ``serkit/templates/plugin`` filled with
:class:`string.Template` (``$name``), so no template engine is needed.
"""

from __future__ import annotations

import keyword
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from serkit.errors import SerkitError

__all__ = ["MAX_NAME_LENGTH", "PluginNames", "new_plugin", "plugin_names", "validate_language", "validate_name"]

MAX_NAME_LENGTH = 32
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

#: Output path (relative to the plugin folder, ``$package`` substituted) -> template file.
FILES: dict[str, str] = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    ".gitignore": "gitignore.tmpl",
    "src/$package/__init__.py": "__init__.py.tmpl",
    "src/$package/plugin.py": "plugin.py.tmpl",
    "src/$package/dataset.py": "dataset.py.tmpl",
    "src/$package/py.typed": "",
    "tests/test_dataset.py": "test_dataset.py.tmpl",
}


@dataclass(frozen=True)
class PluginNames:
    """Every name derived from the plugin name ``my_language``."""

    name: str  # my_language: the dataset's registry name and the entry-point name
    package: str  # serkit_plugin_my_language: the import package
    dist: str  # serkit-plugin-my_language: the distribution and the folder
    class_name: str  # MyLanguageDataset
    title: str  # My Language
    language: str  # ISO 639 code, "und" when unknown


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid plugin name, else raise :class:`SerkitError`."""
    if not _NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH or keyword.iskeyword(name):
        raise SerkitError(
            f"plugin name {name!r} is not valid: use snake_case (lower-case letters a-z, digits 0-9 and "
            f"single underscores between words, starting with a letter, at most {MAX_NAME_LENGTH} "
            "characters, not a Python keyword), e.g. 'swahili' or 'my_language'"
        )
    return name


def validate_language(code: str) -> str:
    """Return ``code`` if it looks like an ISO 639 code (``sw``, ``swa``, ``pt-BR``, ``und``)."""
    if not _LANGUAGE_RE.match(code):
        raise SerkitError(
            f"--language {code!r} is not a language code: use an ISO 639-1 or 639-3 code in lower case "
            "with optional subtags, e.g. 'sw', 'swa', 'pt-BR' ('und' if undetermined)"
        )
    return code


def plugin_names(name: str, language: str = "und") -> PluginNames:
    """Derive package, distribution and class names from a validated plugin name."""
    validate_name(name)
    validate_language(language)
    words = name.split("_")
    return PluginNames(
        name=name,
        package=f"serkit_plugin_{name}",
        dist=f"serkit-plugin-{name}",
        class_name="".join(w.capitalize() for w in words) + "Dataset",
        title=" ".join(w.capitalize() for w in words),
        language=language,
    )


def _isort_order(members: list[str]) -> list[str]:
    """Order names like isort/ruff (constants, then classes, then the rest), so that the
    generated imports and ``__all__`` are ruff-clean whatever the class name is."""

    def key(member: str) -> tuple[int, str]:
        if len(member) > 1 and member.isupper():
            return 0, member.lower()
        return (1 if member[0].isupper() else 2), member.lower()

    return sorted(members, key=key)


def _serkit_requirement() -> str:
    from importlib import metadata

    try:
        version = metadata.version("serkit")
    except metadata.PackageNotFoundError:  # pragma: no cover - uninstalled source tree
        return "serkit"
    major_minor = ".".join(version.split(".")[:2])
    return f"serkit>={major_minor}" if re.match(r"^\d+\.\d+$", major_minor) else "serkit"


def _taken_dataset_names() -> dict[str, str]:
    """Registered dataset names -> the distribution that provides them."""
    from serkit.plugins import get_registry

    registry = get_registry()
    return {n: registry.entry("dataset", n).distribution for n in registry.names("dataset")}


def new_plugin(
    name: str,
    dest: str | Path = ".",
    *,
    language: str = "und",
    check_registry: bool = True,
) -> Path:
    """Create ``<dest>/serkit-plugin-<name>/`` with a working dataset plugin.

    Args:
        name: snake_case plugin and dataset name (``swahili``, ``my_language``).
        dest: parent folder of the new plugin folder (created if missing).
        language: ISO 639 code of the corpus (``und`` leaves a TODO for later).
        check_registry: refuse a name already registered as a dataset by an
            installed plugin (the new plugin could not register it).

    Returns:
        The new plugin folder.

    Raises:
        SerkitError: invalid name or language, a dataset of that name already exists,
            or the target folder already exists (nothing is overwritten).
    """
    names = plugin_names(name, language)
    if check_registry:
        taken = _taken_dataset_names()
        if name in taken:
            raise SerkitError(
                f"a dataset named {name!r} is already registered (distribution {taken[name]}); "
                f"choose another plugin name (registered datasets: {', '.join(sorted(taken))})"
            )
    target = Path(dest).expanduser() / names.dist
    if target.exists():
        raise SerkitError(f"{target} already exists; refusing to overwrite it (remove it or pick another --dest)")
    values = {
        "name": names.name,
        "package": names.package,
        "dist": names.dist,
        "class_name": names.class_name,
        "title": names.title,
        "language": names.language,
        "serkit_requirement": _serkit_requirement(),
        "dataset_all": ", ".join(
            f'"{m}"' for m in _isort_order(["EXTENSIONS", "FILE_RE", "LABELS", names.class_name, "Parsed", "parse"])
        ),
        "test_imports": ", ".join(_isort_order([names.class_name, "Parsed", "parse"])),
    }
    templates = resources.files("serkit") / "templates" / "plugin"
    rendered: dict[Path, str] = {}
    for out, template in FILES.items():
        path = target / string.Template(out).substitute(values)
        text = "" if not template else (templates / template).read_text(encoding="utf-8")
        rendered[path] = string.Template(text).substitute(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir()  # fails if a concurrent call created it meanwhile: still no overwrite
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target

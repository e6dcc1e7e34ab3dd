"""Read recipe YAML: ``yaml.safe_load``, ``${VAR:-default}`` substitution, ``--set`` overrides.

The loader also records the YAML line of every mapping key and list item so that
validation errors can point at the line that caused them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from serkit.errors import RecipeError

__all__ = ["LineMap", "apply_overrides", "apply_unsets", "load_yaml_with_lines", "substitute_env"]

Path_ = tuple[str | int, ...]
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class LineMap:
    """Dotted data path -> 1-based YAML line (or ``None`` for values from ``--set``)."""

    def __init__(self) -> None:
        self._lines: dict[Path_, int | None] = {}

    def set(self, path: Path_, line: int | None) -> None:
        self._lines[path] = line

    def line(self, path: Path_) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self._lines:
                return self._lines[p]
            p = p[:-1]
        return self._lines.get((), None)


def _walk_nodes(node: yaml.Node, path: Path_, lines: LineMap) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            sub = (*path, key)
            lines.set(sub, key_node.start_mark.line + 1)
            _walk_nodes(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            lines.set(sub, item.start_mark.line + 1)
            _walk_nodes(item, sub, lines)


def load_yaml_with_lines(path: str | os.PathLike[str]) -> tuple[Any, LineMap]:
    """Parse a YAML file safely and map every key to its line.

    Raises:
        RecipeError: the file is missing, unreadable, not YAML, or not a mapping.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{p}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecipeError(f"{p}: cannot read recipe: {err}") from err
    return load_yaml_text(text, str(p))


#: Most values (mappings, lists, scalars, counting every alias expansion) a recipe may hold.
MAX_VALUES = 100_000
#: Deepest nesting of mappings/lists a recipe may have.
MAX_DEPTH = 64
_TAG_RE = re.compile(r"could not determine a constructor for the tag '([^']*)'")


def load_yaml_text(text: str, source: str = "<recipe>") -> tuple[Any, LineMap]:
    """Like :func:`load_yaml_with_lines` for a string (``source`` names it in errors).

    Only ``yaml.safe_load`` builds data: tags such as ``!!python/object`` are refused.
    Recursive aliases, alias bombs (more than :data:`MAX_VALUES` values once aliases are
    expanded) and nesting deeper than :data:`MAX_DEPTH` are refused before any of the
    data is walked.
    """
    lines = LineMap()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_shape(node, source)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        tag = _TAG_RE.search(problem)
        if tag:
            shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
            problem = (
                f"tag {shown!r} is not allowed; recipes are read with yaml.safe_load, which builds only "
                "plain data (mappings, lists, strings, numbers, booleans, null)"
            )
        raise RecipeError(f"{source}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise RecipeError(f"{source}: not valid as a recipe: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{source}: a recipe must be a YAML mapping (name: ..., domains: ...), "
            f"got {type(data).__name__}"
        )
    if node is not None:
        _walk_nodes(node, (), lines)
    return data, lines


def _check_shape(root: yaml.Node, source: str) -> None:
    """Refuse recursive aliases, alias bombs and deep nesting (iteratively, each node once)."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) with aliases expanded
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            done[key] = (1, 0)
            continue
        if expanded:
            active.discard(key)
            values = 1 + sum(done[id(c)][0] for c in children)
            depth = 1 + max((done[id(c)][1] for c in children), default=0)
            if values > MAX_VALUES:
                raise RecipeError(
                    f"{source}: not valid as a recipe: more than {MAX_VALUES} values once YAML aliases "
                    f"are expanded (line {node.start_mark.line + 1})"
                )
            if depth > MAX_DEPTH:
                raise RecipeError(f"{source}: not valid as a recipe: nested more than {MAX_DEPTH} levels deep")
            done[key] = (values, depth)
            continue
        if key in done:
            continue
        if key in active:
            raise RecipeError(
                f"{source}: not valid as a recipe: a YAML alias refers to a mapping or list that contains it "
                f"(line {node.start_mark.line + 1})"
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in done)


def substitute_env(data: Any, lines: LineMap | None = None, path: Path_ = ()) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``data``.

    A string that is exactly one placeholder takes the YAML type of the value
    (``${REPEATS:-5}`` becomes the integer 5); placeholders inside longer strings are
    replaced as text.

    Raises:
        RecipeError: a ``${VAR}`` without default names an unset variable.
    """
    if isinstance(data, dict):
        return {k: substitute_env(v, lines, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute_env(v, lines, (*path, i)) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def value_of(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        dotted = ".".join(str(p) for p in path)
        line = lines.line(path) if lines else None
        where = f"{dotted} (line {line})" if line else dotted
        raise RecipeError(
            f"{where}: environment variable {name} is not set and has no default "
            f"(write ${{{name}:-default}} to give one)"
        )

    full = _ENV_RE.fullmatch(data)
    if full:
        value = value_of(full)
        try:
            parsed = yaml.safe_load(value) if value != "" else ""
        except (yaml.YAMLError, RecursionError):
            return value
        return parsed if isinstance(parsed, (int, float, bool, str)) else value
    return _ENV_RE.sub(value_of, data)


def apply_overrides(
    data: dict[str, Any], overrides: Iterable[str], lines: LineMap
) -> dict[str, Any]:
    """Apply ``dotted.path=value`` overrides (values parsed as YAML) to a copy of ``data``.

    Missing intermediate mappings are created; list items are addressed by index.

    Raises:
        RecipeError: an override is not ``path=value`` or walks into a non-container.
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: expected dotted.path=value, e.g. train.epochs=5")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".")]
        if not key.strip() or any(not p for p in parts):
            raise RecipeError(f"--set {item!r}: empty path segment in {key!r}")
        value = _override_value(raw, item)
        node: Any = out
        walked: list[str | int] = []
        for part in parts[:-1]:
            node, step = _step(node, part, item, walked, create=True)
            walked.append(step)
        last = parts[-1]
        if isinstance(node, list):
            idx = _index(last, node, item)
            node[idx] = value
            walked.append(idx)
        elif isinstance(node, dict):
            node[last] = value
            walked.append(last)
        else:
            raise RecipeError(f"--set {item!r}: {'.'.join(map(str, walked))} is not a mapping")
        for i in range(1, len(walked) + 1):
            lines.set(tuple(walked[:i]), None)
    return out


def _override_value(raw: str, item: str) -> Any:
    """The YAML value of ``--set path=raw`` (checked like a recipe file); text that is not YAML stays text."""
    if not raw.strip():
        return ""
    shown = item if len(item) <= 60 else item[:57] + "..."
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
        if node is not None:
            _check_shape(node, f"--set {shown!r}")
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    except RecursionError:
        raise RecipeError(f"--set {shown!r}: not valid as a recipe: nested too deeply") from None


def apply_unsets(data: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """Remove ``dotted.path`` entries (``--unset domains.xb``) from a copy of ``data``.

    Raises:
        RecipeError: the path does not exist.
    """
    import copy

    out = copy.deepcopy(data)
    for item in paths:
        parts = item.strip().split(".")
        node: Any = out
        for part in parts[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise RecipeError(f"--unset {item!r}: no field {part!r}")
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise RecipeError(f"--unset {item!r}: no field {parts[-1]!r}")
        del node[parts[-1]]
    return out


def _index(part: str, node: list[Any], item: str) -> int:
    try:
        idx = int(part)
        node[idx]
    except (ValueError, IndexError):
        raise RecipeError(
            f"--set {item!r}: {part!r} is not an index of a list of {len(node)}"
        ) from None
    return idx


def _step(
    node: Any, part: str, item: str, walked: list[str | int], create: bool
) -> tuple[Any, str | int]:
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            if not create:
                raise RecipeError(f"--set {item!r}: no field {part!r}")
            node[part] = {}
        return node[part], part
    if isinstance(node, list):
        idx = _index(part, node, item)
        return node[idx], idx
    raise RecipeError(f"--set {item!r}: {'.'.join(map(str, walked))} is not a mapping")

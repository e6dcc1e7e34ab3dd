"""Recipe problems: pydantic's validation errors translated into one ``path (line N): message`` each.

:func:`format_error` turns an error's location (with union tags and validator names) into
the recipe's dotted path and its message into one a recipe author can act on: an unknown
component type lists the registered ones and the closest match, an unknown field lists
the section's fields and the closest one. :func:`problems_message` joins the problems
under the recipe's name, with the YAML line of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from serkit.registry import Registry, closest

__all__ = [
    "KIND_AT",
    "PROTOCOL_TAGS",
    "data_path",
    "format_error",
    "kind_of",
    "problems_message",
    "section_fields",
]

KIND_AT = {
    ("domains", "*", "dataset"): "dataset",
    ("features", "*", "extractor"): "extractor",
    ("features", "*", "encoder"): "encoder",
    ("fusion",): "fusion",
    ("heads", "*"): "head",
    ("loss", "main"): "loss",
    ("loss", "aux"): "loss",
    ("optimizer",): "optimizer",
    ("train", "callbacks", "*"): "callback",
}


PROTOCOL_TAGS = ("random", "speaker", "predefined", "cross_corpus", "cross_lingual")


def kind_of(path: Sequence[str | int]) -> str | None:
    for pattern, kind in KIND_AT.items():
        if len(pattern) == len(path) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True)):
            return kind
    return None


def data_path(loc: Sequence[str | int], data: Any) -> tuple[list[str | int], Any]:
    """Map a pydantic ``loc`` (with union tags and validator names) onto the data path."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and not (isinstance(part, str) and part in node):
            # a union tag (the node's type) or a validator name: not part of the data
            if isinstance(part, str) and (
                part == node.get("type") or "[" in part or part in PROTOCOL_TAGS
            ):
                continue
            path.append(part)
            node = None
        else:
            path.append(part)
            node = None
    return path, node


def section_fields(
    model: type[BaseModel], path: Sequence[str | int], registry: Registry, data: Any
) -> list[str] | None:
    kind = kind_of(path)
    if kind is not None:
        node = data
        for p in path:  # pydantic's loc may name a non-string key (None, 1) as a string
            if isinstance(node, dict):
                node = node.get(p)
            elif isinstance(node, list) and isinstance(p, int) and -len(node) <= p < len(node):
                node = node[p]
            else:
                node = None
        name = node.get("type") if isinstance(node, dict) else None
        if isinstance(name, str) and (kind, name) in registry:
            return ["type", *registry.get(kind, name).Params.model_fields]
        return None
    sub: Any = model
    node: Any = data
    for p in path:
        if isinstance(p, int):
            return None
        node = node.get(p) if isinstance(node, dict) else None
        ann = getattr(sub, "model_fields", {}).get(p)
        if ann is None:
            if path and path[0] in ("domains", "features") and len(path) >= 2:
                continue
            return None
        sub = ann.annotation
        args = getattr(sub, "__args__", ())
        if args and not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            cand = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tag = node.get("type") if isinstance(node, dict) else None  # a tagged union: the member named
            named = [
                a
                for a in cand
                if "type" in a.model_fields and tag in getattr(a.model_fields["type"].annotation, "__args__", ())
            ]
            sub = named[0] if named else cand[-1] if cand else sub
    if isinstance(sub, type) and issubclass(sub, BaseModel):
        return list(sub.model_fields)
    return None


def format_error(
    err: dict[str, Any], data: Any, model: type[BaseModel], registry: Registry
) -> tuple[list[str | int], str]:
    loc = list(err.get("loc", ()))
    etype = err.get("type", "")
    path, _ = data_path(loc, data)
    msg = err.get("msg", "invalid")
    if etype in ("union_tag_invalid", "union_tag_not_found", "literal_error") and (
        etype != "literal_error" or (path and path[-1] == "type")
    ):
        comp_path = path[:-1] if path and path[-1] == "type" else path
        kind = kind_of(comp_path)
        if kind is not None:
            tag = (err.get("ctx") or {}).get("tag")
            if tag is None:
                node = data
                for p in comp_path:
                    node = node.get(p) if isinstance(node, dict) else None
                tag = node.get("type") if isinstance(node, dict) else None
            if tag is None:
                return [*comp_path, "type"], (
                    f"missing 'type'; available {kind} types: {', '.join(registry.names(kind))}"
                )
            text = registry.unknown_message(kind, str(tag))
            if isinstance(tag, str) and ("." in tag or ":" in tag):
                text += " (recipes name registered components, never import paths)"
            return [*comp_path, "type"], text
        if etype == "union_tag_invalid" and path and path[0] == "protocol":
            tag = (err.get("ctx") or {}).get("tag")
            near = closest(str(tag), list(PROTOCOL_TAGS))
            extra = f"; did you mean {near!r}?" if near else ""
            return [
                "protocol",
                "type",
            ], f"unknown protocol {tag!r}; available: {', '.join(PROTOCOL_TAGS)}{extra}"
        if etype == "union_tag_not_found" and path == ["protocol"]:
            return ["protocol", "type"], f"missing 'type'; available protocols: {', '.join(PROTOCOL_TAGS)}"
    if etype == "extra_forbidden":
        field = path[-1] if path else "?"
        allowed = section_fields(model, path[:-1], registry, data)
        text = f"unknown field {field!r}"
        if allowed:
            near = closest(str(field), [a for a in allowed if a != "type"])
            if near:
                text += f"; did you mean {near!r}?"
            text += f" (fields: {', '.join(a for a in allowed if a != 'type')})"
        return path, text
    if etype == "missing":
        return path, "required field is missing"
    value = err.get("input")
    if (
        etype.endswith("_type")
        or etype.endswith("_parsing")
        or etype in ("model_type", "dict_type")
    ):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return path, f"{msg} (got {shown})"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return path, msg


def problems_message(source: str, problems: list[tuple[str, int | None, str]]) -> str:
    head = f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    body = "\n".join(
        f"  {path}{f' (line {line})' if line else ' (--set)' if line is None and path != '<root>' else ''}: {text}"
        for path, line, text in problems
    )
    return f"{head}\n{body}"

"""The generated pages of the documentation site: recipe, component, hook and CLI reference.

Every page is rendered from the code that is running: the component registry (built-ins
and every installed plugin), the recipe model built from it, :mod:`serkit.hookspecs` and
the ``serkit`` click group. The mkdocs hook ``docs/hooks/reference.py`` adds the pages to
the site at build time, so they are never stale and never committed; to read them
without mkdocs::

    python -m serkit.docs_gen OUT_DIR      # writes OUT_DIR/recipe.md, components/*.md, ...

Docstrings are written in the project's reST-flavoured style (````code````,
``:class:`~a.B```, ``Args:`` sections, ``::`` literal blocks); :func:`md_docstring` turns
them into Markdown.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import click
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from serkit.interfaces import KINDS

if TYPE_CHECKING:
    from serkit.plugins import PluginManager

__all__ = [
    "KIND_INFO",
    "cli_page",
    "component_page",
    "constraints",
    "default_text",
    "fields_table",
    "hooks_page",
    "md_docstring",
    "recipe_page",
    "reference_pages",
    "type_text",
    "write_pages",
]

#: kind -> (page title, where the kind appears in a recipe, one-line description).
KIND_INFO: dict[str, tuple[str, str, str]] = {
    "dataset": (
        "Datasets",
        "domains.<id>.dataset",
        "A dataset lists a corpus's utterances (path, canonical label, speaker, language).",
    ),
    "extractor": (
        "Extractors",
        "features.<id>.extractor",
        "An extractor turns a waveform into features: a sequence (L, d) or a vector (d,). "
        "Its output is cached in the feature store.",
    ),
    "encoder": (
        "Encoders",
        "features.<id>.encoder",
        "An encoder maps a sequence stream (B, L, d) plus lengths to one vector per utterance (B, k).",
    ),
    "fusion": (
        "Fusions",
        "fusion",
        "A fusion merges the stream vectors into one representation per utterance, possibly per domain.",
    ),
    "head": (
        "Heads",
        "heads.<head id or default>",
        "A head is the classification tower of a domain (or of domains sharing it).",
    ),
    "loss": ("Losses", "loss.main, loss.aux", "A loss is the main objective on the logits or an auxiliary one."),
    "optimizer": ("Optimizers", "optimizer", "The optimizer of every trainable parameter."),
    "callback": (
        "Training callbacks",
        "train.callbacks",
        "A training callback hooks into the training loop (epoch and step starts, epoch ends) to run a "
        "schedule such as a learning-rate warm-up or freezing encoders for the first epochs.",
    ),
}

_SECTION_RE = re.compile(r"^(Args|Arguments|Attributes|Raises|Returns|Yields|Notes?|Examples?|Warns):\s*$")
_ITEM_RE = re.compile(r"^([\w.*]+)(?:\s*\(([^)]*)\))?:\s*(.*)$")
_ROLE_RE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|py:\w+):`(~?)([^`]+)`")
_DOUBLE_TICKS_RE = re.compile(r"``(.+?)``")
_CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1")


# ------------------------------------------------------------------ markdown helpers
def _outside_code(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the parts of ``text`` that are not inline code spans."""
    out, pos = [], 0
    for m in _CODE_SPAN_RE.finditer(text):
        out.append(fn(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(fn(text[pos:]))
    return "".join(out)


def _escape_md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("<", "&lt;").replace("*", "\\*")


def _inline(text: str) -> str:
    """One line of docstring prose -> Markdown: roles and ````code```` -> `code`, HTML-safe."""

    def role(m: re.Match[str]) -> str:
        target = m.group(2)
        return f"`{target.rsplit('.', 1)[-1] if m.group(1) else target}`"

    text = _ROLE_RE.sub(role, text)
    text = _DOUBLE_TICKS_RE.sub(lambda m: f"`` {m.group(1)} ``" if "`" in m.group(1) else f"`{m.group(1)}`", text)
    return _outside_code(text, _escape_md)


def _cell(text: str) -> str:
    """Markdown for one table cell: one line, ``|`` escaped outside code."""
    return _outside_code(" ".join(text.split()), lambda s: s.replace("|", "\\|"))


def _guess_language(lines: Sequence[str]) -> str:
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    body = "\n".join(lines)
    if first.startswith("[") and "=" in body:
        return "toml"
    if first.startswith((">>>", "import ", "from ", "@", "def ", "class ")) or re.search(r"\w\(.*\)", first):
        return "python"
    if re.match(r"^[\w.-]+:(\s|$)", first):
        return "yaml"
    return "text"


def _indented_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The blank-or-indented lines from ``start``, dedented, trailing blanks dropped; and the next index."""
    j = start
    while j < len(lines) and (not lines[j].strip() or lines[j][:1] in (" ", "\t")):
        j += 1
    block = lines[start:j]
    while block and not block[-1].strip():
        block.pop()
    while block and not block[0].strip():
        block.pop(0)
    return textwrap.dedent("\n".join(block)).splitlines(), j


def _section(name: str, block: list[str]) -> list[str]:
    out = ["", f"**{name}:**", ""]
    if name.startswith("Example") and any(ln.lstrip().startswith(">>>") for ln in block):
        return [*out, "```python", *block, "```", ""]
    if name in ("Args", "Arguments", "Attributes", "Raises", "Warns"):
        items: list[str] = []
        for ln in block:
            if ln[:1] not in (" ", "\t") and ln.strip():
                m = _ITEM_RE.match(ln)
                if m:
                    kind = f" ({m.group(2)})" if m.group(2) else ""
                    items.append(f"- `{m.group(1)}`{_inline(kind)}: {_inline(m.group(3))}")
                else:
                    items.append(f"- {_inline(ln.strip())}")
            elif ln.strip() and items:
                items[-1] += " " + _inline(ln.strip())
        return [*out, *items, ""]
    return [*out, " ".join(_inline(ln.strip()) for ln in block if ln.strip()), ""]


def md_docstring(doc: str | None) -> str:
    """A docstring as Markdown.

    ````x```` and Sphinx roles (``:class:`~a.B``` -> `` `B` ``) become code spans; a
    paragraph ending in ``::`` introduces a fenced code block (language guessed); Google
    sections (``Args:``, ``Returns:``, ``Raises:`` ...) become a bold title and a list;
    ``>>>`` examples become Python blocks; ``<`` and ``*`` in prose are escaped.
    """
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        section = _SECTION_RE.match(line)
        if line.endswith("::"):
            text = line[:-2].rstrip()
            if text:
                out.append(_inline(text + ":"))
            block, i = _indented_block(lines, i + 1)
            out += ["", f"```{_guess_language(block)}", *block, "```", ""]
            continue
        if section and i + 1 < len(lines) and lines[i + 1][:1] in (" ", "\t"):
            block, i = _indented_block(lines, i + 1)
            out += _section(section.group(1), block)
            continue
        if line.lstrip().startswith(">>>"):
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            out += ["", "```python", *textwrap.dedent("\n".join(lines[i:j])).splitlines(), "```", ""]
            i = j
            continue
        out.append(_inline(line))
        i += 1
    return _tidy("\n".join(out))


def _tidy(text: str) -> str:
    """Collapse runs of blank lines outside fenced code blocks; end with one newline."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and not line.strip() and out and not out[-1].strip():
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n"


def _summary_and_body(doc: str | None) -> tuple[str, str]:
    text = inspect.cleandoc(doc or "")
    first, _, rest = text.partition("\n\n")
    return " ".join(first.split()), rest


def _yaml(value: Any) -> str:
    """``value`` as a one-line YAML flow value (what one writes in a recipe)."""
    import yaml

    def plain(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return plain(v.model_dump(mode="json"))
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple, set, frozenset)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        return str(v)

    text = yaml.safe_dump(plain(value), default_flow_style=True, sort_keys=False, width=1 << 20, allow_unicode=True)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].strip()
    elif text.endswith("..."):
        text = text[:-3].strip()
    return text


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


# ------------------------------------------------------------------ field rendering
_CONSTRAINTS: tuple[tuple[str, str], ...] = (
    ("gt", "> {}"),
    ("ge", "≥ {}"),
    ("lt", "< {}"),
    ("le", "≤ {}"),
    ("multiple_of", "multiple of {}"),
    ("min_length", "length ≥ {}"),
    ("max_length", "length ≤ {}"),
)


def constraints(metadata: Iterable[Any]) -> list[str]:
    """Human-readable constraints of a field's (or an ``Annotated`` type's) metadata.

    >>> from annotated_types import Ge, Lt
    >>> constraints([Ge(0), Lt(1)])
    ['≥ 0', '< 1']
    """
    out: list[str] = []
    for m in metadata:
        if isinstance(m, FieldInfo):  # e.g. Field(discriminator=...) inside Annotated
            out += constraints(m.metadata)
            continue
        for attr, fmt in _CONSTRAINTS:
            value = getattr(m, attr, None)
            if value is not None:
                out.append(fmt.format(_yaml(value)))
        pattern = getattr(m, "pattern", None)
        if pattern is not None:
            out.append(f"matches {_code(str(pattern))}")
        if getattr(m, "allow_inf_nan", None) is False:
            out.append("finite")
    return out


def _model_link(model: type[BaseModel], links: dict[type, str]) -> str:
    if model in links:
        return links[model]
    name = model.__name__
    if ":" in name:  # a registered component's recipe model, "<kind>:<name>"
        kind = name.split(":", 1)[0]
        return links.get(kind, f"{kind} component")  # type: ignore[call-overload]
    return _code(name)


def type_text(tp: Any, links: dict[Any, str] | None = None) -> str:
    """Markdown for a field's type, in recipe terms (``null``, list of, mapping of ... to ...).

    ``links`` maps pydantic models (or a component kind) to the Markdown that names them.
    """
    links = links or {}
    origin = get_origin(tp)
    if tp is type(None):
        return "`null`"
    if tp is Any:
        return "any"
    if origin is Annotated:
        base, *meta = get_args(tp)
        text = type_text(base, links)
        cons = constraints(meta)
        return f"{text} ({', '.join(cons)})" if cons else text
    if origin is Literal:
        return " or ".join(_code(_yaml(v)) for v in get_args(tp))
    if origin is Union or origin is types.UnionType:
        args = sorted(get_args(tp), key=lambda a: a is type(None))
        parts: list[str] = []
        for a in args:
            text = type_text(a, links)
            if text not in parts:
                parts.append(text)
        return " or ".join(parts)
    if origin in (list, set, frozenset, collections.abc.Sequence, collections.abc.Set):
        (arg,) = get_args(tp) or (Any,)
        return f"list of {type_text(arg, links)}"
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {type_text(args[0], links)}"
        if args and all(a == args[0] for a in args):
            return f"list of {len(args)} {type_text(args[0], links)}"
        return "list [" + ", ".join(type_text(a, links) for a in args) + "]"
    if origin in (dict, collections.abc.Mapping):
        key, value = get_args(tp) or (Any, Any)
        return f"mapping of {type_text(key, links)} to {type_text(value, links)}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _model_link(tp, links)
    if isinstance(tp, type):
        return _code(tp.__name__)
    return _code(str(tp))


def default_text(field: FieldInfo) -> str:
    """``required``, or the default as YAML (a factory's value; ``{}`` for a section of defaults)."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=True)
    return _code(_yaml(value))


def fields_table(model: type[BaseModel], links: dict[Any, str] | None = None, skip: Sequence[str] = ("type",)) -> str:
    """A Markdown table of ``model``'s fields: name, type, default, constraints, description."""
    rows = [
        "| field | type | default | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        cells = [
            _code(name),
            type_text(field.annotation, links),
            default_text(field),
            ", ".join(constraints(field.metadata)),
            _inline(field.description or ""),
        ]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if len(rows) == 2:
        return "No parameters.\n"
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------ pages
def _versions(manager: PluginManager) -> dict[str, str]:
    return {p.distribution: p.version for p in manager.plugins}


def _provenance(manager: PluginManager) -> str:
    from serkit.version import __version__

    plugins = ", ".join(
        f"`{p.name}` ({p.distribution}{' ' + p.version if p.version else ''})" for p in manager.plugins
    )
    return (
        f"Generated from serkit {__version__} with the plugins {plugins}: what this site's build "
        "environment has installed. `serkit plugins` lists what yours has."
    )


def component_page(kind: str, manager: PluginManager) -> str:
    """The reference page of one component kind: every registered component, with its params."""
    title, where, what = KIND_INFO[kind]
    registry = manager.registry
    names = registry.names(kind)
    versions = _versions(manager)
    out = [
        f"# {title}",
        "",
        f"{_inline(what)} Used at {_code(where)} in a recipe, written as `{{type: NAME, ...params}}`; "
        "unknown params are errors.",
        "",
        _provenance(manager),
        "",
        "| name | summary |",
        "| --- | --- |",
    ]
    for name in names:
        summary, _ = _summary_and_body(registry.get(kind, name).__doc__)
        out.append(f"| [{name}](#{name}) | {_cell(_inline(summary))} |")
    out.append("")
    for name in names:
        entry = registry.entry(kind, name)
        cls = entry.cls
        version = versions.get(entry.distribution, "")
        summary, body = _summary_and_body(cls.__doc__)
        out += [
            f"## {name} {{ #{name} }}",
            "",
            f"`type: {name}` · from {entry.distribution}{' ' + version if version else ''} "
            f"(plugin `{entry.plugin}`) · class `{cls.__module__}.{cls.__qualname__}`",
            "",
            f"**{_inline(summary)}**" if summary else "",
            "",
        ]
        if body:
            out += [md_docstring(body), ""]
        if kind == "dataset":
            facts = [
                ("homepage", getattr(cls, "homepage", "")),
                ("licence", getattr(cls, "licence", "")),
                ("how to get it", getattr(cls, "how_to_get", "")),
            ]
            out += [f"- {label}: {_inline(value)}" for label, value in facts if value] + [""]
        if kind == "extractor":
            out += [f"- cache version: `{getattr(cls, 'version', '1')}` (part of the feature store key)", ""]
        out += [fields_table(cls.Params), ""]
    return _tidy("\n".join(out))


#: Link text of the recipe sections whose field name alone reads badly in a type column.
_SECTION_LABELS = {
    "domains": "domain",
    "features": "stream",
    "loss": "losses",
    "train": "train settings",
    "data": "data settings",
    "store": "store settings",
    "logging": "logging settings",
    "variants": "variant",
}


def _is_component(model: type[BaseModel]) -> bool:
    return ":" in model.__name__  # "<kind>:<name>", built by the recipe model from the registry


def _models_in(tp: Any) -> list[type[BaseModel]]:
    """The (non-component) pydantic models inside a type, in order, once each."""
    found: list[type[BaseModel]] = []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [] if _is_component(tp) else [tp]
    for arg in get_args(tp):
        for m in _models_in(arg):
            if m not in found:
                found.append(m)
    return found


def _is_mapping(tp: Any) -> bool:
    origin = get_origin(tp)
    if origin is Annotated:
        return _is_mapping(get_args(tp)[0])
    return origin in (dict, collections.abc.Mapping)


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("type")
    return get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()


def _spec_sections(
    model: type[BaseModel], links: dict[Any, str], level: int, prefix: str, notes: dict[str, str]
) -> list[str]:
    """A section per field of ``model`` that holds a settings model (recursively), in field order.

    A field holding one model gets ``## field`` (``## `field.<id>` `` for a mapping); a union of
    tagged models (the protocols) gets one subsection per model, titled by its ``type`` values.
    """
    plan: list[tuple[str, str, str, list[type[BaseModel]]]] = []  # dotted, anchor, title, models
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        anchor = dotted.replace(".", "-")
        models = [m for m in _models_in(field.annotation) if m not in links]
        title = f"`{dotted}.<id>`" if _is_mapping(field.annotation) else dotted
        if models or dotted in notes:
            plan.append((dotted, anchor, title, models))
        if len(models) == 1:
            links[models[0]] = f"[{_SECTION_LABELS.get(name, name)}](#{anchor})"
        else:
            for m in models:
                tags = _tags(m)
                links[m] = f"[{tags[0] if tags else m.__name__}](#{anchor}-{tags[0] if tags else m.__name__.lower()})"
    hashes = "#" * level
    out: list[str] = []
    for dotted, anchor, title, models in plan:
        out += [f"{hashes} {title} {{ #{anchor} }}", ""]
        if dotted in notes:
            out += [notes[dotted], ""]
        if len(models) == 1:
            out += [md_docstring(models[0].__doc__), "", fields_table(models[0], links, skip=()), ""]
            out += _spec_sections(models[0], links, level + 1, f"{dotted}.", notes)
            continue
        for m in models:
            tags = _tags(m)
            sub = tags[0] if tags else m.__name__.lower()
            heading = " / ".join(str(t) for t in tags) if tags else m.__name__
            out += [f"{hashes}# {heading} {{ #{anchor}-{sub} }}", "", md_docstring(m.__doc__), ""]
            out += [fields_table(m, links), ""]
    return out


def recipe_page(manager: PluginManager) -> str:
    """The recipe reference: every top-level field and, section by section, the settings models."""
    from serkit.config.recipe import build_recipe_model
    from serkit.engine.sweep import SweepSpec

    model = build_recipe_model(manager.registry)
    links: dict[Any, str] = {kind: f"[{kind}](components/{kind}.md)" for kind in KINDS}
    notes = {
        "heads": "A mapping of head id to a [head](components/head.md). A domain's head id is its own id "
        "unless it sets `head:`; `default` serves every head id without its own entry.",
        "protocol": "How utterances are split into train, validation and test sets, written "
        "`protocol: {type: NAME, ...}` (or just `protocol: NAME` for the defaults).",
    }
    sections = _spec_sections(model, links, 2, "", notes)
    sweep_sections = _spec_sections(SweepSpec, links, 3, "", {})
    out = [
        "# Recipe reference",
        "",
        "A recipe is a YAML file validated as a whole before anything runs: `serkit validate R.yaml` "
        "lists every problem with its dotted path and line. Unknown fields are errors. "
        "Strings may use `${VAR}` and `${VAR:-default}`; `--set dotted.path=value` and "
        "`--unset dotted.path` change a recipe from the command line (see [Recipes](../concepts/recipes.md)). "
        "`serkit schema` prints the same model as a JSON schema. Components (`type: NAME`) are described "
        "on the component pages: " + ", ".join(f"[{k}](components/{k}.md)" for k in KINDS) + ".",
        "",
        _provenance(manager),
        "",
        "## Top level { #top-level }",
        "",
        md_docstring(model.__doc__),
        "",
        fields_table(model, links, skip=()),
        "",
        *sections,
        "## Sweep files { #sweeps }",
        "",
        "`serkit sweep FILE` runs variants of a recipe and prints them side by side.",
        "",
        md_docstring(SweepSpec.__doc__),
        "",
        fields_table(SweepSpec, links, skip=()),
        "",
        *sweep_sections,
    ]
    return _tidy("\n".join(out))


def _hookspecs() -> list[tuple[str, Any, dict[str, Any]]]:
    from serkit import hookspecs

    out = []
    for name, fn in vars(hookspecs).items():
        opts = getattr(fn, "serkit_spec", None)
        if name.startswith("serkit_") and callable(fn) and isinstance(opts, dict):
            out.append((name, fn, opts))
    return sorted(out, key=lambda t: inspect.getsourcelines(t[1])[1])


def _annotation(ann: Any) -> str:
    return ann if isinstance(ann, str) else inspect.formatannotation(ann)


def _signature(name: str, fn: Any) -> str:
    sig = inspect.signature(fn)
    params = [
        p.name if p.annotation is inspect.Parameter.empty else f"{p.name}: {_annotation(p.annotation)}"
        for p in sig.parameters.values()
    ]
    ret = sig.return_annotation
    ret_text = "" if ret is inspect.Signature.empty else f" -> {_annotation(ret)}"
    one_line = f"def {name}({', '.join(params)}){ret_text}: ..."
    if len(one_line) <= 88:
        return one_line
    return f"def {name}(\n" + "".join(f"    {p},\n" for p in params) + f"){ret_text}: ..."


def _link_hooks(text: str, names: Iterable[str], current: str = "") -> str:
    """Turn `` `serkit_xxx` `` mentions of other hooks into links to their sections (outside code blocks)."""
    known = set(names) - {current}
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced:
            line = re.sub(r"`(serkit_\w+)`", lambda m: f"[`{m[1]}`](#{m[1]})" if m[1] in known else m[0], line)
        out.append(line)
    return "\n".join(out)


def hooks_page() -> str:
    """The hook reference: every hookspec of :mod:`serkit.hookspecs`, signature and docstring."""
    from serkit import hookspecs

    specs = _hookspecs()
    names = [name for name, _, _ in specs]
    out = [
        "# Hook reference",
        "",
        md_docstring(hookspecs.__doc__),
        "",
        "An implementation may accept any subset of a hook's arguments: pluggy passes them by name. "
        "A module that implements a hook not listed here is refused when it loads (the rest of serkit "
        "keeps working).",
        "",
        "| hook | summary |",
        "| --- | --- |",
    ]
    for name, fn, _ in specs:
        summary, _ = _summary_and_body(fn.__doc__)
        out.append(f"| [{name}](#{name}) | {_cell(_inline(summary))} |")
    out.append("")
    for name, fn, opts in specs:
        flags = [k for k in ("firstresult", "historic") if opts.get(k)]
        args = ", ".join(inspect.signature(fn).parameters)
        out += [
            f"## {name} {{ #{name} }}",
            "",
            "```python",
            _signature(name, fn),
            "```",
            "",
            *([f"Options: {', '.join(flags)}.", ""] if flags else []),
            _link_hooks(md_docstring(fn.__doc__), names, name),
            "",
            "Implementation:",
            "",
            "```python",
            "import serkit",
            "",
            "",
            "@serkit.hookimpl",
            f"def {name}({args}):",
            "    ...",
            "```",
            "",
        ]
    return _tidy("\n".join(out))


def _commands(group: click.Command, path: tuple[str, ...], parent: click.Context | None) -> list[tuple[str, str]]:
    ctx = click.Context(group, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100)
    out = [(" ".join(path), group.get_help(ctx))]
    if isinstance(group, click.Group):
        for name in sorted(group.list_commands(ctx)):
            sub = group.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _commands(sub, (*path, name), ctx)
    return out


def cli_commands() -> list[tuple[str, str]]:
    """``(command path, --help text)`` of ``serkit`` and every built-in subcommand, depth first."""
    from serkit.cli.main import cli

    return _commands(cli, ("serkit",), None)


def cli_page() -> str:
    """The command-line reference: the ``--help`` of every command."""
    commands = cli_commands()
    out = [
        "# Command-line reference",
        "",
        "The `--help` of every `serkit` command, as `serkit COMMAND --help` prints it. "
        "An error prints one `error: ...` line and exits with code 2, as does a usage mistake; "
        "commands that check something (`validate`, `cache verify`) exit with code 1 when they find "
        "problems. Plugins can add commands (`serkit --help` lists them).",
        "",
    ]
    for path, _ in commands:
        depth = path.count(" ")
        out.append(f"{'    ' * max(0, depth - 1)}- [{path}](#{path.replace(' ', '-')})")
    out.append("")
    for path, text in commands:
        out += [f"## {path} {{ #{path.replace(' ', '-')} }}", "", "```text", text.rstrip(), "```", ""]
    return _tidy("\n".join(out))


def reference_pages(manager: PluginManager | None = None) -> dict[str, str]:
    """Every generated page: path relative to the reference folder -> Markdown.

    Args:
        manager: the plugin manager whose registry to document (default: the process's).
    """
    from serkit.plugins import get_plugin_manager

    manager = manager or get_plugin_manager()
    pages = {"recipe.md": recipe_page(manager)}
    for kind in KINDS:
        pages[f"components/{kind}.md"] = component_page(kind, manager)
    pages["hooks.md"] = hooks_page()
    pages["cli.md"] = cli_page()
    return pages


def write_pages(out: str | Path, manager: PluginManager | None = None) -> list[Path]:
    """Write :func:`reference_pages` under ``out`` (atomically); returns the written paths."""
    from serkit.io import atomic_write_text

    written = []
    for rel, text in reference_pages(manager).items():
        path = Path(out) / rel
        atomic_write_text(path, text)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m serkit.docs_gen OUT_DIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m serkit.docs_gen OUT_DIR   (writes the generated reference pages)", file=sys.stderr)
        raise SystemExit(2)
    from serkit.plugins import get_plugin_manager

    manager = get_plugin_manager()
    for err in manager.errors:
        print(f"warning: {err}", file=sys.stderr)
    for path in write_pages(args[0], manager):
        print(path)


if __name__ == "__main__":
    main()

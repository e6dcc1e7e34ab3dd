"""``report.html``: the tables of ``report.md`` and the run's plots in one self-contained file.

The markdown of :func:`serkit.report.results.render_report` is converted by a small
hand-written converter that knows only what that report uses (headings, bullet lists,
pipe tables, paragraphs, ``**bold**``); every piece of text is escaped with
:func:`html.escape`. The PNGs are embedded as base64 ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serkit.io import atomic_write_text

__all__ = ["markdown_to_html", "render_html", "single_stream_markdown", "write_html"]

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
figure { margin: 1em 0; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.9em; }
blockquote { border-left: 6px solid #d9822b; background: #fff4e5; margin: 1em 0; padding: 0.4em 1em; }
"""


def _inline(text: str) -> str:
    """Escape text, then turn ``**x**`` into ``<strong>x</strong>``."""
    return _BOLD.sub(r"<strong>\1</strong>", html.escape(text))


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [c.strip() for c in body.split("|")]


def _is_separator(line: str) -> bool:
    cells = _cells(line)
    return bool(cells) and all(re.fullmatch(r":?-{3,}:?", c) for c in cells)


def _table(lines: list[str]) -> list[str]:
    out = ["<table>"]
    rows = lines
    if len(lines) >= 2 and _is_separator(lines[1]):
        out.append("<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in _cells(lines[0])) + "</tr></thead>")
        rows = lines[2:]
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row)) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


def markdown_to_html(text: str) -> str:
    """HTML of the small markdown subset used by ``report.md``.

    Headings (``#``..``######``), ``- `` bullet lists, ``|`` pipe tables (a ``| --- |``
    second line makes the first a header), ``> `` blocks (a highlighted ``<blockquote>``
    of the same subset), other non-blank lines joined into paragraphs.
    """
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        heading = _HEADING.match(stripped)
        if stripped.startswith(">"):  # a banner (the split audit's): its lines, converted in turn
            block = []
            while i < len(lines) and lines[i].strip().startswith(">"):
                block.append(lines[i].strip()[1:].removeprefix(" "))
                i += 1
            out += ["<blockquote>", markdown_to_html("\n".join(block)), "</blockquote>"]
        elif heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            i += 1
        elif stripped.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i])
                i += 1
            out += _table(block)
        elif stripped.startswith("- "):
            out.append("<ul>")
            while i < len(lines) and lines[i].strip().startswith("- "):
                out.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append("</ul>")
        else:
            para = []
            while i < len(lines):
                s = lines[i].strip()
                if not s or _HEADING.match(s) or s.startswith(("|", "- ", ">")):
                    break
                para.append(s)
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def _figure(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    name = html.escape(Path(path).name)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{name}</figcaption></figure>'


def single_stream_markdown(results: dict[str, Any], single_stream: dict[str, dict[str, Any]]) -> str:
    """Markdown table: per stream, the mean gate weight and the single-stream run's UA per domain.

    Args:
        results: the gated run's results.json mapping.
        single_stream: :func:`serkit.report.plots.load_single_stream`'s mapping.
    """
    domains: list[str] = [d for d, m in results.get("domains", {}).items() if m.get("gates")]
    for info in single_stream.values():
        domains += [d for d in info["ua"] if d not in domains]
    gates: dict[str, dict[str, float]] = {}
    for d in domains:
        g = results.get("domains", {}).get(d, {}).get("gates")
        if g and g.get("streams"):
            gates[d] = dict(zip(g["streams"], g["mean"], strict=True))
    streams = list(single_stream)
    for g in gates.values():
        streams += [s for s in g if s not in streams]
    lines = [
        "## Gate weights and single-stream runs (the paper's Fig. 4)",
        "",
        "Mean test-set gate weight of each stream in this run, beside the test UA (mean ± std over runs) "
        "of a run trained on that stream alone.",
        "",
        "| stream | single-stream run | " + " | ".join(f"{d} gate | {d} single-stream UA" for d in domains) + " |",
        "| --- | --- | " + " | ".join("--- | ---" for _ in domains) + " |",
    ]
    for s in streams:
        info = single_stream.get(s)
        cells = []
        for d in domains:
            gate = gates.get(d, {}).get(s)
            cells.append("-" if gate is None else f"{gate:.3f}")
            ua = info["ua"].get(d) if info else None
            std = info["ua_std"].get(d, 0.0) if info else 0.0
            cells.append("-" if ua is None else f"{ua:.4f} ± {std:.4f}")
        lines.append(f"| {s} | {info['run'] if info else '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_html(
    results: dict[str, Any],
    plots: Sequence[Path] = (),
    single_stream: dict[str, dict[str, Any]] | None = None,
) -> str:
    """A self-contained HTML page: the report's tables, then each PNG of ``plots`` embedded.

    With ``single_stream`` (see :func:`serkit.report.plots.load_single_stream`), a table of
    gate weights beside the single-stream runs' UA follows the report's tables.
    """
    from serkit.report.results import render_report

    title = html.escape(str(results.get("recipe", "serkit report")))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{title} — serkit report</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        markdown_to_html(render_report(results)),
    ]
    if single_stream:
        parts.append(markdown_to_html(single_stream_markdown(results, single_stream)))
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [_figure(p) for p in plots]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_html(
    run_dir: Path,
    results: dict[str, Any],
    plots: Sequence[Path] | None = None,
    single_stream: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write ``report.html`` into the run folder.

    Args:
        run_dir: the run folder.
        results: its results.json mapping.
        plots: PNGs to embed; ``None`` = every ``plots/*.png`` of the run folder, sorted.
        single_stream: single-stream runs for the Fig. 4 table (see :func:`render_html`).
    """
    run_dir = Path(run_dir)
    if plots is None:
        plots = sorted((run_dir / "plots").glob("*.png"))
    path = run_dir / "report.html"
    atomic_write_text(path, render_html(results, plots, single_stream))
    return path

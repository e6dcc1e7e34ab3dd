"""Report sections that say how far a number can be trusted: the split audit's banner and
the provenance (serkit version and commit, recipe hash, data fingerprints).

Both render markdown lines for ``report.md`` (and, through it, ``report.html``, where a
``> `` block becomes a highlighted banner).
"""

from __future__ import annotations

from typing import Any

__all__ = ["audit_banner", "audit_text", "provenance_lines"]

_RANDOM_NOTE = (
    "The random protocol (the paper's split) puts every speaker in train and test by design; "
    "use protocol: speaker for speaker-independent numbers."
)


def audit_banner(audit: dict[str, Any] | None) -> list[str]:
    """A ``> `` block listing the audit's findings (empty when it found nothing or is absent)."""
    if not audit or not audit.get("findings"):
        return []
    head = "**Split audit:** " + (
        "**speaker-dependent**: test speakers were also heard in training or validation, so these "
        "numbers do not measure unseen speakers."
        if audit.get("speaker_dependent")
        else "the splits have findings that qualify these numbers."
    )
    lines = [f"> {head}", ">"]
    lines += [f"> - {f}" for f in audit["findings"]]
    if audit.get("protocol") == "random":
        lines += [">", f"> {_RANDOM_NOTE}"]
    return [*lines, ""]


def audit_text(audit: dict[str, Any]) -> str:
    """Plain text of an audit for the terminal (``serkit data audit``)."""
    lines = []
    for d, a in audit["domains"].items():
        lines.append(
            f"{d}: {a['n_utterances']} utterances, {a['n_speakers']} speakers, {a['n_runs']} run(s)"
            + ("; speaker-dependent" if a["speaker_dependent"] else "")
        )
    if audit["findings"]:
        lines.append(f"{len(audit['findings'])} finding(s):")
        lines += [f"  - {f}" for f in audit["findings"]]
        if audit.get("protocol") == "random":
            lines.append(f"  note: {_RANDOM_NOTE}")
    else:
        lines.append(
            "no findings: no speaker in two of train/val/test, no identical audio across sets, "
            "every test label in train and val"
        )
    lines += [f"note: {n}" for n in audit.get("notes", [])]
    lines.append(f"(audit took {audit['seconds']:.3f} s)")
    return "\n".join(lines) + "\n"


def provenance_lines(prov: dict[str, Any] | None) -> list[str]:
    """The ``## Provenance`` section (empty without provenance)."""
    if not prov:
        return []
    git = prov.get("git")
    where = "not a git checkout"
    if git:
        where = f"commit {git['commit'][:12]}" + (" (with uncommitted changes)" if git.get("dirty") else "")
    lines = [
        "## Provenance",
        "",
        f"- serkit {prov['serkit_version']}, {where}",
        f"- recipe SHA-256: {prov['recipe_sha256']} (without {', '.join(prov.get('recipe_excludes', []))})",
        "",
        "| domain | utterances | audio fingerprint | labelled fingerprint |",
        "| --- | --- | --- | --- |",
    ]
    for d, fp in prov.get("data", {}).items():
        lines.append(f"| {d} | {fp['n']} | {fp['audio'][:16]} | {fp['labelled'][:16]} |")
    return lines

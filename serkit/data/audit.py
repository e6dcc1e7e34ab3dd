"""Split audit: what makes a test number less than it seems, found before anyone reads it.

For every domain and every run (repeat x fold) of a plan, :func:`audit_splits` checks

* **speakers in more than one of train / val / test**: a test speaker heard in training
  makes the number speaker-dependent (always so under the paper's ``random`` split, and
  for many published fold files); a validation speaker heard in training makes model
  selection optimistic;
* **identical audio content in different sets** (the same bytes under two utterance ids,
  e.g. a file copied into two folders of a corpus), by the SHA-256 of each file, also
  across domains (a test file of one domain among the training files of another);
* **test labels absent from the training or validation set** (of the domains that share
  the test domain's head): a class the model never learned, or that model selection
  never saw.

Findings are information, not errors: they go into ``results.json`` (``audit``), a banner
of the report, and ``serkit data audit``. The work is vectorised over utterances (numpy),
so 10,000 utterances x 50 runs take well under a second.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serkit.data.splits import Split
from serkit.data.utterance import Utterance

__all__ = ["MISSING_SPEAKERS", "SET_PAIRS", "audit_splits"]

#: Speaker ids that mean "not known" (the folder dataset without ``speaker_regex``).
MISSING_SPEAKERS = ("", "unknown")
#: The pairs of sets checked, as ``(earlier, later)``; keys ``"train/val"`` etc.
SET_PAIRS: tuple[tuple[str, str], ...] = (("train", "val"), ("train", "test"), ("val", "test"))
_SETS = ("train", "val", "test")
_ROLE = {"train": 1, "val": 2, "test": 3}


def _pair(a: str, b: str) -> str:
    return f"{a}/{b}"


def _indices(split: Split) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(split, name), dtype=np.intp) for name in _SETS}


def _speaker_audit(
    speakers: Sequence[str], runs: Mapping[str, Split]
) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Shared speakers per pair of sets: counts over runs, and each affected run's counts."""
    names, codes = np.unique(np.asarray(speakers, dtype=object).astype(str), return_inverse=True)
    known = ~np.isin(names, MISSING_SPEAKERS)
    n_unknown = int((~known[codes]).sum())
    out: dict[str, Any] = {"checked": bool(known.any()), "unknown": n_unknown}
    per_run: dict[str, dict[str, int]] = {}
    if not known.any():
        return out, per_run
    tallies = {
        _pair(a, b): {"runs": 0, "of_runs": 0, "utterances": 0, "of_utterances": 0, "_shared": set(), "_later": set()}
        for a, b in SET_PAIRS
    }
    for rid, split in runs.items():
        idx = _indices(split)
        present = {name: np.unique(codes[ix]) for name, ix in idx.items()}
        present = {name: spk[known[spk]] for name, spk in present.items()}
        for a, b in SET_PAIRS:
            if not len(idx[a]) or not len(idx[b]):
                continue
            t = tallies[_pair(a, b)]
            t["of_runs"] += 1
            t["of_utterances"] += len(idx[b])
            t["_later"].update(present[b].tolist())
            shared = np.intersect1d(present[a], present[b], assume_unique=True)
            if shared.size:
                t["runs"] += 1
                t["utterances"] += int(np.isin(codes[idx[b]], shared).sum())
                t["_shared"].update(shared.tolist())
                per_run.setdefault(rid, {})[_pair(a, b)] = int(shared.size)
    for key, t in tallies.items():
        out[key] = {
            "runs": t["runs"],
            "of_runs": t["of_runs"],
            "speakers": len(t["_shared"]),
            "of_speakers": len(t["_later"]),
            "utterances": t["utterances"],
            "of_utterances": t["of_utterances"],
            "examples": sorted(str(names[i]) for i in t["_shared"])[:5],
        }
    return out, per_run


def _content_groups(ids: Sequence[str], content: Mapping[str, str | None]) -> tuple[list[np.ndarray], int]:
    """Index arrays of the utterances sharing one audio content (2 or more each), and how
    many utterances have no known content hash."""
    members: dict[str, list[int]] = defaultdict(list)
    unhashed = 0
    for i, uid in enumerate(ids):
        h = content.get(uid)
        if h is None:
            unhashed += 1
        else:
            members[h].append(i)
    return [np.asarray(v, dtype=np.intp) for v in members.values() if len(v) > 1], unhashed


def _roles(n: int, split: Split) -> np.ndarray:
    role = np.zeros(n, dtype=np.int8)
    for name in _SETS:
        role[np.asarray(getattr(split, name), dtype=np.intp)] = _ROLE[name]
    return role


def _duplicate_audit(
    ids: Sequence[str], content: Mapping[str, str | None], runs: Mapping[str, Split], max_examples: int
) -> dict[str, Any]:
    """Identical audio content in two sets of a run, per pair of sets."""
    groups, unhashed = _content_groups(ids, content)
    out: dict[str, Any] = {"checked": True, "unhashed": unhashed, "groups": len(groups)}
    names = {v: k for k, v in _ROLE.items()}
    member = np.concatenate(groups) if groups else np.zeros(0, dtype=np.intp)
    group_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    for a, b in SET_PAIRS:
        runs_hit = 0
        found = np.zeros(len(groups), dtype=bool)
        examples: list[dict[str, Any]] = []
        for rid, split in runs.items() if groups else ():
            role = _roles(len(ids), split)[member]
            in_a = np.zeros(len(groups), dtype=bool)
            in_b = np.zeros(len(groups), dtype=bool)
            in_a[group_of[role == _ROLE[a]]] = True
            in_b[group_of[role == _ROLE[b]]] = True
            both = np.flatnonzero(in_a & in_b)
            if not both.size:
                continue
            runs_hit += 1
            for g in both[~found[both]][: max(0, max_examples - len(examples))]:
                roles = role[group_of == g]
                examples.append(
                    {
                        "run": rid,
                        "utterances": [
                            {"id": ids[int(i)], "set": names[int(r)]}
                            for i, r in zip(groups[g], roles, strict=True)
                            if r
                        ],
                    }
                )
            found[both] = True
        out[_pair(a, b)] = {"runs": runs_hit, "of_runs": len(runs), "contents": int(found.sum()), "examples": examples}
    return out


def _label_audit(
    domain: str,
    labels: Mapping[str, Sequence[str]],
    splits: Mapping[str, Mapping[str, Split]],
    head_of: Mapping[str, str],
) -> dict[str, Any]:
    """Test labels of ``domain`` absent from the train / val sets of the domains sharing its head."""
    peers = [e for e in splits if head_of.get(e, e) == head_of.get(domain, domain)]
    out: dict[str, Any] = {}
    for other in ("train", "val"):
        runs = 0
        missing: set[str] = set()
        for rid, split in splits[domain].items():
            if not split.test:
                continue
            test = {labels[domain][i] for i in split.test}
            seen: set[str] = set()
            for e in peers:
                s = splits[e].get(rid)
                if s is not None:
                    seen.update(labels[e][i] for i in getattr(s, other))
            absent = test - seen
            if absent:
                runs += 1
                missing |= absent
        out[f"not_in_{other}"] = {"runs": runs, "labels": sorted(missing)}
    return out


def _cross_domain(
    ids: Mapping[str, Sequence[str]],
    content: Mapping[str, Mapping[str, str | None]],
    splits: Mapping[str, Mapping[str, Split]],
    max_examples: int,
) -> dict[str, Any]:
    """Audio of one domain's test set among another domain's train / val sets (same run)."""
    where: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for d, d_ids in ids.items():
        for i, uid in enumerate(d_ids):
            h = content.get(d, {}).get(uid)
            if h is not None:
                where[h].append((d, i))
    shared = [v for v in where.values() if len({d for d, _ in v}) > 1]
    run_ids = sorted({rid for s in splits.values() for rid in s})
    names = {v: k for k, v in _ROLE.items()}
    hit_runs = 0
    found: set[int] = set()
    examples: list[dict[str, Any]] = []
    for rid in run_ids if shared else ():
        roles = {d: _roles(len(ids[d]), splits[d][rid]) for d in ids if rid in splits.get(d, {})}
        hit = False
        for g, members in enumerate(shared):
            sets = [(d, i, names.get(int(roles[d][i]))) if d in roles else (d, i, None) for d, i in members]
            tests = {d for d, _, r in sets if r == "test"}
            trained = {d for d, _, r in sets if r in ("train", "val")}
            if any(t != o for t in tests for o in trained):
                hit = True
                if g not in found and len(examples) < max_examples:
                    examples.append(
                        {"run": rid, "utterances": [{"domain": d, "id": ids[d][i], "set": r} for d, i, r in sets if r]}
                    )
                found.add(g)
        hit_runs += int(hit)
    return {"runs": hit_runs, "of_runs": len(run_ids), "contents": len(found), "examples": examples}


def _speaker_line(d: str, key: str, s: dict[str, Any]) -> str:
    a, b = key.split("/")
    summed = " (summed over runs)" if s["of_runs"] > 1 else ""
    return (
        f"{d}: speakers in both {a} and {b} in {s['runs']} of {s['of_runs']} run(s): "
        f"{s['speakers']} of {s['of_speakers']} {b} speakers, {s['utterances']} of {s['of_utterances']} "
        f"{b} utterances{summed}"
    )


def _findings(audit: dict[str, Any]) -> list[str]:
    """One line per finding, in domain order."""
    lines: list[str] = []
    for d, a in audit["domains"].items():
        spk = a["speakers"]
        if not spk["checked"]:
            lines.append(f"{d}: no speaker ids (every utterance's speaker is unknown): speaker overlap not checked")
        else:
            for a_, b_ in SET_PAIRS:
                s = spk[_pair(a_, b_)]
                if s["runs"]:
                    lines.append(_speaker_line(d, _pair(a_, b_), s))
            if spk["unknown"]:
                lines.append(f"{d}: {spk['unknown']} utterance(s) without a speaker id left out of the speaker check")
        dup = a["identical_audio"]
        if dup["checked"]:
            for a_, b_ in SET_PAIRS:
                s = dup[_pair(a_, b_)]
                if s["runs"]:
                    ex = s["examples"][0]["utterances"]
                    shown = " = ".join(f"{u['id']} ({u['set']})" for u in ex[:3])
                    lines.append(
                        f"{d}: identical audio in {a_} and {b_} in {s['runs']} of {s['of_runs']} run(s): "
                        f"{s['contents']} audio content(s), e.g. {shown}"
                    )
        for other in ("train", "val"):
            miss = a["labels"][f"not_in_{other}"]
            if miss["runs"]:
                lines.append(
                    f"{d}: test labels absent from {other} in {miss['runs']} of {a['n_runs']} run(s): "
                    f"{', '.join(miss['labels'])}"
                )
    cross = audit.get("cross_domain")
    if cross and cross["runs"]:
        ex = cross["examples"][0]["utterances"]
        shown = " = ".join(f"{u['domain']}:{u['id']} ({u['set']})" for u in ex[:3])
        lines.append(
            f"identical audio in one domain's test set and another's train/val in {cross['runs']} of "
            f"{cross['of_runs']} run(s): {cross['contents']} audio content(s), e.g. {shown}"
        )
    return lines


def _notes(audit: dict[str, Any]) -> list[str]:
    """What the audit could not check (not findings)."""
    lines: list[str] = []
    for d, a in audit["domains"].items():
        dup = a["identical_audio"]
        if not dup["checked"]:
            lines.append(f"{d}: identical audio not checked (no content hashes)")
        elif dup["unhashed"]:
            lines.append(f"{d}: {dup['unhashed']} audio file(s) could not be read, so were not compared")
    return lines


def audit_splits(
    utterances: Mapping[str, Sequence[Utterance]],
    splits: Mapping[str, Mapping[str, Split]],
    *,
    content: Mapping[str, Mapping[str, str | None]] | None = None,
    head_of: Mapping[str, str] | None = None,
    protocol: str | None = None,
    max_examples: int = 5,
) -> dict[str, Any]:
    """Audit every domain's splits; a JSON-ready mapping (the ``audit`` of ``results.json``).

    Args:
        utterances: domain -> its utterances (the indices of ``splits`` point into them).
        splits: domain -> run id (e.g. ``r0-f1``) -> :class:`Split`.
        content: domain -> utterance id -> SHA-256 of its audio file (``None``: unreadable);
            without it, identical audio is not checked.
        head_of: domain -> head id; domains sharing a head pool their train / val labels
            for the label check (default: each domain its own head).
        protocol: the protocol's type, recorded (``random`` splits are speaker-dependent by
            design; the report says so).
        max_examples: example utterance groups kept per finding.

    Returns:
        ``{"protocol", "speaker_dependent", "clean", "findings": [str], "notes": [str],
        "domains": {d: {...}}, "cross_domain": {...} | None, "seconds"}`` (``notes``: what
        could not be checked, e.g. identical audio without content hashes); per domain: ``n_utterances``,
        ``n_speakers``, ``n_runs``, ``speaker_dependent`` (a test speaker also in train or
        val in some run), ``speakers`` (per pair ``"train/val"``, ``"train/test"``,
        ``"val/test"``: runs affected of runs, shared speakers of the later set's speakers,
        the later set's utterances by shared speakers, summed over runs), ``per_run``
        (run id -> pair -> shared speakers, affected runs only), ``identical_audio`` (per
        pair: runs affected, distinct contents, examples), ``labels`` (``not_in_train`` /
        ``not_in_val``: runs affected and the labels).
    """
    t0 = time.perf_counter()
    head_of = dict(head_of or {})
    labels = {d: [u.label for u in utts] for d, utts in utterances.items()}
    domains: dict[str, Any] = {}
    for d, utts in utterances.items():
        runs = splits.get(d, {})
        speakers, per_run = _speaker_audit([u.speaker for u in utts], runs)
        ids = [u.id for u in utts]
        if content is not None and d in content:
            dup = _duplicate_audit(ids, content[d], runs, max_examples)
        else:
            dup = {"checked": False}
        dependent = speakers["checked"] and any(speakers[_pair(a, "test")]["runs"] for a in ("train", "val"))
        domains[d] = {
            "n_utterances": len(utts),
            "n_speakers": len({u.speaker for u in utts}),
            "n_runs": len(runs),
            "speaker_dependent": bool(dependent),
            "speakers": speakers,
            "per_run": per_run,
            "identical_audio": dup,
            "labels": _label_audit(d, labels, splits, head_of),
        }
    cross = None
    if content is not None and len(utterances) > 1:
        all_ids = {d: [u.id for u in utts] for d, utts in utterances.items()}
        cross = _cross_domain(all_ids, content, splits, max_examples)
    audit: dict[str, Any] = {
        "protocol": protocol,
        "speaker_dependent": any(a["speaker_dependent"] for a in domains.values()),
        "domains": domains,
        "cross_domain": cross,
    }
    audit["findings"] = _findings(audit)
    audit["notes"] = _notes(audit)
    audit["clean"] = not audit["findings"]
    audit["seconds"] = round(time.perf_counter() - t0, 4)
    return audit

"""The manifest record: one utterance of one speaker with one emotion label."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from serkit.errors import DatasetError

__all__ = ["Utterance", "check_unique_ids", "read_jsonl", "write_jsonl"]


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance.

    Attributes:
        id: unique within its dataset (e.g. the file stem, or ``speaker/stem``).
        path: absolute path of the audio file.
        label: canonical emotion name (see :mod:`serkit.data.labels`).
        speaker: speaker id; speaker-independent splits never share one across sets.
        language: ISO 639 code (or a pseudo-language id for synthetic data).
        duration: seconds, when known without decoding.
        meta: free-form extras (``split``/``fold`` columns of manifests, corpus fields).
    """

    id: str
    path: str
    label: str
    speaker: str
    language: str = "und"
    duration: float | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Utterance:
        known = {
            k: row[k]
            for k in ("id", "path", "label", "speaker", "language", "duration")
            if k in row
        }
        meta = dict(row.get("meta") or {})
        return cls(**known, meta=meta)


def check_unique_ids(utterances: Sequence[Utterance], source: str) -> None:
    """Raise :class:`DatasetError` naming the duplicated ids, if any."""
    seen: set[str] = set()
    dups: list[str] = []
    for u in utterances:
        if u.id in seen:
            dups.append(u.id)
        seen.add(u.id)
    if dups:
        shown = ", ".join(sorted(set(dups))[:10])
        raise DatasetError(f"{source}: duplicate utterance ids ({len(dups)}): {shown}")


def write_jsonl(utterances: Iterable[Utterance], path: str | os.PathLike[str]) -> None:
    """Write a manifest atomically (temp file + rename)."""
    from serkit.io import atomic_write_text

    text = "".join(json.dumps(u.to_dict(), ensure_ascii=False) + "\n" for u in utterances)
    atomic_write_text(Path(path), text)


def read_jsonl(path: str | os.PathLike[str]) -> list[Utterance]:
    """Read a manifest written by :func:`write_jsonl`."""
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(Utterance.from_dict(json.loads(line)))
            except (ValueError, TypeError) as err:
                raise DatasetError(f"{path}:{i}: not a manifest record: {err}") from err
    return out

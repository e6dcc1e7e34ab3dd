"""The ``manifest`` dataset: a CSV or JSONL file listing path, label and speaker."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from serkit.data.labels import canonical_label
from serkit.data.utterance import Utterance, check_unique_ids
from serkit.errors import DatasetError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.dataset import Dataset

__all__ = ["ManifestDataset"]

_REQUIRED = ("path", "label", "speaker")
_CORE = ("id", "path", "label", "speaker", "language", "duration")


class ManifestDataset(Dataset):
    """Any corpus described by a CSV (header row) or JSONL file: path, label, speaker[, language, id, split, fold].

    Relative paths resolve against ``root`` (default: the manifest's folder). Extra
    columns (``split``, ``fold``, anything else) are kept in ``Utterance.meta`` and are
    used by the ``predefined`` protocol.
    """

    name: ClassVar[str] = "manifest"
    how_to_get: ClassVar[str] = "write a CSV/JSONL manifest with columns path,label,speaker"

    class Params(ComponentParams):
        path: str = Field(description="The manifest file (.csv or .jsonl).")
        root: str | None = Field(
            None,
            description="Folder that relative audio paths resolve against; default: the manifest's folder.",
        )
        language: str = Field(
            "und", description="Language code for rows without a 'language' column."
        )
        label_map: dict[str, str] = Field(
            default_factory=dict,
            description="Corpus label -> canonical label, applied before the built-in aliases.",
        )
        labels: list[str] | None = Field(
            None,
            description="Declared label set; rows with other labels are an error. Default: whatever occurs.",
        )
        check_files: bool = Field(True, description="Fail when listed audio files do not exist.")

    def _rows(self) -> list[tuple[int, dict[str, Any]]]:
        p = Path(self.params.path).expanduser()
        if not p.is_file():
            raise DatasetError(f"manifest {p}: file not found")
        text = p.read_text(encoding="utf-8-sig")
        rows: list[tuple[int, dict[str, Any]]] = []
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            for i, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DatasetError(f"manifest {p}:{i}: not JSON ({err.msg})") from None
                if not isinstance(row, dict):
                    raise DatasetError(f"manifest {p}:{i}: expected a JSON object per line")
                rows.append((i, row))
        elif p.suffix.lower() in (".csv", ".tsv"):
            delim = "\t" if p.suffix.lower() == ".tsv" else ","
            reader = csv.DictReader(text.splitlines(), delimiter=delim)
            header = reader.fieldnames or []
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise DatasetError(
                    f"manifest {p}: missing column(s) {', '.join(missing)}; "
                    f"found {', '.join(header) or '(no header)'}; expected path,label,speaker"
                )
            rows = [(i, dict(r)) for i, r in enumerate(reader, 2)]
        else:
            raise DatasetError(
                f"manifest {p}: unsupported extension {p.suffix!r}; use .csv, .tsv or .jsonl"
            )
        return rows

    def utterances(self) -> list[Utterance]:
        p = Path(self.params.path).expanduser()
        root = Path(self.params.root).expanduser() if self.params.root else p.parent
        declared = set(self.params.labels) if self.params.labels else None
        out: list[Utterance] = []
        problems: list[str] = []
        for line, row in self._rows():
            missing = [c for c in _REQUIRED if not str(row.get(c) or "").strip()]
            if missing:
                problems.append(f"line {line}: empty {', '.join(missing)}")
                continue
            rel = str(row["path"]).strip()
            audio = (root / rel) if not Path(rel).is_absolute() else Path(rel)
            label = canonical_label(str(row["label"]), self.params.label_map)
            if declared is not None and label not in declared:
                problems.append(
                    f"line {line}: label {row['label']!r} ({label}) is not in the declared set "
                    f"{sorted(declared)}"
                )
                continue
            if self.params.check_files and not audio.is_file():
                problems.append(f"line {line}: audio file {audio} not found")
                continue
            uid = str(row.get("id") or "").strip() or str(Path(rel).with_suffix("").as_posix())
            duration = row.get("duration")
            meta = {k: v for k, v in row.items() if k not in _CORE and v not in (None, "")}
            out.append(
                Utterance(
                    id=uid,
                    path=str(audio.resolve()),
                    label=label,
                    speaker=str(row["speaker"]).strip(),
                    language=str(row.get("language") or self.params.language),
                    duration=float(duration) if duration not in (None, "") else None,
                    meta=meta,
                )
            )
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise DatasetError(f"manifest {p}: {len(problems)} bad row(s):\n  {shown}{more}")
        if not out:
            raise DatasetError(f"manifest {p}: no utterances")
        check_unique_ids(out, f"manifest {p}")
        return out

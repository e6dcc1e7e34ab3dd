"""The ``manifest`` dataset: a CSV or JSONL file listing path, label and speaker."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

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

    Every bad row is reported at once (line numbers of the file): an empty or non-text
    path/label/speaker, a label outside the declared ``labels``, a missing audio file, a
    duration that is not a positive number, a CSV row with more fields than the header;
    then duplicate utterance ids, then audio files listed on several lines.
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
            description="Corpus label -> canonical label, applied before the built-in aliases (keys match "
            "whatever the case).",
        )
        labels: list[str] | None = Field(
            None,
            min_length=1,
            description="Declared label set (mapped like the rows' labels); rows with other labels are an "
            "error. Default: whatever occurs; a run then refuses labels that are not serkit emotions.",
        )
        check_files: bool = Field(True, description="Fail when listed audio files do not exist.")

        @field_validator("label_map")
        @classmethod
        def _no_empty_targets(cls, v: dict[str, str]) -> dict[str, str]:
            empty = sorted(k for k, target in v.items() if not target.strip())
            if empty:
                raise ValueError(f"label_map maps {empty} to an empty label")
            return v

    def _rows(self) -> list[tuple[int, dict[str, Any]]]:
        p = Path(self.params.path).expanduser()
        if not p.is_file():
            raise DatasetError(f"manifest {p}: file not found")
        try:
            text = p.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            raise DatasetError(f"manifest {p}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        except OSError as err:
            raise DatasetError(f"manifest {p}: cannot read ({err.strerror or err})") from None
        rows: list[tuple[int, dict[str, Any]]] = []
        if p.suffix.lower() in (".jsonl", ".ndjson"):
            for i, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DatasetError(f"manifest {p}:{i}: not JSON ({err.msg})") from None
                except RecursionError:
                    raise DatasetError(f"manifest {p}:{i}: JSON nested too deeply") from None
                if not isinstance(row, dict):
                    raise DatasetError(f"manifest {p}:{i}: expected a JSON object per line")
                rows.append((i, row))
        elif p.suffix.lower() in (".csv", ".tsv"):
            delim = "\t" if p.suffix.lower() == ".tsv" else ","
            reader = csv.DictReader(text.splitlines(), delimiter=delim)
            try:
                header = reader.fieldnames or []
                missing = [c for c in _REQUIRED if c not in header]
                if missing:
                    raise DatasetError(
                        f"manifest {p}: missing column(s) {', '.join(missing)}; "
                        f"found {', '.join(header) or '(no header)'}; expected path,label,speaker"
                    )
                rows = [(reader.line_num, dict(r)) for r in reader]
            except csv.Error as err:
                raise DatasetError(f"manifest {p}:{reader.line_num + 1}: not CSV ({err})") from None
        else:
            raise DatasetError(
                f"manifest {p}: unsupported extension {p.suffix!r}; use .csv, .tsv or .jsonl"
            )
        return rows

    def utterances(self) -> list[Utterance]:
        p = Path(self.params.path).expanduser()
        root = Path(self.params.root).expanduser() if self.params.root else p.parent
        declared = (
            {canonical_label(lab, self.params.label_map) for lab in self.params.labels} if self.params.labels else None
        )
        out: list[Utterance] = []
        problems: list[str] = []
        lines_of: dict[str, list[int]] = {}  # audio file -> manifest lines
        for line, row in self._rows():
            if None in row:  # csv.DictReader's key for fields beyond the header
                problems.append(f"line {line}: {len(row[None])} more field(s) than the header has columns")
                continue
            values = {c: _text(row.get(c)) for c in (*_REQUIRED, "id", "language")}
            wrong = [f"{c} ({type(row.get(c)).__name__})" for c, v in values.items() if v is None]
            if wrong:
                problems.append(f"line {line}: expected text or a number for {', '.join(wrong)}")
                continue
            missing = [c for c in _REQUIRED if not values[c]]
            if missing:
                problems.append(f"line {line}: empty {', '.join(missing)}")
                continue
            rel = str(values["path"])
            audio = (root / rel) if not Path(rel).is_absolute() else Path(rel)
            label = canonical_label(str(values["label"]), self.params.label_map)
            if declared is not None and label not in declared:
                problems.append(
                    f"line {line}: label {row['label']!r} ({label}) is not in the declared set "
                    f"{sorted(declared)}"
                )
                continue
            if self.params.check_files and not audio.is_file():
                problems.append(f"line {line}: audio file {audio} not found")
                continue
            resolved = str(audio.resolve())
            lines_of.setdefault(resolved, []).append(line)
            duration = _duration(row.get("duration"))
            if duration is False:
                problems.append(f"line {line}: duration {row.get('duration')!r} is not a positive number of seconds")
                continue
            uid = values["id"] or str(Path(rel).with_suffix("").as_posix())
            meta = {k: v for k, v in row.items() if k not in _CORE and v not in (None, "")}
            out.append(
                Utterance(
                    id=uid,
                    path=resolved,
                    label=label,
                    speaker=str(values["speaker"]),
                    language=values["language"] or self.params.language,
                    duration=duration,
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
        repeated = [(f, lines) for f, lines in lines_of.items() if len(lines) > 1]
        if repeated:
            shown = "\n  ".join(f"{f} (lines {', '.join(map(str, lines))})" for f, lines in repeated[:20])
            raise DatasetError(
                f"manifest {p}: {len(repeated)} audio file(s) listed on several lines:\n  {shown}\n"
                "each file must be one utterance (one label, one speaker)"
            )
        return out


def _text(value: Any) -> str | None:
    """A cell as stripped text ("" when absent); None when it is not text or a number (JSONL lists, objects)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _duration(value: Any) -> float | bool | None:
    """Seconds as a float, None when absent, False when not a positive finite number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return False
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return False
    return seconds if math.isfinite(seconds) and seconds > 0 else False

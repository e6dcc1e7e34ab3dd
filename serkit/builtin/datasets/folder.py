"""The ``folder`` dataset: one subfolder per emotion, audio files inside."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from serkit.data.labels import canonical_label
from serkit.data.utterance import Utterance, check_unique_ids
from serkit.errors import DatasetError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.dataset import Dataset

__all__ = ["FolderDataset"]


class FolderDataset(Dataset):
    """A corpus laid out as ``root/<emotion>/**/<file>.wav``; the folder name is the label.

    Speakers come from ``speaker_regex`` applied to the path relative to the emotion
    folder (first capture group), e.g. ``'^([^/]+)/'`` for ``angry/spk01/x.wav`` or
    ``'^(S[MF]\\d+)_'`` for ``angry/SM1_F01_A001.wav``. Without it every file has speaker
    ``unknown``, which the speaker-independent protocol refuses.

    Hidden files and folders (``.x``, macOS ``._x`` resource forks) and ``__MACOSX`` folders
    are ignored. With ``labels``, an emotion folder whose label is not declared is an error
    (a stray ``misc/`` folder does not silently become a class).
    """

    name: ClassVar[str] = "folder"
    how_to_get: ClassVar[str] = "put your audio under root/<emotion>/ (one subfolder per emotion)"

    class Params(ComponentParams):
        root: str = Field(description="Folder with one subfolder per emotion.")
        extensions: list[str] = Field(
            default_factory=lambda: [".wav", ".flac", ".ogg", ".mp3"],
            description="Audio file extensions to include (case-insensitive).",
        )
        speaker_regex: str | None = Field(
            None,
            description="Regex on the path below the emotion folder; group 1 is the speaker id.",
        )
        language: str = Field("und", description="Language code of the corpus.")
        label_map: dict[str, str] = Field(
            default_factory=dict,
            description="Folder name -> canonical label, before the built-in aliases (keys match whatever the "
            "case).",
        )
        labels: list[str] | None = Field(
            None,
            min_length=1,
            description="Declared label set (mapped like folder names); a folder with another label is an "
            "error. Default: every subfolder is a label; a run then refuses labels that are not serkit emotions.",
        )

        @field_validator("label_map")
        @classmethod
        def _no_empty_targets(cls, v: dict[str, str]) -> dict[str, str]:
            empty = sorted(k for k, target in v.items() if not target.strip())
            if empty:
                raise ValueError(f"label_map maps {empty} to an empty label")
            return v

        @field_validator("speaker_regex")
        @classmethod
        def _compiles(cls, v: str | None) -> str | None:
            if v is None:
                return v
            try:
                rx = re.compile(v)
            except re.error as err:
                raise ValueError(f"speaker_regex {v!r} is not a valid regex: {err}") from None
            if rx.groups < 1:
                raise ValueError(f"speaker_regex {v!r} needs a capture group for the speaker id")
            return v

    def utterances(self) -> list[Utterance]:
        root = Path(self.params.root).expanduser()
        if not root.is_dir():
            raise DatasetError(f"folder dataset: root {root} does not exist or is not a folder")
        exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in self.params.extensions}
        rx = re.compile(self.params.speaker_regex) if self.params.speaker_regex else None
        declared = (
            {canonical_label(lab, self.params.label_map) for lab in self.params.labels} if self.params.labels else None
        )
        out: list[Utterance] = []
        unmatched: list[str] = []
        undeclared: list[str] = []
        for emo_dir in sorted(
            d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "__MACOSX"
        ):
            label = canonical_label(emo_dir.name, self.params.label_map)
            if declared is not None and label not in declared:
                undeclared.append(f"{emo_dir.name}/ ({label})")
                continue
            for f in sorted(emo_dir.rglob("*")):
                if not f.is_file() or f.suffix.lower() not in exts:
                    continue
                rel = f.relative_to(emo_dir).as_posix()
                if any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/")):
                    continue
                speaker = "unknown"
                if rx is not None:
                    m = rx.search(rel)
                    if m is None:
                        unmatched.append(f"{emo_dir.name}/{rel}")
                        continue
                    speaker = m.group(1)
                out.append(
                    Utterance(
                        id=f"{emo_dir.name}/{Path(rel).with_suffix('').as_posix()}",
                        path=str(f.resolve()),
                        label=label,
                        speaker=speaker,
                        language=self.params.language,
                    )
                )
        if undeclared:
            raise DatasetError(
                f"folder dataset {root}: emotion folder(s) {', '.join(undeclared)} are not in the declared "
                f"labels {sorted(declared or ())}; remove them, map them with label_map, or declare them"
            )
        if unmatched:
            shown = ", ".join(unmatched[:10])
            raise DatasetError(
                f"folder dataset {root}: speaker_regex {self.params.speaker_regex!r} does not match "
                f"{len(unmatched)} file(s): {shown}"
            )
        if not out:
            raise DatasetError(
                f"folder dataset {root}: no audio files ({', '.join(sorted(exts))}) in emotion subfolders"
            )
        check_unique_ids(out, f"folder dataset {root}")
        return out

"""The ``iemocap`` dataset: IEMOCAP, English dyadic sessions, in the usual 4-class setting."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from serkit.data.corpus import BadName, CorpusDataset, CorpusParams, ParsedName
from serkit.data.utterance import Utterance

__all__ = ["IemocapDataset"]

# "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]"
_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]")
# Ses01F_impro01_F000, Ses01F_script01_1b_M012, Ses05M_impro05a_F001
_UTT = re.compile(r"^Ses(\d{2})[FM]_(.+)_([FM])(\d{3})$")
_WAV = re.compile(r"^Session(\d)/sentences/wav/([^/]+)/([^/]+)$")

#: Every categorical label of the EmoEvaluation files (majority vote, "xxx" = no majority).
_ALL_CODES = frozenset({"neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea", "dis", "oth", "xxx"})
_FOUR_CLASS = {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"}


class IemocapDataset(CorpusDataset):
    """IEMOCAP in the 4-class setting: neutral, happy (+ excited), angry, sad; 10 speakers.

    Driven by the annotation files ``Session{1..5}/dialog/EmoEvaluation/<dialog>.txt``
    (lines ``[start - end]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[V, A, D]``), not by file
    names; the audio of utterance ``Ses01F_impro01_F000`` is
    ``Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav``. The speaker is the
    session plus the gender of the utterance's speaker (the letter of the last id part:
    ``Ses01F_impro01_M003`` -> ``Ses01M``), so there are two speakers per session and
    leave-one-session-out is the usual speaker-independent protocol. Labels other than
    neu/hap/exc/ang/sad (fru, sur, fea, dis, oth, xxx) are excluded, not problems; an
    annotated 4-class utterance whose wav is missing is a problem. The full 4-class set
    (excited merged into happy) has 5531 utterances. ``duration`` comes from the turn
    times; ``meta``: ``session``, ``dialog``, ``dialog_type`` (improvised/scripted),
    ``gender``, ``emotion_code``, ``start``, ``end``, ``vad`` (valence, activation,
    dominance).
    """

    name: ClassVar[str] = "iemocap"
    language: ClassVar[str] = "en"
    homepage: ClassVar[str] = "https://sail.usc.edu/iemocap/"
    licence: ClassVar[str] = "research licence from USC SAIL (release form required; no redistribution)"
    citation: ClassVar[str] = (
        "C. Busso, M. Bulut, C.-C. Lee, A. Kazemzadeh, E. Mower, S. Kim, J. N. Chang, S. Lee, "
        "S. S. Narayanan. IEMOCAP: interactive emotional dyadic motion capture database. "
        "Language Resources and Evaluation 42(4), 2008, pp. 335-359."
    )
    how_to_get: ClassVar[str] = (
        "request the corpus through the release form at https://sail.usc.edu/iemocap/ and unpack it; "
        "pass the IEMOCAP_full_release folder (holding Session1 ... Session5) as root."
    )
    expected_labels: ClassVar[tuple[str, ...]] = ("angry", "happy", "neutral", "sad")
    naming: ClassVar[str] = (
        "Session<n>/dialog/EmoEvaluation/<dialog>.txt listing utterances whose audio is "
        "Session<n>/sentences/wav/<dialog>/<utterance>.wav"
    )

    problems_intro: ClassVar[str] = "{n} problem(s) under {root} (expected {naming})"
    problems_advice: ClassVar[str] = (
        "unpack the missing parts, list fewer sessions (e.g. sessions: [1, 2]), or set strict: false to skip "
        "the utterances concerned"
    )

    class Params(CorpusParams):
        """IEMOCAP parameters."""

        sessions: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5], description="Sessions to read (1-5).")
        dialogs: Literal["all", "improvised", "scripted"] = Field(
            "all", description="Keep improvised dialogs, scripted ones, or both."
        )
        merge_excited: bool = Field(
            True, description="Count 'exc' (excited) as happy, the usual 4-class setting; false drops it."
        )

        @field_validator("sessions")
        @classmethod
        def _valid_sessions(cls, v: list[int]) -> list[int]:
            bad = [s for s in v if s not in (1, 2, 3, 4, 5)]
            if bad:
                raise ValueError(f"sessions must be among 1-5, got {bad}")
            if not v:
                raise ValueError("sessions must name at least one session (1-5)")
            return sorted(set(v))

    def __init__(self, params: CorpusParams | None = None, **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._annotations: dict[str, tuple[str, float, float, list[float], str]] = {}

    # -- annotations ---------------------------------------------------------------------
    def _read_annotations(self, root: Path) -> list[tuple[str, str]]:
        """Fill ``self._annotations`` (id -> code, start, end, vad, source); (id, source) in order."""
        self._annotations = {}
        order: list[tuple[str, str]] = []
        for session in self.params.sessions:
            folder = root / f"Session{session}" / "dialog" / "EmoEvaluation"
            rel_folder = folder.relative_to(root).as_posix()
            if not folder.is_dir():
                self.problems.append(f"{rel_folder}: folder missing (session {session} not unpacked?)")
                continue
            txts = sorted(
                p for p in folder.iterdir() if p.is_file() and p.suffix == ".txt" and not p.name.startswith(".")
            )
            if not txts:
                self.problems.append(f"{rel_folder}: no <dialog>.txt annotation files")
            for txt in txts:
                source = f"{rel_folder}/{txt.name}"
                for lineno, line in enumerate(txt.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    if not line.startswith("["):
                        continue
                    m = _LINE.match(line)
                    if m is None:
                        self.problems.append(f"{source}:{lineno}: unreadable annotation line {line!r}")
                        continue
                    start, end, utt, code, vad = m.groups()
                    try:
                        vad_values = [float(x) for x in vad.split(",")]
                        times = (float(start), float(end))
                    except ValueError:
                        self.problems.append(f"{source}:{lineno}: unreadable annotation line {line!r}")
                        continue
                    self._annotations[utt] = (code, times[0], times[1], vad_values, source)
                    order.append((utt, source))
        return order

    def parse(self, rel_path: str) -> ParsedName | None:
        """Parse ``Session<n>/sentences/wav/<dialog>/<utterance>.wav`` (annotations must be read).

        The label is the 4-class canonical name, or the raw code for the labels
        :meth:`keep` drops.
        """
        m = _WAV.match(rel_path)
        if m is None:
            return None
        session, dialog, fname = m.groups()
        utt = PurePosixPath(fname).stem
        um = _UTT.match(utt)
        if um is None or not utt.startswith(dialog + "_") or int(um.group(1)) != int(session):
            return None
        if utt not in self._annotations:
            raise BadName("no entry in the EmoEvaluation files")
        code, start, end, vad, _ = self._annotations[utt]
        if code not in _ALL_CODES:
            raise BadName(f"unknown emotion code {code!r} (expected one of {', '.join(sorted(_ALL_CODES))})")
        if code == "exc" and self.params.merge_excited:
            label = "happy"
        else:
            label = _FOUR_CLASS.get(code, code)
        gender = um.group(3)
        return ParsedName(
            speaker=f"Ses{int(session):02d}{gender}",
            label=label,
            id=utt,
            duration=round(end - start, 4),
            meta={
                "session": int(session),
                "dialog": dialog,
                "dialog_type": "improvised" if "impro" in dialog else "scripted",
                "gender": "female" if gender == "F" else "male",
                "emotion_code": code,
                "start": start,
                "end": end,
                "vad": vad,
            },
        )

    def keep(self, parsed: ParsedName) -> bool:
        if parsed.label not in self.expected_labels:
            return False
        wanted = self.params.dialogs
        return wanted == "all" or parsed.meta["dialog_type"] == wanted

    # -- listing -----------------------------------------------------------------------
    def utterances(self) -> list[Utterance]:
        """The annotated 4-class utterances of the chosen sessions and dialogs, in file order.

        Raises:
            DatasetError: ``root`` is missing; (when ``strict``) a session folder is missing,
                an annotation line is unreadable or a kept utterance has no wav; nothing found.
        """
        root = self.root()
        self.problems = []
        self.excluded = []
        order = self._read_annotations(root)
        out: list[Utterance] = []
        for utt, source in order:
            um = _UTT.match(utt)
            if um is None:
                self.problems.append(f"{source}: utterance id {utt!r} does not look like Ses01F_impro01_F000")
                continue
            dialog = utt[: utt.rindex("_")]
            rel = f"Session{int(um.group(1))}/sentences/wav/{dialog}/{utt}.wav"
            parsed = self._parse_or_record(rel)
            if parsed is None:
                continue
            if not self.keep(parsed):
                self.excluded.append(rel)
                continue
            if not (root / rel).is_file():
                self.problems.append(f"{rel}: listed in {source} but the wav is missing")
                continue
            out.append(self.make_utterance(root, rel, parsed))
        self.finish(root, out, len(order))
        return out

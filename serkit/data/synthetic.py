"""A deterministic synthetic emotional-speech corpus (no download, seconds to generate).

Utterances are strings of consonant-vowel syllables produced by a source-filter
synthesiser: a Rosenberg-style glottal pulse train follows an F0 contour (declination,
pitch accents or lexical tones, a final rise or fall, drift, tremor), with jitter,
shimmer, creak and aspiration noise; a one-pole filter sets the spectral tilt; each vowel
is shaped by a cascade of formant resonators and an amplitude envelope; consonants are
band-limited noise (fricatives, stop bursts) or a voiced murmur (nasals). A little
background noise is added.

* **Pseudo-languages** (:data:`PSEUDO_LANGUAGES`) differ in vowel inventory (formant
  triples), consonants, speaking rate and rhythm (syllable-, stress- or mora-timed, or
  lexical tones).
* **Emotions** (:data:`EMOTION_PROFILES`) differ the way acted emotions do: pitch level
  and range, final contour, tempo, loudness, jitter/shimmer, spectral tilt,
  breathiness, creak, tremor and articulation.
* **Speakers** (:func:`speaker_voice`) have their own base F0, vocal-tract length,
  rate, loudness, voice quality and expressiveness; every utterance also draws its own
  emotional intensity, so classes overlap.

Every random draw comes from a generator seeded by ``(seed, language, speaker, emotion,
index)``, so the same arguments give byte-identical WAVs and adding a language or an
emotion never changes the audio of the others. numpy and scipy are imported lazily.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serkit.data.utterance import Utterance
from serkit.errors import DatasetError
from serkit.io import atomic_write_json

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_EMOTIONS",
    "EMOTION_PROFILES",
    "GENERATOR_VERSION",
    "MAX_DURATION",
    "MIN_DURATION",
    "PSEUDO_LANGUAGES",
    "Consonant",
    "EmotionProfile",
    "PseudoLanguage",
    "SpeakerVoice",
    "generate_corpus",
    "speaker_id",
    "speaker_voice",
    "synthesize_utterance",
    "utterance_id",
]

#: Bumped whenever the same arguments would give different audio (part of the marker).
GENERATOR_VERSION = "1"
#: Shortest and longest utterance, in seconds (every utterance lies within).
MIN_DURATION = 1.0
MAX_DURATION = 2.5
#: The emotions a corpus has when none are given.
DEFAULT_EMOTIONS: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

_MARKER = "corpus.json"
_MAX_SPEAKERS = 99
_MAX_PER_CLASS = 999


# --------------------------------------------------------------------------------------
# Pseudo-languages
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Consonant:
    """A syllable onset.

    Attributes:
        symbol: IPA-like name (documentation only).
        manner: ``"fricative"`` (band noise), ``"stop"`` (closure + burst) or ``"nasal"``
            (voiced low murmur).
        centre_hz: centre of the noise band (fricatives, stops) or of the murmur (nasals).
        bandwidth_hz: width of that band.
        duration: seconds at a neutral tempo.
    """

    symbol: str
    manner: str
    centre_hz: float
    bandwidth_hz: float
    duration: float


@dataclass(frozen=True)
class PseudoLanguage:
    """Phonetic inventory and prosodic habits of one pseudo-language.

    Attributes:
        id: short id used in utterance and speaker ids (``"xa"``).
        description: one line for documentation and reports.
        vowels: ``(symbol, F1, F2, F3)`` of an adult male voice, in Hz.
        consonants: onset inventory.
        syllable_rate: syllables per second of a neutral average speaker.
        rhythm: ``"syllable"`` (even durations), ``"stress"`` (long stressed, short and
            reduced unstressed syllables) or ``"mora"`` (very even, some long vowels).
        stress_lengthening: duration factor of stressed syllables.
        reduction: how far unstressed vowels move towards schwa (0 = not at all).
        accent_st: size of a pitch accent on stressed syllables, in semitones.
        tones: lexical tones as ``(start, end)`` semitone offsets; empty = no tones.
        final_lengthening: duration factor of the utterance-final vowel.
        onsetless: probability that a syllable has no consonant.
        setting: the language's articulatory setting, as F1/F2/F3 multipliers applied to
            every vowel (e.g. pharyngealisation raises F1 and lowers F2).
        nasality: 0..1, nasal coupling of vowels (a low nasal formant, a damped F1).
    """

    id: str
    description: str
    vowels: tuple[tuple[str, float, float, float], ...]
    consonants: tuple[Consonant, ...]
    syllable_rate: float
    rhythm: str
    stress_lengthening: float
    reduction: float
    accent_st: float
    tones: tuple[tuple[float, float], ...] = ()
    final_lengthening: float = 1.3
    onsetless: float = 0.1
    setting: tuple[float, float, float] = (1.0, 1.0, 1.0)
    nasality: float = 0.0


def _fric(symbol: str, centre: float, bw: float, dur: float = 0.09) -> Consonant:
    return Consonant(symbol, "fricative", centre, bw, dur)


def _stop(symbol: str, centre: float, bw: float, dur: float = 0.07) -> Consonant:
    return Consonant(symbol, "stop", centre, bw, dur)


def _nasal(symbol: str, centre: float, dur: float = 0.06) -> Consonant:
    return Consonant(symbol, "nasal", centre, 120.0, dur)


#: The pseudo-languages, by id.
PSEUDO_LANGUAGES: dict[str, PseudoLanguage] = {
    lang.id: lang
    for lang in (
        PseudoLanguage(
            id="xa",
            description="syllable-timed, five vowels /i e a o u/, moderate rate",
            vowels=(
                ("i", 280, 2250, 2900),
                ("e", 420, 2000, 2650),
                ("a", 750, 1300, 2500),
                ("o", 450, 850, 2500),
                ("u", 300, 750, 2350),
            ),
            consonants=(
                _fric("s", 5500, 2500),
                _stop("t", 4000, 3000),
                _stop("k", 2000, 1400),
                _stop("p", 900, 1000),
                _nasal("m", 250),
                _nasal("n", 300),
            ),
            syllable_rate=6.0,
            rhythm="syllable",
            stress_lengthening=1.1,
            reduction=0.0,
            accent_st=3.5,
        ),
        PseudoLanguage(
            id="xb",
            description="stress-timed, reduced unstressed vowels, front rounded vowels",
            vowels=(
                ("i", 270, 2300, 3000),
                ("ɪ", 400, 1950, 2550),
                ("y", 270, 1750, 2150),
                ("ɛ", 580, 1800, 2550),
                ("ø", 400, 1500, 2200),
                ("a", 720, 1250, 2500),
                ("ɔ", 580, 900, 2450),
                ("u", 300, 850, 2250),
            ),
            consonants=(
                _fric("ʃ", 3000, 1500, 0.1),
                _fric("f", 6500, 3000, 0.08),
                _stop("t", 4200, 3000, 0.08),
                _stop("k", 2100, 1400, 0.08),
                _nasal("n", 300),
                _nasal("m", 250),
            ),
            syllable_rate=5.0,
            rhythm="stress",
            stress_lengthening=1.45,
            reduction=0.45,
            accent_st=4.0,
            final_lengthening=1.4,
            onsetless=0.15,
            setting=(0.92, 1.06, 0.85),
        ),
        PseudoLanguage(
            id="xc",
            description="mora-timed, five vowels with unrounded /ɯ/, fast and even",
            vowels=(
                ("a", 700, 1200, 2600),
                ("i", 300, 2300, 3000),
                ("ɯ", 330, 1350, 2350),
                ("e", 470, 1950, 2600),
                ("o", 470, 950, 2500),
            ),
            consonants=(
                _fric("s", 6000, 2500, 0.08),
                _fric("h", 1600, 2400, 0.06),
                _stop("k", 2000, 1400, 0.06),
                _stop("t", 4000, 3000, 0.06),
                _nasal("n", 300, 0.05),
            ),
            syllable_rate=7.0,
            rhythm="mora",
            stress_lengthening=1.0,
            reduction=0.0,
            accent_st=3.0,
            final_lengthening=1.2,
            onsetless=0.12,
            setting=(1.0, 0.9, 1.1),
            nasality=0.7,
        ),
        PseudoLanguage(
            id="xd",
            description="three vowels, slow, back fricatives and emphatic (low-F2) vowels",
            vowels=(
                ("i", 300, 2150, 2800),
                ("a", 680, 1500, 2550),
                ("u", 320, 800, 2300),
                ("ɑ", 700, 1050, 2500),
                ("ʊ", 380, 950, 2350),
            ),
            consonants=(
                _fric("ħ", 1200, 800, 0.1),
                _fric("x", 1800, 1000, 0.1),
                _fric("s", 4500, 2000, 0.1),
                _stop("q", 1400, 900, 0.08),
                _stop("b", 600, 800, 0.07),
                _nasal("n", 300, 0.07),
            ),
            syllable_rate=4.6,
            rhythm="stress",
            stress_lengthening=1.3,
            reduction=0.15,
            accent_st=3.5,
            final_lengthening=1.35,
            setting=(1.15, 0.86, 0.97),
        ),
        PseudoLanguage(
            id="xe",
            description="tone language: four lexical tones on every syllable",
            vowels=(
                ("a", 800, 1350, 2650),
                ("i", 290, 2300, 3050),
                ("u", 320, 700, 2300),
                ("ə", 520, 1400, 2500),
                ("y", 280, 1900, 2300),
            ),
            consonants=(
                _fric("ɕ", 4000, 2000),
                _fric("ʂ", 3200, 1500),
                _stop("p", 900, 1000),
                _stop("t", 4000, 3000),
                _stop("k", 2000, 1400),
                _nasal("m", 250),
                _nasal("n", 300),
            ),
            syllable_rate=5.3,
            rhythm="syllable",
            stress_lengthening=1.05,
            reduction=0.0,
            accent_st=1.0,
            tones=((2.5, 2.5), (-1.0, 3.0), (-2.5, -3.5), (3.0, -3.0)),
            final_lengthening=1.25,
            onsetless=0.05,
            setting=(0.9, 1.12, 1.06),
        ),
    )
}


# --------------------------------------------------------------------------------------
# Emotions
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmotionProfile:
    """How an emotion changes a speaker's neutral voice (at full expressiveness).

    Attributes:
        f0_shift: mean pitch change, semitones.
        f0_range: multiplier of pitch excursions (accents, declination, drift).
        final_st: pitch movement over the end of the utterance (+ rising, - falling).
        tempo: speaking-rate factor.
        loudness_db: level change, dB.
        jitter: added relative cycle-to-cycle F0 perturbation.
        shimmer: added relative cycle-to-cycle amplitude perturbation.
        tilt: spectral tilt, + tense/pressed (flatter), - soft (steeper); about -1..1.
        breathiness: added aspiration noise (relative to the voiced source).
        creak: 0..1, irregular alternating pulses and lowered pitch (strongest at the end).
        tremor_st: depth of a 4.5-7 Hz F0 tremor, semitones.
        articulation: + hyper-articulated (expanded vowels), - slurred (centralised).
        f1_raise: relative F1 raise (jaw opening with vocal effort).
        smile: relative F2/F3 raise (lip spreading).
    """

    f0_shift: float = 0.0
    f0_range: float = 1.0
    final_st: float = 0.0
    tempo: float = 1.0
    loudness_db: float = 0.0
    jitter: float = 0.0
    shimmer: float = 0.0
    tilt: float = 0.0
    breathiness: float = 0.0
    creak: float = 0.0
    tremor_st: float = 0.0
    articulation: float = 0.0
    f1_raise: float = 0.0
    smile: float = 0.0


#: Emotion profiles by canonical label (see :mod:`serkit.data.labels`).
EMOTION_PROFILES: dict[str, EmotionProfile] = {
    "neutral": EmotionProfile(),
    "angry": EmotionProfile(
        f0_shift=4.0,
        f0_range=1.5,
        final_st=-2.0,
        tempo=1.12,
        loudness_db=8.0,
        jitter=0.006,
        shimmer=0.04,
        tilt=0.9,
        creak=0.05,
        articulation=0.3,
        f1_raise=0.12,
    ),
    "happy": EmotionProfile(
        f0_shift=4.5,
        f0_range=2.0,
        final_st=1.0,
        tempo=1.08,
        loudness_db=2.0,
        jitter=0.003,
        shimmer=0.02,
        tilt=0.35,
        breathiness=0.05,
        articulation=0.15,
        f1_raise=0.03,
        smile=0.06,
    ),
    "sad": EmotionProfile(
        f0_shift=-2.0,
        f0_range=0.45,
        final_st=-1.0,
        tempo=0.8,
        loudness_db=-6.0,
        jitter=0.008,
        shimmer=0.05,
        tilt=-0.7,
        breathiness=0.3,
        creak=0.1,
        tremor_st=0.2,
        articulation=-0.35,
        f1_raise=-0.04,
        smile=-0.02,
    ),
    "fear": EmotionProfile(
        f0_shift=6.0,
        f0_range=1.1,
        final_st=1.0,
        tempo=1.2,
        loudness_db=1.0,
        jitter=0.02,
        shimmer=0.06,
        tilt=0.35,
        breathiness=0.2,
        tremor_st=0.8,
        articulation=-0.1,
        smile=0.02,
    ),
    "surprise": EmotionProfile(
        f0_shift=4.0,
        f0_range=1.7,
        final_st=6.0,
        tempo=1.0,
        loudness_db=3.0,
        jitter=0.003,
        shimmer=0.02,
        tilt=0.4,
        breathiness=0.1,
        articulation=0.2,
        f1_raise=0.05,
        smile=0.03,
    ),
    "disgust": EmotionProfile(
        f0_shift=-2.0,
        f0_range=0.9,
        final_st=-3.0,
        tempo=0.8,
        loudness_db=0.0,
        jitter=0.01,
        shimmer=0.06,
        tilt=0.0,
        breathiness=0.1,
        creak=0.6,
        articulation=0.1,
    ),
    "boredom": EmotionProfile(
        f0_shift=-2.5,
        f0_range=0.3,
        final_st=-0.5,
        tempo=0.82,
        loudness_db=-3.0,
        jitter=0.004,
        shimmer=0.03,
        tilt=-0.4,
        breathiness=0.1,
        creak=0.15,
        articulation=-0.4,
    ),
    "calm": EmotionProfile(
        f0_shift=-1.0,
        f0_range=0.75,
        final_st=-1.5,
        tempo=0.92,
        loudness_db=-2.0,
        tilt=-0.3,
        breathiness=0.1,
    ),
    "contempt": EmotionProfile(
        f0_shift=-1.5,
        f0_range=1.0,
        final_st=-3.0,
        tempo=0.88,
        loudness_db=0.0,
        jitter=0.004,
        shimmer=0.03,
        tilt=0.1,
        creak=0.4,
        articulation=0.1,
    ),
}


# --------------------------------------------------------------------------------------
# Speakers and random streams
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpeakerVoice:
    """One synthetic speaker.

    Attributes:
        id: ``"<language>_s<NN>"``, unique across languages.
        sex: ``"female"`` or ``"male"`` (alternating: odd numbers are female).
        f0_hz: neutral base pitch.
        formant_scale: formant multiplier (shorter vocal tract -> larger).
        rate: speaking-rate factor.
        level_db: loudness offset.
        expressiveness: how strongly the speaker expresses emotions (about 0.45-1.15).
        tilt: habitual spectral tilt offset.
        breathiness: habitual aspiration noise.
        jitter: habitual relative F0 perturbation.
        shimmer: habitual relative amplitude perturbation.
    """

    id: str
    sex: str
    f0_hz: float
    formant_scale: float
    rate: float
    level_db: float
    expressiveness: float
    tilt: float
    breathiness: float
    jitter: float
    shimmer: float


def _rng(*key: object) -> np.random.Generator:
    """A generator seeded from a stable hash of ``key`` (independent of other keys)."""
    import numpy as np

    digest = hashlib.sha256("/".join(str(k) for k in key).encode()).digest()
    return np.random.default_rng(np.random.SeedSequence(int.from_bytes(digest[:16], "little")))


def speaker_id(language: str, index: int) -> str:
    """Id of speaker ``index`` (1-based) of ``language``: ``"xa_s03"``."""
    return f"{language}_s{index:02d}"


def utterance_id(language: str, speaker: int, emotion: str, index: int) -> str:
    """Id of an utterance (1-based speaker and index): ``"xa_s03_angry_005"``."""
    return f"{speaker_id(language, speaker)}_{emotion}_{index:03d}"


def speaker_voice(language: str, index: int, *, seed: int = 0) -> SpeakerVoice:
    """The voice of speaker ``index`` (1-based) of ``language`` for this ``seed``."""
    rng = _rng("speaker", seed, language, index)
    female = index % 2 == 1
    if female:
        f0 = float(min(max(rng.normal(205.0, 20.0), 160.0), 260.0))
        scale = float(rng.normal(1.15, 0.035))
        breath = float(rng.uniform(0.03, 0.12))
    else:
        f0 = float(min(max(rng.normal(115.0, 13.0), 85.0), 150.0))
        scale = float(rng.normal(1.0, 0.035))
        breath = float(rng.uniform(0.0, 0.08))
    return SpeakerVoice(
        id=speaker_id(language, index),
        sex="female" if female else "male",
        f0_hz=f0,
        formant_scale=scale,
        rate=float(min(max(rng.normal(1.0, 0.07), 0.85), 1.15)),
        level_db=float(min(max(rng.normal(0.0, 1.5), -3.0), 3.0)),
        expressiveness=float(rng.uniform(0.7, 1.2)),
        tilt=float(rng.normal(0.0, 0.2)),
        breathiness=breath,
        jitter=float(rng.uniform(0.003, 0.008)),
        shimmer=float(rng.uniform(0.02, 0.05)),
    )


# --------------------------------------------------------------------------------------
# Synthesis
# --------------------------------------------------------------------------------------
_SCHWA = (500.0, 1500.0, 2500.0)
_FRAME_RATE = 200.0  # F0 contour control rate, Hz


@dataclass
class _Syllable:
    """One planned syllable; times in seconds, then sample indices once placed."""

    consonant: Consonant | None
    vowel: tuple[str, float, float, float]
    stressed: bool
    tone: tuple[float, float] | None
    start: float  # consonant onset (= vowel onset without a consonant)
    c_dur: float
    v_dur: float
    c_start: int = 0
    v_start: int = 0
    v_end: int = 0


def _resonator_sos(freqs: Sequence[float], bws: Sequence[float], sr: int) -> np.ndarray:
    """Cascade of Klatt resonators (unity gain at DC) as second-order sections."""
    import numpy as np

    rows = []
    for f, bw in zip(freqs, bws, strict=True):
        if f >= 0.47 * sr:
            continue
        c = -math.exp(-2.0 * math.pi * bw / sr)
        b = 2.0 * math.exp(-math.pi * bw / sr) * math.cos(2.0 * math.pi * f / sr)
        rows.append([1.0 - b - c, 0.0, 0.0, 1.0, -b, -c])
    return np.asarray(rows, dtype=np.float64)


@functools.lru_cache(maxsize=256)
def _band_sos(centre: float, bandwidth: float, sr: int) -> np.ndarray:
    """A 2nd-order Butterworth band-pass around ``centre`` (clipped to the band)."""
    from scipy.signal import butter

    nyq = sr / 2.0
    lo = max(centre - bandwidth / 2.0, 80.0)
    hi = min(centre + bandwidth / 2.0, 0.95 * nyq)
    if hi <= lo * 1.05:  # the band falls above Nyquist: keep the top of the spectrum
        lo, hi = 0.6 * nyq, 0.95 * nyq
    return butter(2, [lo, hi], btype="band", output="sos", fs=sr)


def _raised_cosine_env(n: int, attack: int, release: int) -> np.ndarray:
    """``(n,)`` envelope rising over ``attack`` and falling over ``release`` samples."""
    import numpy as np

    env = np.ones(n)
    a = max(1, min(attack, n // 2))
    r = max(1, min(release, n - a))
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(a) + 0.5) / a)
    env[n - r :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
    return env


def _rms(x: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def _plan_syllables(
    lang: PseudoLanguage,
    rng: np.random.Generator,
    syl_dur: float,
    tempo: float,
    sr: int,
) -> tuple[list[_Syllable], int]:
    """Choose syllables and their timing; returns them and the total length in samples."""
    lead = rng.uniform(0.08, 0.2)
    trail = rng.uniform(0.1, 0.25)
    target = rng.uniform(1.2, MAX_DURATION - 0.1)
    pause_after = int(rng.integers(3, 6)) if rng.random() < 0.35 else -1
    pause = rng.uniform(0.08, 0.2) / tempo

    plan: list[_Syllable] = []
    t = lead
    foot_left = 0
    while True:
        k = len(plan)
        if lang.rhythm == "stress":  # feet of 1-3 syllables, the first one stressed
            stressed = foot_left == 0
            if stressed:
                foot_left = int(rng.integers(1, 4))
            foot_left -= 1
            factor = lang.stress_lengthening if stressed else 0.78
            spread = 0.08
        elif lang.rhythm == "mora":
            stressed = rng.random() < 0.25
            factor, spread = 0.95, 0.03
        else:
            stressed = rng.random() < 0.35
            factor = lang.stress_lengthening if stressed else 1.0
            spread = 0.05
        long_vowel = lang.rhythm == "mora" and rng.random() < 0.2
        dur = syl_dur * factor * max(0.7, rng.normal(1.0, spread))
        cons = None
        if rng.random() >= lang.onsetless:
            cons = lang.consonants[int(rng.integers(len(lang.consonants)))]
        c_dur = 0.0
        if cons is not None:
            c_dur = min(cons.duration / math.sqrt(tempo) * max(0.6, rng.normal(1.0, 0.1)), 0.5 * dur)
        v_dur = max(dur - c_dur, 0.05) * (1.8 if long_vowel else 1.0)
        vowel = lang.vowels[int(rng.integers(len(lang.vowels)))]
        tone = lang.tones[int(rng.integers(len(lang.tones)))] if lang.tones else None
        start = t + (pause if k == pause_after else 0.0)
        # stop before a syllable that would not fit as the (lengthened) final one
        if k >= 2 and start + c_dur + v_dur * lang.final_lengthening + trail > target:
            break
        plan.append(_Syllable(cons, vowel, stressed, tone, start, c_dur, v_dur))
        t = start + c_dur + v_dur
        if k >= 1 and t + trail > target:
            break

    plan[-1].v_dur *= lang.final_lengthening
    for syl in plan:
        syl.c_start = round(syl.start * sr)
        syl.v_start = round((syl.start + syl.c_dur) * sr)
        syl.v_end = round((syl.start + syl.c_dur + syl.v_dur) * sr)
    last = plan[-1]
    total = min(max(last.start + last.c_dur + last.v_dur + trail, MIN_DURATION + 0.02), MAX_DURATION - 0.02)
    return plan, round(total * sr)


def synthesize_utterance(
    language: str,
    speaker: int,
    emotion: str,
    index: int,
    *,
    seed: int = 0,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Synthesise one utterance.

    Args:
        language: a key of :data:`PSEUDO_LANGUAGES`.
        speaker: 1-based speaker number within the language.
        emotion: a key of :data:`EMOTION_PROFILES`.
        index: 1-based utterance number for this speaker and emotion.
        seed: corpus seed.
        sample_rate: output rate, Hz (8000-48000).

    Returns:
        float32 ``(n_samples,)`` in [-1, 1], between :data:`MIN_DURATION` and
        :data:`MAX_DURATION` seconds long.

    Raises:
        DatasetError: unknown language or emotion, or a sample rate out of range.
    """
    import numpy as np

    if language not in PSEUDO_LANGUAGES:
        raise DatasetError(f"synthetic: unknown pseudo-language {language!r}; available: {', '.join(PSEUDO_LANGUAGES)}")
    if emotion not in EMOTION_PROFILES:
        raise DatasetError(
            f"synthetic: no emotion profile {emotion!r}; available: {', '.join(sorted(EMOTION_PROFILES))}"
        )
    if not 8000 <= sample_rate <= 48000:
        raise DatasetError(f"synthetic: sample_rate {sample_rate} must be in 8000..48000 Hz")
    sr = sample_rate
    lang = PSEUDO_LANGUAGES[language]
    voice = speaker_voice(language, speaker, seed=seed)
    rng = _rng("utterance", seed, language, speaker, emotion, index)
    pr = _prosody(voice, EMOTION_PROFILES[emotion], rng)
    syl_dur = 1.0 / (lang.syllable_rate * voice.rate * pr.tempo)
    syllables, n = _plan_syllables(lang, rng, syl_dur, pr.tempo, sr)
    f0 = _f0_contour(lang, voice, pr, syllables, n, sr, rng)
    src = _glottal_source(f0, pr, sr, rng)
    out, voiced = _vowels(lang, voice, pr, syllables, src, sr, rng)
    _consonants(out, voice, syllables, src, _rms(out[voiced]), sr, rng)
    # -- level, limiter, background noise ------------------------------------------------
    level_db = pr.level_db
    out *= 10.0 ** (level_db / 20.0) / (_rms(out[voiced]) + 1e-12)
    peak = float(np.max(np.abs(out)))
    if peak > 0.89:
        out *= 0.89 / peak
    out *= _raised_cosine_env(n, int(0.01 * sr), int(0.01 * sr))  # no click if a vowel was cut
    out += rng.standard_normal(n) * 10.0 ** (rng.uniform(-66.0, -56.0) / 20.0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class _Prosody:
    """One utterance's prosody and voice quality: the speaker's, moved towards the emotion by its intensity."""

    f0_shift: float
    f0_range: float
    final_st: float
    tempo: float
    level_db: float
    jitter: float
    shimmer: float
    tilt: float
    breath: float
    creak: float
    tremor: float
    artic: float
    f1_raise: float
    smile: float
    formant_jitter: float


def _prosody(voice: Any, prof: Any, rng: np.random.Generator) -> _Prosody:
    """This utterance's prosody: neutral + intensity * (emotion - neutral) + noise."""
    import numpy as np

    iota = voice.expressiveness * rng.uniform(0.75, 1.2)
    f0_shift = iota * prof.f0_shift + rng.normal(0.0, 0.8)
    f0_range = max(0.15, 1.0 + iota * (prof.f0_range - 1.0) + rng.normal(0.0, 0.1))
    final_st = iota * prof.final_st + rng.normal(0.0, 0.5)
    tempo = max(0.6, 1.0 + iota * (prof.tempo - 1.0)) * rng.normal(1.0, 0.04)
    level_db = -26.0 + voice.level_db + iota * prof.loudness_db + rng.normal(0.0, 1.5)
    jitter = voice.jitter + iota * prof.jitter
    shimmer = voice.shimmer + iota * prof.shimmer
    tilt = float(np.clip(voice.tilt + iota * prof.tilt + rng.normal(0.0, 0.12), -1.0, 1.0))
    breath = float(np.clip(voice.breathiness + iota * prof.breathiness, 0.0, 0.6))
    creak = float(np.clip(iota * prof.creak, 0.0, 1.0))
    tremor = iota * prof.tremor_st
    artic = iota * prof.articulation
    f1_raise = iota * prof.f1_raise
    smile = iota * prof.smile
    formant_jitter = rng.normal(1.0, 0.02)
    return _Prosody(
        f0_shift, f0_range, final_st, tempo, level_db, jitter, shimmer, tilt, breath, creak, tremor, artic, f1_raise,
        smile, formant_jitter,
    )


def _f0_contour(
    lang: Any, voice: Any, pr: _Prosody, syllables: list[Any], n: int, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """F0 per sample (Hz): declination, accents, tones, the final movement, drift and tremor (semitones)."""
    import numpy as np

    f0_shift, f0_range, final_st, tremor = pr.f0_shift, pr.f0_range, pr.final_st, pr.tremor
    duration = n / sr
    voiced_end = min(syllables[-1].v_end, n) / sr
    nf = math.ceil(duration * _FRAME_RATE) + 2
    tf = np.arange(nf) / _FRAME_RATE
    st = np.full(nf, f0_shift)
    st -= rng.uniform(1.0, 3.0) * f0_range * tf / duration  # declination
    for syl in syllables:
        a, b = syl.v_start / sr, syl.v_end / sr
        inside = (tf >= a) & (tf < b)
        if syl.stressed and lang.accent_st > 0:
            size = lang.accent_st * f0_range * max(0.2, rng.normal(1.0, 0.25))
            st[inside] += size * np.sin(np.pi * (tf[inside] - a) / (b - a))
        if syl.tone is not None:
            u = (tf[inside] - a) / (b - a)
            st[inside] += (syl.tone[0] + (syl.tone[1] - syl.tone[0]) * u) * (0.7 + 0.3 * f0_range)
    t0 = 0.65 * voiced_end
    tail = np.clip((tf - t0) / max(voiced_end - t0, 1e-3), 0.0, None)
    st += final_st * np.minimum(tail, 1.2) ** 2
    knots = rng.normal(0.0, 0.7 * f0_range, nf // 20 + 2)
    st += np.interp(tf, np.arange(knots.size) * 20.0 / _FRAME_RATE, knots)
    st += tremor * np.sin(2.0 * np.pi * rng.uniform(4.5, 7.0) * tf + rng.uniform(0, 2 * np.pi))
    st = np.convolve(np.pad(st, 2, mode="edge"), np.ones(5) / 5.0, mode="valid")
    f0_frames = np.clip(voice.f0_hz * 2.0 ** (st / 12.0), 55.0, 600.0)
    t = np.arange(n) / sr
    f0 = np.interp(t, tf, f0_frames)
    return f0


def _glottal_source(f0: np.ndarray, pr: _Prosody, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The glottal source: jitter, shimmer, creak, a Rosenberg-like pulse, aspiration and spectral tilt."""
    import numpy as np
    from scipy.signal import lfilter

    jitter, shimmer, creak, tilt, breath = pr.jitter, pr.shimmer, pr.creak, pr.tilt, pr.breath
    n = f0.shape[0]
    duration = n / sr
    t = np.arange(n) / sr
    phase0 = np.cumsum(f0 / sr)
    k0 = phase0.astype(np.int64)
    jit = rng.normal(0.0, jitter, int(k0[-1]) + 1)
    f_inst = f0 * (1.0 + jit[k0])
    creak_w = None
    if creak > 0:
        ramp = np.clip((t - 0.6 * duration) / (0.4 * duration), 0.0, 1.0)
        creak_w = creak * (0.3 + 0.7 * ramp)
        alt0 = (k0 & 1) * 2.0 - 1.0
        f_inst = (f_inst + f0 * 0.25 * creak_w * alt0) * (1.0 - 0.3 * creak_w)
    phase = np.cumsum(f_inst / sr)
    k = phase.astype(np.int64)
    frac = phase - k
    amp = np.exp(rng.normal(0.0, shimmer, int(k[-1]) + 1))[k]
    if creak_w is not None:
        amp *= 1.0 - 0.5 * creak_w * (k & 1)
    oq = float(np.clip(0.6 - 0.15 * tilt + 0.25 * breath, 0.35, 0.85))
    tp = 0.62 * oq
    tn = oq * (0.38 - 0.1 * tilt)
    # one cosine for both phases: rising 0.5 - 0.5 cos(pi x / tp), closing cos(pi/2 y / tn)
    opening = frac < tp
    c = np.cos(np.where(opening, (np.pi / tp) * frac, (0.5 * np.pi / tn) * np.minimum(frac - tp, tn)))
    flow = np.where(opening, 0.5 - 0.5 * c, c)
    src = np.diff(flow * amp, prepend=0.0)
    src /= _rms(src) + 1e-12
    asp = rng.standard_normal(n) * (0.3 + flow)
    src += (0.8 * breath / (_rms(asp) + 1e-12)) * asp
    if tilt > 0:
        src = lfilter([1.0, -0.7 * tilt], [1.0], src)
    elif tilt < 0:
        a = 0.75 * -tilt
        src = lfilter([1.0 - a], [1.0, -a], src)
    return src


def _vowels(
    lang: Any, voice: Any, pr: _Prosody, syllables: list[Any], src: np.ndarray, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The vowels filtered from the source by their formants: ``(signal, voiced mask)``."""
    import numpy as np
    from scipy.signal import sosfilt

    n = src.shape[0]
    breath, artic, f1_raise, smile, f0_range = pr.breath, pr.artic, pr.f1_raise, pr.smile, pr.f0_range
    formant_jitter = pr.formant_jitter
    out = np.zeros(n)
    voiced = np.zeros(n, dtype=bool)
    pre = int(0.01 * sr)
    bw_scale = 1.0 + 1.5 * breath
    n_syl = len(syllables)
    for i, syl in enumerate(syllables):
        v0, v1 = syl.v_start, min(syl.v_end, n)
        if v1 - v0 < 8:
            continue
        _, f1, f2, f3 = syl.vowel
        red = (0.0 if syl.stressed else lang.reduction) - 0.5 * artic
        red = min(max(red, -0.3), 0.8)
        f1 = _SCHWA[0] + (f1 - _SCHWA[0]) * (1.0 - red)
        f2 = _SCHWA[1] + (f2 - _SCHWA[1]) * (1.0 - red)
        f3 = _SCHWA[2] + (f3 - _SCHWA[2]) * (1.0 - red)
        scale = voice.formant_scale * formant_jitter * rng.normal(1.0, 0.02)
        s1, s2, s3 = lang.setting
        freqs = [
            f1 * s1 * (1.0 + f1_raise) * scale,
            f2 * s2 * (1.0 + smile) * scale,
            f3 * s3 * (1.0 + smile) * scale,
            3500.0 * scale,
            4500.0 * scale,
        ]
        bws = [b * bw_scale for b in (60.0, 90.0, 130.0, 200.0, 250.0)]
        if lang.nasality > 0:  # nasal formant near 250 Hz, F1 damped
            freqs.append(250.0 * scale)
            bws.append(100.0 + 200.0 * (1.0 - lang.nasality))
            bws[0] *= 1.0 + 1.5 * lang.nasality
        s0 = max(v0 - pre, 0)
        seg = sosfilt(_resonator_sos(freqs, bws, sr), src[s0:v1])[v0 - s0 :]
        gain_db = rng.normal(0.0, 1.0)
        if syl.stressed:
            gain_db += 2.5 * math.sqrt(f0_range)
        if i == n_syl - 1:
            gain_db -= 2.0
        seg = seg / (_rms(seg) + 1e-12) * 10.0 ** (gain_db / 20.0)
        env = _raised_cosine_env(v1 - v0, int(0.02 * sr), int(0.035 * sr))
        out[v0:v1] += seg * env
        voiced[v0:v1] = True
    return out, voiced


def _consonants(
    out: np.ndarray, voice: Any, syllables: list[Any], src: np.ndarray, vowel_rms: float, sr: int,
    rng: np.random.Generator,
) -> None:
    """Add the consonants to ``out``: nasals from the source, fricatives and stops from noise."""
    import numpy as np
    from scipy.signal import sosfilt

    n = out.shape[0]
    for syl in syllables:
        cons = syl.consonant
        c0, c1 = syl.c_start, min(syl.v_start, n)
        m = c1 - c0
        if cons is None or m < 16:
            continue
        if cons.manner == "nasal":
            sos = _resonator_sos(
                (cons.centre_hz * voice.formant_scale, 1100.0 * voice.formant_scale),
                (cons.bandwidth_hz, 300.0),
                sr,
            )
            seg = sosfilt(sos, src[c0:c1])
            seg *= 0.3 * vowel_rms / (_rms(seg) + 1e-12)
            seg *= _raised_cosine_env(m, int(0.01 * sr), int(0.005 * sr))
        else:
            noise = sosfilt(
                _band_sos(cons.centre_hz * voice.formant_scale, cons.bandwidth_hz, sr),
                rng.standard_normal(m),
            )
            noise /= _rms(noise) + 1e-12
            if cons.manner == "fricative":
                seg = 0.35 * vowel_rms * noise
                seg *= _raised_cosine_env(m, m // 3, m // 4)
            else:  # stop: silent closure, then a decaying burst and a little aspiration
                closure = int(0.6 * m)
                burst = np.zeros(m)
                tt = np.arange(m - closure) / sr
                burst[closure:] = np.exp(-tt / 0.008) + 0.15 * np.exp(-tt / 0.03)
                seg = 0.6 * vowel_rms * noise * burst
        out[c0:c1] += seg


# --------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------
def _check_args(
    languages: Sequence[str],
    speakers: int,
    per_class: int,
    emotions: Sequence[str],
    sample_rate: int,
) -> None:
    where = "synthetic corpus"
    if not languages:
        raise DatasetError(f"{where}: 'languages' is empty")
    if not emotions:
        raise DatasetError(f"{where}: 'emotions' is empty")
    for name, values in (("languages", languages), ("emotions", emotions)):
        dups = sorted({v for v in values if list(values).count(v) > 1})
        if dups:
            raise DatasetError(f"{where}: '{name}' lists {', '.join(dups)} more than once")
    bad = [x for x in languages if x not in PSEUDO_LANGUAGES]
    if bad:
        raise DatasetError(
            f"{where}: unknown pseudo-language(s) {', '.join(bad)}; available: {', '.join(PSEUDO_LANGUAGES)}"
        )
    bad = [x for x in emotions if x not in EMOTION_PROFILES]
    if bad:
        raise DatasetError(
            f"{where}: no emotion profile for {', '.join(bad)}; available: {', '.join(sorted(EMOTION_PROFILES))}"
        )
    if not 2 <= speakers <= _MAX_SPEAKERS:
        raise DatasetError(f"{where}: 'speakers' must be in 2..{_MAX_SPEAKERS}, got {speakers}")
    if not 1 <= per_class <= _MAX_PER_CLASS:
        raise DatasetError(f"{where}: 'per_class' must be in 1..{_MAX_PER_CLASS}, got {per_class}")
    if not 8000 <= sample_rate <= 48000:
        raise DatasetError(f"{where}: 'sample_rate' must be in 8000..48000 Hz, got {sample_rate}")


def _write_wav(path: Path, wav: np.ndarray, sample_rate: int) -> None:
    """Write 16-bit PCM atomically (temp file in the same folder, then rename)."""
    import numpy as np
    import soundfile as sf

    from serkit.io import atomic_write_bytes

    pcm = np.round(np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, pcm, sample_rate, subtype="PCM_16", format="WAV")
    atomic_write_bytes(path, buf.getvalue())


def _existing_durations(
    marker: Path, params: dict[str, Any], paths: list[Path], sample_rate: int
) -> list[float] | None:
    """Durations of a complete earlier generation with the same params, else None."""
    import json

    import soundfile as sf

    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("params") != params:
        return None
    durations = []
    for p in paths:
        try:
            info = sf.info(str(p))
        except Exception:  # missing or unreadable: regenerate
            return None
        if info.samplerate != sample_rate or info.frames <= 0:
            return None
        durations.append(info.frames / info.samplerate)
    return durations


def generate_corpus(
    root: str | os.PathLike[str],
    *,
    languages: Sequence[str] = ("xa",),
    speakers: int = 6,
    per_class: int = 8,
    emotions: Sequence[str] = DEFAULT_EMOTIONS,
    seed: int = 0,
    sample_rate: int = 16000,
) -> list[Utterance]:
    """Generate (or reuse) a synthetic corpus under ``root``.

    WAVs (16-bit PCM, mono) go to ``root/<language>/<speaker>/<id>.wav``; a
    ``root/corpus.json`` marker with the exact arguments is written last. When the marker
    matches and every file is present, nothing is written.

    Args:
        root: output folder (created if needed).
        languages: keys of :data:`PSEUDO_LANGUAGES`.
        speakers: speakers per language (2..99); ids ``"<language>_s<NN>"``.
        per_class: utterances per speaker and emotion (1..999).
        emotions: keys of :data:`EMOTION_PROFILES`.
        seed: corpus seed; every utterance depends only on (seed, language, speaker,
            emotion, index).
        sample_rate: Hz.

    Returns:
        One :class:`Utterance` per file, ordered by language, speaker, emotion (as given)
        and index; ``meta`` holds the speaker's ``sex``.

    Raises:
        DatasetError: invalid arguments, or ``root`` cannot be written.
    """
    languages = list(languages)
    emotions = list(emotions)
    _check_args(languages, speakers, per_class, emotions, sample_rate)
    root = Path(root).expanduser().resolve()
    params: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "languages": languages,
        "speakers": speakers,
        "per_class": per_class,
        "emotions": emotions,
        "seed": seed,
        "sample_rate": sample_rate,
    }
    entries: list[tuple[str, int, str, int, str, Path, str]] = []
    for lang in languages:
        for s in range(1, speakers + 1):
            spk = speaker_id(lang, s)
            sex = speaker_voice(lang, s, seed=seed).sex
            for emo in emotions:
                for i in range(1, per_class + 1):
                    uid = utterance_id(lang, s, emo, i)
                    entries.append((lang, s, emo, i, uid, root / lang / spk / f"{uid}.wav", sex))
    marker = root / _MARKER
    paths = [e[5] for e in entries]
    durations = _existing_durations(marker, params, paths, sample_rate)
    if durations is None:
        try:
            marker.unlink(missing_ok=True)
            durations = []
            for lang, s, emo, i, _uid, path, _sex in entries:
                wav = synthesize_utterance(lang, s, emo, i, seed=seed, sample_rate=sample_rate)
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_wav(path, wav, sample_rate)
                durations.append(wav.shape[0] / sample_rate)
            atomic_write_json(marker, {"format": "serkit-synthetic", "params": params, "utterances": len(entries)})
        except OSError as err:
            raise DatasetError(f"synthetic corpus: cannot write under {root}: {err}") from err
    return [
        Utterance(
            id=uid,
            path=str(path),
            label=emo,
            speaker=speaker_id(lang, s),
            language=lang,
            duration=dur,
            meta={"sex": sex},
        )
        for (lang, s, emo, _i, uid, path, sex), dur in zip(entries, durations, strict=True)
    ]

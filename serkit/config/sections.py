"""The fixed sections of a recipe: protocols, training, data, store, logging, ``init_from``.

These models do not depend on the registry; :func:`serkit.config.recipe.build_recipe_model`
puts them together with the component unions (``type: <name>``) of the registered
components (and, in ``train``, the registry's metrics and training callbacks).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from serkit.data.wave_augment import WaveAugmentSpec
from serkit.interfaces.metric import BUILTIN_METRICS, selection_choices

__all__ = [
    "CALLBACKS_DESCRIPTION",
    "SELECT_BY_DESCRIPTION",
    "CrossCorpusProtocol",
    "DataSpec",
    "DomainSpec",
    "FiniteFloats",
    "InitSpec",
    "LoggingSpec",
    "MaskSpec",
    "PredefinedProtocol",
    "Protocol",
    "RandomProtocol",
    "Recipe",
    "Section",
    "SpeakerProtocol",
    "StoreSpec",
    "StreamSpec",
    "TrainSpec",
    "freeze_part",
    "run_name",
]

#: ``train.select_by``'s values with the built-in metrics only (a registry may add more).
BUILTIN_SELECT_BY = tuple(selection_choices({m.name: m for m in BUILTIN_METRICS}))

SELECT_BY_DESCRIPTION = (
    "Validation metric that picks the checkpoint (mean over domains), or 'last': the final "
    "epoch's (with weight averaging, the average; for small validation sets whose best epoch is noise)."
)

CALLBACKS_DESCRIPTION = (
    "Training callbacks (schedules such as a warm-up or freezing), each {type: NAME, ...params}, called in this "
    "order by the training loop; registered by plugins."
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def run_name(value: str) -> str:
    """A run name becomes a folder name: refuse what could escape ``runs/`` or break a file system."""
    if (
        not value.strip()
        or value in (".", "..")
        or any(c in value for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
        or len(value) > 120
    ):
        raise ValueError(
            f"name {value!r} cannot name a run folder: use 1 to 120 characters without '/', '\\' or control "
            "characters (not '.' or '..')"
        )
    return value


class FiniteFloats(BaseModel):
    """Mixed into every component's recipe model: ``.inf`` and ``.nan`` are never valid parameters."""

    model_config = ConfigDict(allow_inf_nan=False)


class RandomProtocol(Section):
    """The paper's split: random stratified test set, then train/val from the rest."""

    type: Literal["random"] = "random"
    test: float = Field(0.2, gt=0, lt=1, description="Fraction of each domain held out for test.")
    val: float = Field(
        0.2, gt=0, lt=1, description="Fraction of the remaining utterances used for validation."
    )


class SpeakerProtocol(Section):
    """Speaker-independent k-fold cross-validation: no speaker is in two sets."""

    type: Literal["speaker"] = "speaker"
    k: int | Literal["all"] = Field(
        5, description="Number of speaker-disjoint folds, or 'all' for leave-one-speaker-out."
    )
    val_speakers: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Fraction of each fold's training speakers held out for validation (at least one), "
        "drawn so that validation shows every label that two or more training speakers show.",
    )
    folds: list[int] | None = Field(
        None, description="Run only these folds (0-based); default: every fold."
    )
    reshuffle: bool = Field(
        True,
        description="Draw a new speaker partition for each repeat (repeated k-fold: repeat r "
        "uses seed + r); false keeps the first repeat's partition, so repeats only re-draw "
        "validation speakers and model seeds.",
    )

    @field_validator("k")
    @classmethod
    def _k_at_least_two(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 2:
            raise ValueError("k must be at least 2 (or 'all')")
        return v


class PredefinedProtocol(Section):
    """Splits given by the data: a manifest's ``split`` column (train/val/test) or ``fold`` column.

    With ``fold``, every fold value is the test set once (cross-validation over the given
    folds, e.g. EmoBox's); validation is a stratified ``val`` fraction of the training
    folds. With ``split`` and no ``val`` rows, validation is taken from ``train`` the same way.
    """

    type: Literal["predefined"] = "predefined"
    column: Literal["auto", "split", "fold"] = Field(
        "auto", description="Which column to use; auto: 'fold' if every utterance has one, else 'split'."
    )
    val: float = Field(0.2, gt=0, lt=1, description="Validation fraction drawn from training data when needed.")


class CrossCorpusProtocol(Section):
    """Train on some domains, test on others (cross-corpus / cross-lingual transfer).

    Test-only domains need a head: point them at a training domain's head
    (``domains.ur.head: en``). Validation is a stratified ``val`` fraction of the training
    domains. ``labels: intersection`` keeps only the emotions every domain has.
    """

    type: Literal["cross_corpus", "cross_lingual"] = "cross_corpus"
    test: list[str] = Field(min_length=1, description="Domains used only for testing.")
    labels: Literal["intersection", "all"] = Field(
        "intersection", description="Keep only the labels shared by all domains, or keep all."
    )
    val: float = Field(0.2, gt=0, lt=1, description="Validation fraction of the training domains.")


def _protocol_shorthand(value: Any) -> Any:
    """``protocol: speaker`` means ``protocol: {type: speaker}``."""
    return {"type": value} if isinstance(value, str) else value


Protocol = Annotated[
    Annotated[
        RandomProtocol | SpeakerProtocol | PredefinedProtocol | CrossCorpusProtocol, Field(discriminator="type")
    ],
    BeforeValidator(_protocol_shorthand),
]


class MaskSpec(Section):
    """Random time and feature masks on sequence inputs during training (SpecAugment on cached features)."""

    time_masks: int = Field(2, ge=0, description="Spans masked along time per utterance.")
    time_width: float = Field(0.05, ge=0, le=1, description="Longest time span, as a fraction of the utterance.")
    freq_masks: int = Field(2, ge=0, description="Spans masked along the feature axis per utterance.")
    freq_width: int = Field(4, ge=0, description="Longest feature span, in dimensions.")


class TrainSpec(Section):
    """Training loop settings."""

    epochs: int = Field(20, ge=1, description="Training epochs per run.")
    batch_size: int = Field(32, ge=1, description="Utterances per batch (one domain per batch).")
    select_by: Literal[BUILTIN_SELECT_BY] = Field(  # type: ignore[valid-type]
        "val_ua",
        description=SELECT_BY_DESCRIPTION,
    )
    grad_clip: float | None = Field(
        5.0, gt=0, description="Max gradient norm; null disables clipping."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes for training.")
    patience: int | None = Field(
        None, ge=1, description="Stop after this many epochs without improvement; null: never."
    )
    sampler: Literal["random", "balanced"] = Field(
        "random",
        description="'random': shuffled batches; 'balanced': each batch holds batch_size // "
        "samples_per_class classes with samples_per_class utterances each (for contrastive losses).",
    )
    samples_per_class: int = Field(
        8, ge=1, description="Utterances per class in a balanced batch (sampler: balanced)."
    )
    input_dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout on every stream's vector (encoder output) before the fusion."
    )
    mixup: float = Field(
        0.0,
        ge=0,
        description="Mixup on utterance vectors: alpha of the Beta(alpha, alpha) mixing weight; the stream vectors "
        "of a batch are mixed with a shuffled copy and the loss with their targets. 0: off.",
    )
    mask: MaskSpec | None = Field(
        None, description="Time and feature masking of sequence inputs during training (after standardisation)."
    )
    average: Literal["none", "ema", "swa"] = Field(
        "none",
        description="Weight averaging: 'ema' keeps an exponential moving average of the weights after every step "
        "(ema_decay); 'swa' averages the weights at the end of every epoch from swa_start on. The averaged "
        "model is the one evaluated, selected and saved.",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Training precision: fp32; bf16 (autocast to bfloat16, no scaling needed); fp16 (autocast to "
        "float16 with a gradient scaler). Evaluation always runs in float32.",
    )
    ema_decay: float = Field(0.99, gt=0, lt=1, description="Decay of the weights' moving average (average: ema).")
    swa_start: float = Field(
        0.5, ge=0, lt=1, description="Fraction of the epochs after which averaging starts (average: swa)."
    )
    callbacks: list[dict[str, Any]] = Field(
        default_factory=list,
        description=CALLBACKS_DESCRIPTION,
    )

    @model_serializer(mode="wrap")
    def _leave_out_no_callbacks(self, handler: Any) -> Any:
        """``callbacks: []`` is not written out, so resolved recipes (and their hashes) stay those of recipes
        from before training callbacks existed."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("callbacks"):
            data.pop("callbacks", None)
        return data


class DataSpec(Section):
    """Audio handling and extraction settings."""

    on_bad_audio: Literal["error", "skip"] = Field(
        "error",
        description="'error' stops at the first unreadable/empty/silent file; 'skip' leaves it out "
        "and lists it in the run folder (bad_files.json).",
    )
    extract_workers: int = Field(2, ge=0, description="Parallel audio loaders during extraction.")
    extract_batch_size: int = Field(16, ge=1, description="Utterances per extractor call.")
    extract_executor: Literal["auto", "thread", "process"] = Field(
        "auto",
        description="What the extract_workers are. 'thread': threads load audio (and compute parallel-safe "
        "extractors such as mfcc); no start-up cost. 'process': worker processes load and preprocess audio "
        "and compute parallel-safe extractors (models stay in the main process); each costs 1-3 s to start. "
        "'auto': processes when at least 500 files are to be computed and the extractor has work for them "
        "(mfcc, ge2e), else threads.",
    )
    feature_memory_gib: float = Field(
        1.0,
        ge=0,
        description="Keep the run's cached features in memory after their first read from the store, up to "
        "this many GiB (every later epoch and fold reads memory instead of SQLite); 0: read the store every time.",
    )
    standardize: Literal["none", "global", "domain"] = Field(
        "none",
        description="Standardise every stream's features (per dimension) with statistics of the run's "
        "training split: 'global' pools every domain, 'domain' keeps one set per domain (corpus "
        "normalisation, for corpora recorded at different levels). Stored in the model, so predict and "
        "exports apply them. Not transductive. Fine-tuned extractors' inputs are left as they are.",
    )
    augment: list[WaveAugmentSpec] = Field(
        default_factory=list,
        description="Waveform augmentations for training: each adds one augmented copy of every training "
        "utterance ({type: speed, factor: 0.9}, {type: noise, snr_db: 20, color: white|pink}). The copies' "
        "features are extracted once and cached (the augmentation is part of the store's key); validation, "
        "test and the linear reference use the original audio only.",
    )
    standardize_clip: float | None = Field(
        None,
        gt=0,
        description="With standardize: clamp standardised values to [-clip, clip] (a dimension that barely varies "
        "in training cannot explode on a new speaker); null: no clamping.",
    )
    speaker_norm: bool | Literal["auto"] = Field(
        False,
        description="Standardise every stream per speaker (mean/std over the speaker's utterances). "
        "Transductive: test speakers' statistics come from their own unlabelled features. Only sound "
        "when each speaker covers (nearly) every label, as in acted corpora. 'auto': on for the domains "
        "whose speakers cover on average at least speaker_norm_auto_coverage of the domain's labels (a "
        "property of the corpus design, read from the labels, never from scores), off for the others.",
    )
    speaker_norm_auto_coverage: float = Field(
        0.8,
        ge=0,
        le=1,
        description="speaker_norm: auto switches a domain on when its speakers cover on average at least "
        "this fraction of its labels.",
    )
    speaker_norm_min_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Warn when speaker_norm is on and a speaker covers less than this fraction of "
        "the domain's labels.",
    )


class StoreSpec(Section):
    """Feature store settings."""

    root: str | None = Field(
        None, description="Folder of the feature stores; default $SERKIT_CACHE/features."
    )
    dtype: Literal["float32", "float16"] = Field(
        "float32", description="Storage precision (float16 halves disk use; read back as float32)."
    )


class LoggingSpec(Section):
    """Experiment logging (built-in loggers on the run-callback hooks; plugins may add others)."""

    tensorboard: Literal["auto"] | bool = Field(
        "auto",
        description="TensorBoard event files in <run folder>/tensorboard/<run id>/. auto: when tensorboard is "
        "installed; true: required (pip install 'serkit[tensorboard]'); false: off.",
    )
    mlflow: Literal["auto"] | bool = Field(
        "auto",
        description="Log to MLflow. auto: when mlflow is installed and a tracking URI is set "
        "(MLFLOW_TRACKING_URI or mlflow_tracking_uri); true: required (pip install 'serkit[mlflow]'); false: off.",
    )
    mlflow_experiment: str | None = Field(None, description="MLflow experiment name (default: the recipe name).")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else MLflow's own default)."
    )


FREEZE_PART = re.compile(r"^(encoders|fusion|heads)(\.[^.\s]+)?$")


def freeze_part(value: str) -> str:
    if not FREEZE_PART.match(value):
        raise ValueError(
            f"unknown part {value!r}; expected encoders, encoders.<stream>, fusion, heads or heads.<head>"
        )
    return value


class InitSpec(Section):
    """Where a recipe's model starts from (``init_from``)."""

    run: str = Field(description="A run folder written by 'serkit run' (or 'serkit export').")
    checkpoint: str = Field(
        "best", description="Run id such as r0-f1, or 'best' (highest mean validation UA)."
    )

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value


class StreamSpec(Section):
    """Placeholder for typing; the real class is built per registry."""


class DomainSpec(Section):
    """Placeholder for typing; the real class is built per registry."""


class Recipe(Section):
    """Placeholder for typing; the real class is built per registry (serkit.config.recipe.build_recipe_model)."""

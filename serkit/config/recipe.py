"""The recipe model, built from the registry, and recipe validation.

For each component kind the model holds a discriminated union over the registered
``Params`` (``type: <name>``). Every problem of a recipe is reported at once, one line
each: ``dotted.path (line N): message``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from serkit.config.loader import LineMap, apply_overrides, apply_unsets, load_yaml_with_lines, substitute_env
from serkit.data.wave_augment import WaveAugmentSpec
from serkit.errors import RecipeError
from serkit.registry import Registry, closest

__all__ = [
    "CrossCorpusProtocol",
    "DomainSpec",
    "PredefinedProtocol",
    "RandomProtocol",
    "Recipe",
    "SpeakerProtocol",
    "StreamSpec",
    "load_recipe",
    "recipe_model",
    "validate_recipe_data",
]

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def _run_name(value: str) -> str:
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


class _FiniteFloats(BaseModel):
    """Mixed into every component's recipe model: ``.inf`` and ``.nan`` are never valid parameters."""

    model_config = ConfigDict(allow_inf_nan=False)


class RandomProtocol(_Section):
    """The paper's split: random stratified test set, then train/val from the rest."""

    type: Literal["random"] = "random"
    test: float = Field(0.2, gt=0, lt=1, description="Fraction of each domain held out for test.")
    val: float = Field(
        0.2, gt=0, lt=1, description="Fraction of the remaining utterances used for validation."
    )


class SpeakerProtocol(_Section):
    """Speaker-independent k-fold cross-validation: no speaker is in two sets."""

    type: Literal["speaker"] = "speaker"
    k: int | Literal["all"] = Field(
        5, description="Number of speaker-disjoint folds, or 'all' for leave-one-speaker-out."
    )
    val_speakers: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Fraction of each fold's training speakers held out for validation (at least one).",
    )
    folds: list[int] | None = Field(
        None, description="Run only these folds (0-based); default: every fold."
    )

    @field_validator("k")
    @classmethod
    def _k_at_least_two(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 2:
            raise ValueError("k must be at least 2 (or 'all')")
        return v


class PredefinedProtocol(_Section):
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


class CrossCorpusProtocol(_Section):
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


class MaskSpec(_Section):
    """Random time and feature masks on sequence inputs during training (SpecAugment on cached features)."""

    time_masks: int = Field(2, ge=0, description="Spans masked along time per utterance.")
    time_width: float = Field(0.05, ge=0, le=1, description="Longest time span, as a fraction of the utterance.")
    freq_masks: int = Field(2, ge=0, description="Spans masked along the feature axis per utterance.")
    freq_width: int = Field(4, ge=0, description="Longest feature span, in dimensions.")


class TrainSpec(_Section):
    """Training loop settings."""

    epochs: int = Field(20, ge=1, description="Training epochs per run.")
    batch_size: int = Field(32, ge=1, description="Utterances per batch (one domain per batch).")
    select_by: Literal["val_ua", "val_wa", "val_loss", "last"] = Field(
        "val_ua",
        description="Validation metric that picks the checkpoint (mean over domains), or 'last': the final "
        "epoch's (with weight averaging, the average; for small validation sets whose best epoch is noise).",
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


class DataSpec(_Section):
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


class StoreSpec(_Section):
    """Feature store settings."""

    root: str | None = Field(
        None, description="Folder of the feature stores; default $SERKIT_CACHE/features."
    )
    dtype: Literal["float32", "float16"] = Field(
        "float32", description="Storage precision (float16 halves disk use; read back as float32)."
    )


class LoggingSpec(_Section):
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


def _component_union(registry: Registry, kind: str) -> Any:
    members = []
    for name in registry.names(kind):
        cls = registry.get(kind, name)
        spec = create_model(
            f"{kind}:{name}",
            __base__=(cls.Params, _FiniteFloats),
            __doc__=cls.__doc__ or cls.Params.__doc__,
            type=(Literal[name], Field(description=f"Registered {kind} name.")),
        )
        members.append(spec)
    if not members:
        return Annotated[dict, Field(description=f"no {kind} is registered")]
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator="type")]  # noqa: UP007


_FREEZE_PART = re.compile(r"^(encoders|fusion|heads)(\.[^.\s]+)?$")


def _freeze_part(value: str) -> str:
    if not _FREEZE_PART.match(value):
        raise ValueError(
            f"unknown part {value!r}; expected encoders, encoders.<stream>, fusion, heads or heads.<head>"
        )
    return value


class InitSpec(_Section):
    """Where a recipe's model starts from (``init_from``)."""

    run: str = Field(description="A run folder written by 'serkit run' (or 'serkit export').")
    checkpoint: str = Field(
        "best", description="Run id such as r0-f1, or 'best' (highest mean validation UA)."
    )

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        return {"run": value} if isinstance(value, str) else value


class StreamSpec(_Section):
    """Placeholder for typing; the real class is built per registry."""


class DomainSpec(_Section):
    """Placeholder for typing; the real class is built per registry."""


class Recipe(_Section):
    """Placeholder for typing; the real class is built per registry by :func:`build_recipe_model`."""


def build_recipe_model(registry: Registry) -> type[BaseModel]:
    """Create the Recipe pydantic model for the components in ``registry``."""
    dataset = _component_union(registry, "dataset")
    extractor = _component_union(registry, "extractor")
    encoder = _component_union(registry, "encoder")
    fusion = _component_union(registry, "fusion")
    head = _component_union(registry, "head")
    loss = _component_union(registry, "loss")
    optimizer = _component_union(registry, "optimizer")

    domain_spec = create_model(
        "DomainSpec",
        __base__=_Section,
        __doc__="One domain (a language or corpus): its dataset and per-domain settings.",
        dataset=(dataset, Field(description="The dataset component of this domain.")),
        aux_weight=(
            float | None,
            Field(
                None,
                ge=0,
                description="Weight of the auxiliary loss for this domain "
                "(default: the aux loss's own weight).",
            ),
        ),
        shots=(
            int | None,
            Field(
                None,
                ge=1,
                description="Few-shot training: keep K labelled training utterances per class (and at most K "
                "per class for validation), drawn anew for each repeat; the test split is untouched.",
            ),
        ),
        head=(
            str | None,
            Field(
                None,
                description="Head id (default: the domain id). Domains naming the same head share one "
                "tower over the union of their labels (the paper's 'Base' model).",
            ),
        ),
        fusion_from=(
            str | None,
            Field(
                None,
                description="With init_from: start this (new) domain's per-domain fusion parameters "
                "(gate, NAS connections) from those of a domain of the initial run, e.g. 'en'. They train, "
                "unless freeze lists 'fusion.<this domain>' (then the domain reads that domain's fused "
                "representation as it is: a linear probe with a linear head).",
            ),
        ),
    )
    stream_spec = create_model(
        "StreamSpec",
        __base__=_Section,
        __doc__="A feature stream: an extractor, plus an encoder when it yields sequences.",
        extractor=(extractor, Field(description="Waveform -> features.")),
        encoder=(
            encoder | None,
            Field(None, description="Sequence -> vector; required for sequence extractors."),
        ),
    )
    loss_spec = create_model(
        "LossSpec",
        __base__=_Section,
        __doc__="The main loss (on logits) and an optional auxiliary loss.",
        main=(
            loss,
            Field(default_factory=lambda: {"type": "cross_entropy"}, description="Main loss."),
        ),
        aux=(loss | None, Field(None, description="Auxiliary loss added to the main one.")),
    )
    fields: dict[str, Any] = {
        "name": (
            Annotated[str, AfterValidator(_run_name)],
            Field(description="Run name (used in the default run folder name)."),
        ),
        "description": (str, Field("", description="Free text shown in the report.")),
        "seed": (int, Field(0, description="Base seed; repeat r uses seed + r.")),
        "repeats": (
            int,
            Field(1, ge=1, description="Independent runs with seeds seed..seed+repeats-1."),
        ),
        "device": (
            str,
            Field(
                "auto",
                pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$",
                description="auto, cpu, cuda, cuda:N or mps.",
            ),
        ),
        "protocol": (
            Protocol,
            Field(default_factory=lambda: {"type": "random"}, description="Evaluation protocol."),
        ),
        "threads": (
            int | Literal["auto"],
            Field(
                "auto",
                description="Torch intra-op threads on CPU. auto: OMP_NUM_THREADS if set, else the CPUs this "
                "process may use (SLURM_CPUS_PER_TASK or CPU affinity) divided among the serkit runs on this "
                "machine (recounted every epoch); environment.json records the choice.",
            ),
        ),
        "reference": (
            Literal["logreg", "svm", "none"],
            Field(
                "logreg",
                description="The linear reference fitted in every run on the same streams and splits (sequences "
                "pooled to mean and std, standardised on the training split, C chosen on validation): "
                "'logreg' (class-balanced logistic regression), 'svm' (class-balanced linear SVM) or 'none'. "
                "Shown beside the model in results.json, the report and compare; a model below it is warned about.",
            ),
        ),
        "domains": (
            dict[str, domain_spec],
            Field(min_length=1, description="Domain id -> domain; one head per domain."),
        ),
        "features": (
            dict[str, stream_spec],
            Field(min_length=1, description="Stream id -> extractor (+ encoder)."),
        ),
        "fusion": (
            fusion,
            Field(
                default_factory=lambda: {"type": "concat"}, description="How streams are merged."
            ),
        ),
        "heads": (
            dict[str, head],
            Field(
                default_factory=lambda: {"default": {"type": "mlp"}},
                description="Domain id (or 'default') -> classification head.",
            ),
        ),
        "loss": (loss_spec, Field(default_factory=dict, description="Losses.")),
        "optimizer": (
            optimizer,
            Field(default_factory=lambda: {"type": "adamw"}, description="Optimizer."),
        ),
        "train": (TrainSpec, Field(default_factory=TrainSpec, description="Training loop.")),
        "data": (DataSpec, Field(default_factory=DataSpec, description="Audio and extraction.")),
        "store": (StoreSpec, Field(default_factory=StoreSpec, description="Feature store.")),
        "logging": (LoggingSpec, Field(default_factory=LoggingSpec, description="Experiment logging.")),
        "init_from": (
            InitSpec | None,
            Field(
                None,
                description="Start from a trained run (or exported folder): its encoders, fusion and "
                "its domains' gates and heads are loaded; new domains get fresh parameters. "
                "A path, or {run: PATH, checkpoint: r0-f1}.",
            ),
        ),
        "freeze": (
            list[Annotated[str, AfterValidator(_freeze_part)]],
            Field(
                default_factory=list,
                description="With init_from: parts loaded from the run that stay fixed: 'encoders', "
                "'encoders.<stream>', 'fusion', 'heads', 'heads.<head>'. New domains' parameters "
                "always train.",
            ),
        ),
    }
    model = create_model(
        "Recipe",
        __base__=_Section,
        __doc__="A serkit recipe: data, features, model, training.",
        **fields,
    )
    return model


def recipe_model() -> type[BaseModel]:
    """The Recipe model of the process-wide registry (built once per plugin manager, after plugin loading)."""
    from serkit.plugins import get_plugin_manager

    return get_plugin_manager().cached("recipe_model", lambda manager: build_recipe_model(manager.registry))


# ----------------------------------------------------------------------------- errors
_KIND_AT = {
    ("domains", "*", "dataset"): "dataset",
    ("features", "*", "extractor"): "extractor",
    ("features", "*", "encoder"): "encoder",
    ("fusion",): "fusion",
    ("heads", "*"): "head",
    ("loss", "main"): "loss",
    ("loss", "aux"): "loss",
    ("optimizer",): "optimizer",
}


_PROTOCOL_TAGS = ("random", "speaker", "predefined", "cross_corpus", "cross_lingual")


def _kind_of(path: Sequence[str | int]) -> str | None:
    for pattern, kind in _KIND_AT.items():
        if len(pattern) == len(path) and all(p == "*" or p == q for p, q in zip(pattern, path, strict=True)):
            return kind
    return None


def _data_path(loc: Sequence[str | int], data: Any) -> tuple[list[str | int], Any]:
    """Map a pydantic ``loc`` (with union tags and validator names) onto the data path."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and not (isinstance(part, str) and part in node):
            # a union tag (the node's type) or a validator name: not part of the data
            if isinstance(part, str) and (
                part == node.get("type") or "[" in part or part in _PROTOCOL_TAGS
            ):
                continue
            path.append(part)
            node = None
        else:
            path.append(part)
            node = None
    return path, node


def _section_fields(
    model: type[BaseModel], path: Sequence[str | int], registry: Registry, data: Any
) -> list[str] | None:
    kind = _kind_of(path)
    if kind is not None:
        node = data
        for p in path:  # pydantic's loc may name a non-string key (None, 1) as a string
            if isinstance(node, dict):
                node = node.get(p)
            elif isinstance(node, list) and isinstance(p, int) and -len(node) <= p < len(node):
                node = node[p]
            else:
                node = None
        name = node.get("type") if isinstance(node, dict) else None
        if isinstance(name, str) and (kind, name) in registry:
            return ["type", *registry.get(kind, name).Params.model_fields]
        return None
    sub: Any = model
    node: Any = data
    for p in path:
        if isinstance(p, int):
            return None
        node = node.get(p) if isinstance(node, dict) else None
        ann = getattr(sub, "model_fields", {}).get(p)
        if ann is None:
            if path and path[0] in ("domains", "features") and len(path) >= 2:
                continue
            return None
        sub = ann.annotation
        args = getattr(sub, "__args__", ())
        if args and not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            cand = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tag = node.get("type") if isinstance(node, dict) else None  # a tagged union: the member named
            named = [
                a
                for a in cand
                if "type" in a.model_fields and tag in getattr(a.model_fields["type"].annotation, "__args__", ())
            ]
            sub = named[0] if named else cand[-1] if cand else sub
    if isinstance(sub, type) and issubclass(sub, BaseModel):
        return list(sub.model_fields)
    return None


def _format_error(
    err: dict[str, Any], data: Any, model: type[BaseModel], registry: Registry
) -> tuple[list[str | int], str]:
    loc = list(err.get("loc", ()))
    etype = err.get("type", "")
    path, _ = _data_path(loc, data)
    msg = err.get("msg", "invalid")
    if etype in ("union_tag_invalid", "union_tag_not_found", "literal_error") and (
        etype != "literal_error" or (path and path[-1] == "type")
    ):
        comp_path = path[:-1] if path and path[-1] == "type" else path
        kind = _kind_of(comp_path)
        if kind is not None:
            tag = (err.get("ctx") or {}).get("tag")
            if tag is None:
                node = data
                for p in comp_path:
                    node = node.get(p) if isinstance(node, dict) else None
                tag = node.get("type") if isinstance(node, dict) else None
            if tag is None:
                return [*comp_path, "type"], (
                    f"missing 'type'; available {kind} types: {', '.join(registry.names(kind))}"
                )
            text = registry.unknown_message(kind, str(tag))
            if isinstance(tag, str) and ("." in tag or ":" in tag):
                text += " (recipes name registered components, never import paths)"
            return [*comp_path, "type"], text
        if etype == "union_tag_invalid" and path and path[0] == "protocol":
            tag = (err.get("ctx") or {}).get("tag")
            near = closest(str(tag), list(_PROTOCOL_TAGS))
            extra = f"; did you mean {near!r}?" if near else ""
            return [
                "protocol",
                "type",
            ], f"unknown protocol {tag!r}; available: {', '.join(_PROTOCOL_TAGS)}{extra}"
        if etype == "union_tag_not_found" and path == ["protocol"]:
            return ["protocol", "type"], f"missing 'type'; available protocols: {', '.join(_PROTOCOL_TAGS)}"
    if etype == "extra_forbidden":
        field = path[-1] if path else "?"
        allowed = _section_fields(model, path[:-1], registry, data)
        text = f"unknown field {field!r}"
        if allowed:
            near = closest(str(field), [a for a in allowed if a != "type"])
            if near:
                text += f"; did you mean {near!r}?"
            text += f" (fields: {', '.join(a for a in allowed if a != 'type')})"
        return path, text
    if etype == "missing":
        return path, "required field is missing"
    value = err.get("input")
    if (
        etype.endswith("_type")
        or etype.endswith("_parsing")
        or etype in ("model_type", "dict_type")
    ):
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return path, f"{msg} (got {shown})"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return path, msg


def validate_recipe_data(
    data: dict[str, Any],
    lines: LineMap | None = None,
    source: str = "<recipe>",
    registry: Registry | None = None,
) -> Any:
    """Validate a recipe mapping against the registry's Recipe model.

    Returns:
        The validated Recipe instance.

    Raises:
        RecipeError: listing every problem as ``path (line N): message``.
    """
    from serkit.plugins import get_registry

    lines = lines or LineMap()
    reg = registry or get_registry()
    model = recipe_model() if registry is None else build_recipe_model(reg)
    try:
        recipe = model.model_validate(data)
    except ValidationError as err:
        problems = []
        seen = set()
        for e in err.errors(include_url=False):
            path, text = _format_error(e, data, model, reg)
            key = (tuple(path), text)
            if key in seen:
                continue
            seen.add(key)
            problems.append(
                (".".join(str(p) for p in path) or "<root>", lines.line(tuple(path)), text)
            )
        raise RecipeError(_problems_message(source, problems), problems) from None
    except RecipeError:
        raise
    except Exception as err:  # a component's validator raised something else: its bug, reported as a recipe error
        text = f"a parameter check failed with {type(err).__name__}: {err}"
        raise RecipeError(_problems_message(source, [("<root>", None, text)]), [("<root>", None, text)]) from err
    problems = check_recipe(recipe, reg, lines)
    if problems:
        raise RecipeError(_problems_message(source, problems), problems)
    return recipe


def _problems_message(source: str, problems: list[tuple[str, int | None, str]]) -> str:
    head = f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"
    body = "\n".join(
        f"  {path}{f' (line {line})' if line else ' (--set)' if line is None and path != '<root>' else ''}: {text}"
        for path, line, text in problems
    )
    return f"{head}\n{body}"


def check_recipe(
    recipe: Any, registry: Registry, lines: LineMap
) -> list[tuple[str, int | None, str]]:
    """Checks that span fields: ids, heads per domain, encoders on sequence streams."""
    problems: list[tuple[str, int | None, str]] = []

    def add(path: tuple[str | int, ...], text: str) -> None:
        problems.append((".".join(map(str, path)), lines.line(path), text))

    for section in ("domains", "features"):
        for key in getattr(recipe, section):
            if not _ID_RE.match(key):
                add(
                    (section, key),
                    f"id {key!r} must start with a letter and use letters, digits, '_' or '-'",
                )
    proto = recipe.protocol
    if proto.type in ("cross_corpus", "cross_lingual"):
        unknown = [d for d in proto.test if d not in recipe.domains]
        if unknown:
            add(("protocol", "test"), f"unknown domain(s) {unknown}; domains: {', '.join(recipe.domains)}")
        train_domains = [d for d in recipe.domains if d not in proto.test]
        if not train_domains:
            add(("protocol", "test"), "every domain is a test domain; leave at least one for training")
        train_heads = {recipe.domains[d].head or d for d in train_domains}
        for d in proto.test:
            if d in recipe.domains and (recipe.domains[d].head or d) not in train_heads:
                add(
                    ("domains", d, "head"),
                    f"test-only domain {d!r} needs a trained head: set it to a training domain's head "
                    f"({', '.join(sorted(train_heads))})",
                )
    head_ids = {d: (spec.head or d) for d, spec in recipe.domains.items()}
    used = sorted(set(head_ids.values()))
    for key in recipe.heads:
        # with init_from, heads may also describe the initial run's domains (checked at run time)
        if key != "default" and key not in used and recipe.init_from is None:
            add(
                ("heads", key),
                f"no domain uses head {key!r}; heads are keyed by head id (a domain id unless the domain "
                f"sets 'head') or 'default' (head ids: {', '.join(used)})",
            )
    if "default" not in recipe.heads:
        for h in used:
            if h not in recipe.heads:
                add(("heads",), f"head {h!r} is not defined and there is no 'default' head")
    for sid, stream in recipe.features.items():
        try:
            ext = registry.create("extractor", stream.extractor)
            output = ext.output
        except Exception as err:  # params valid but inconsistent
            add(("features", sid, "extractor"), str(err))
            continue
        if getattr(ext, "trainable", False):
            if stream.encoder is not None:
                add(
                    ("features", sid, "encoder"),
                    f"extractor '{ext.name}' is fine-tuned (it is its own encoder); remove the encoder",
                )
            continue
        if output == "sequence" and stream.encoder is None:
            add(
                ("features", sid, "encoder"),
                f"extractor '{ext.name}' yields sequences; add an encoder "
                f"(available: {', '.join(registry.names('encoder'))})",
            )
        if output == "vector" and stream.encoder is not None:
            names = registry.names("encoder")
            takers = [n for n in names if getattr(registry.get("encoder", n), "accepts_vectors", False)]
            if stream.encoder.type not in takers:
                add(
                    ("features", sid, "encoder"),
                    f"extractor '{ext.name}' yields one vector per utterance; remove the encoder"
                    + (f" or use one that takes vectors ({', '.join(takers)})" if takers else ""),
                )
                continue
        if stream.encoder is not None:
            for message in registry.create("encoder", stream.encoder).check_stream(ext, registry):
                add(("features", sid, "encoder"), message)
    return problems


def load_recipe(
    path: str | Path,
    overrides: Iterable[str] = (),
    registry: Registry | None = None,
    unset: Iterable[str] = (),
) -> tuple[Any, dict[str, Any]]:
    """Load, substitute, override and validate a recipe file.

    ``unset`` paths are removed first (e.g. ``domains.xb`` to drop a domain), then the
    ``overrides`` (``dotted.path=value``) are applied.

    Returns:
        ``(recipe, data)``: the validated model and the resolved mapping it came from.
    """
    data, lines = load_yaml_with_lines(path)
    data = substitute_env(data, lines)
    data = apply_unsets(data, list(unset))
    data = apply_overrides(data, list(overrides), lines)
    recipe = validate_recipe_data(data, lines, str(path), registry)
    return recipe, data

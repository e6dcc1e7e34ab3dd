"""The recipe model, built from the registry, and recipe validation.

For each component kind the model holds a discriminated union over the registered
``Params`` (``type: <name>``) around the fixed sections (:mod:`serkit.config.sections`).
Every problem of a recipe is reported at once, one line each: ``dotted.path (line N):
message`` (the translation of pydantic's errors is :mod:`serkit.config.problems`);
:func:`check_recipe` adds the checks that span fields.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, Field, ValidationError, create_model

from serkit.config.loader import LineMap, apply_overrides, apply_unsets, load_yaml_with_lines, substitute_env
from serkit.config.problems import format_error, problems_message
from serkit.config.sections import (
    CALLBACKS_DESCRIPTION,
    SELECT_BY_DESCRIPTION,
    CrossCorpusProtocol,
    DataSpec,
    DomainSpec,
    FiniteFloats,
    InitSpec,
    LoggingSpec,
    PredefinedProtocol,
    Protocol,
    RandomProtocol,
    Recipe,
    Section,
    SpeakerProtocol,
    StoreSpec,
    StreamSpec,
    TrainSpec,
    freeze_part,
    run_name,
)
from serkit.errors import RecipeError
from serkit.interfaces.metric import selection_choices
from serkit.registry import Registry

__all__ = [
    "CrossCorpusProtocol",
    "DataSpec",
    "DomainSpec",
    "LoggingSpec",
    "PredefinedProtocol",
    "RandomProtocol",
    "Recipe",
    "SpeakerProtocol",
    "StoreSpec",
    "StreamSpec",
    "TrainSpec",
    "build_recipe_model",
    "check_recipe",
    "load_recipe",
    "recipe_model",
    "validate_recipe_data",
]

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _component_union(registry: Registry, kind: str) -> Any:
    members = []
    for name in registry.names(kind):
        cls = registry.get(kind, name)
        spec = create_model(
            f"{kind}:{name}",
            __base__=(cls.Params, FiniteFloats),
            __doc__=cls.__doc__ or cls.Params.__doc__,
            type=(Literal[name], Field(description=f"Registered {kind} name.")),
        )
        members.append(spec)
    if not members:
        return Annotated[dict, Field(description=f"no {kind} is registered")]
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator="type")]  # noqa: UP007


def _domain_spec(dataset: Any) -> type[BaseModel]:
    """A domain: its dataset (one of the registered ``dataset`` types) and per-domain settings."""
    return create_model(
        "DomainSpec",
        __base__=Section,
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


def _stream_spec(extractor: Any, encoder: Any) -> type[BaseModel]:
    """A feature stream: an extractor, plus an encoder for sequences."""
    return create_model(
        "StreamSpec",
        __base__=Section,
        __doc__="A feature stream: an extractor, plus an encoder when it yields sequences.",
        extractor=(extractor, Field(description="Waveform -> features.")),
        encoder=(
            encoder | None,
            Field(None, description="Sequence -> vector; required for sequence extractors."),
        ),
    )


def _loss_spec(loss: Any) -> type[BaseModel]:
    """The main loss and an optional auxiliary one."""
    return create_model(
        "LossSpec",
        __base__=Section,
        __doc__="The main loss (on logits) and an optional auxiliary loss.",
        main=(
            loss,
            Field(default_factory=lambda: {"type": "cross_entropy"}, description="Main loss."),
        ),
        aux=(loss | None, Field(None, description="Auxiliary loss added to the main one.")),
    )


def _train_spec(registry: Registry) -> type[BaseModel]:
    """``train``: :class:`~serkit.config.sections.TrainSpec` with the registry's metrics and callbacks."""
    callback = _component_union(registry, "callback")
    if not registry.names("callback"):  # no plugin registers one: every entry is an unknown type
        callback = Annotated[dict, AfterValidator(functools.partial(_no_callback, registry))]
    choices = selection_choices(registry.metrics())
    return create_model(
        "TrainSpec",
        __base__=TrainSpec,
        __doc__=TrainSpec.__doc__,
        select_by=(Literal[choices], Field("val_ua", description=SELECT_BY_DESCRIPTION)),  # type: ignore[valid-type]
        callbacks=(list[callback], Field(default_factory=list, description=CALLBACKS_DESCRIPTION)),
    )


def _no_callback(registry: Registry, value: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(registry.unknown_message("callback", str(value.get("type"))))


def _run_fields() -> dict[str, Any]:
    """The recipe's first fields: what the run is called, its seeds, device, protocol and reference."""
    return {
        "name": (
            Annotated[str, AfterValidator(run_name)],
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
    }


def _model_fields(registry: Registry) -> dict[str, Any]:
    """The recipe's data and model fields: domains, feature streams, fusion, heads, losses, optimizer."""
    dataset = _component_union(registry, "dataset")
    extractor = _component_union(registry, "extractor")
    encoder = _component_union(registry, "encoder")
    fusion = _component_union(registry, "fusion")
    head = _component_union(registry, "head")
    loss = _component_union(registry, "loss")
    optimizer = _component_union(registry, "optimizer")
    domain_spec, stream_spec, loss_spec = _domain_spec(dataset), _stream_spec(extractor, encoder), _loss_spec(loss)
    return {
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
    }


def _setting_fields(train: type[BaseModel]) -> dict[str, Any]:
    """The recipe's last fields: training, data handling, store, logging, ``init_from`` and ``freeze``."""
    return {
        "train": (train, Field(default_factory=train, description="Training loop.")),
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
            list[Annotated[str, AfterValidator(freeze_part)]],
            Field(
                default_factory=list,
                description="With init_from: parts loaded from the run that stay fixed: 'encoders', "
                "'encoders.<stream>', 'fusion', 'heads', 'heads.<head>'. New domains' parameters "
                "always train.",
            ),
        ),
    }


def build_recipe_model(registry: Registry) -> type[BaseModel]:
    """Create the Recipe pydantic model for the components in ``registry``."""
    fields: dict[str, Any] = {**_run_fields(), **_model_fields(registry), **_setting_fields(_train_spec(registry))}
    model = create_model(
        "Recipe",
        __base__=Section,
        __doc__="A serkit recipe: data, features, model, training.",
        **fields,
    )
    return model


def recipe_model() -> type[BaseModel]:
    """The Recipe model of the process-wide registry (built once per plugin manager, after plugin loading)."""
    from serkit.plugins import get_plugin_manager

    return get_plugin_manager().cached("recipe_model", lambda manager: build_recipe_model(manager.registry))


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
            path, text = format_error(e, data, model, reg)
            key = (tuple(path), text)
            if key in seen:
                continue
            seen.add(key)
            problems.append(
                (".".join(str(p) for p in path) or "<root>", lines.line(tuple(path)), text)
            )
        raise RecipeError(problems_message(source, problems), problems) from None
    except RecipeError:
        raise
    except Exception as err:  # a component's validator raised something else: its bug, reported as a recipe error
        text = f"a parameter check failed with {type(err).__name__}: {err}"
        raise RecipeError(problems_message(source, [("<root>", None, text)]), [("<root>", None, text)]) from err
    problems = check_recipe(recipe, reg, lines)
    if problems:
        raise RecipeError(problems_message(source, problems), problems)
    return recipe


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

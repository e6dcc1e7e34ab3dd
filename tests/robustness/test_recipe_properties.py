"""Property-based: whatever the recipe text or data, loading gives a Recipe or a RecipeError, nothing else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serkit.config.loader import apply_overrides, apply_unsets, load_yaml_text, substitute_env
from serkit.config.recipe import load_recipe, validate_recipe_data
from serkit.errors import RecipeError, SerkitError

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD: dict[str, Any] = {
    "name": "demo",
    "seed": 1,
    "repeats": 2,
    "protocol": {"type": "speaker", "k": 3, "val_speakers": 0.25},
    "domains": {
        "xa": {"dataset": {"type": "synthetic", "languages": ["xa"], "speakers": 4}},
        "xb": {"dataset": {"type": "manifest", "path": "m.csv", "labels": ["angry", "sad"]}, "head": "xa"},
    },
    "features": {
        "mfcc": {"extractor": {"type": "mfcc", "n_mfcc": 20, "hop_ms": 20}, "encoder": {"type": "mean_pool"}},
    },
    "fusion": {"type": "gated_nas", "zeta": 2.0},
    "heads": {"default": {"type": "mlp", "hidden": [16], "dropout": 0.1}},
    "loss": {"main": {"type": "cross_entropy"}},
    "optimizer": {"type": "adamw", "lr": 0.001},
    "train": {"epochs": 3, "batch_size": 8},
    "data": {"on_bad_audio": "skip"},
}

#: Keys a fuzzer should hit often: the recipe's own vocabulary, plus odd ones.
KEYS = st.one_of(
    st.sampled_from(
        ["name", "type", "domains", "features", "dataset", "extractor", "encoder", "protocol", "k", "lr", "zeta",
         "heads", "default", "train", "epochs", "batch_size", "repeats", "loss", "main", "aux", "xa", "mfcc"]
    ),
    st.text(max_size=8),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["mfcc", "synthetic", "mean_pool", "os.system", "pkg.mod:Cls", "${HOME}", "${NOPE_X}", "all"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12,
)


def _check(data: Any) -> None:
    try:
        recipe = validate_recipe_data(data)
    except RecipeError as err:
        assert err.problems, "a RecipeError lists its problems"
        for path, line, text in err.problems:
            assert isinstance(path, str) and path and isinstance(text, str) and text
            assert line is None or isinstance(line, int)
        return
    assert recipe.name and recipe.domains and recipe.features


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = [p for p in _paths(GOOD) if p]


def test_the_base_recipe_is_valid() -> None:
    recipe = validate_recipe_data(copy.deepcopy(GOOD))
    assert recipe.fusion.zeta == 2.0 and recipe.protocol.k == 3


@PROPERTY
@given(data=VALUES)
def test_random_data(data: Any) -> None:
    _check(data if isinstance(data, dict) else {"name": data})


@PROPERTY
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(PATHS), st.one_of(VALUES, st.just("<delete>")), st.one_of(st.none(), KEYS)),
        min_size=1,
        max_size=3,
    )
)
def test_random_edits_of_a_valid_recipe(edits: list[tuple[tuple[Any, ...], Any, Any]]) -> None:
    """Replace or delete values at any depth, or add a random key next to them."""
    data = copy.deepcopy(GOOD)
    for path, value, extra_key in edits:
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            if value == "<delete>":
                del node[path[-1]]
            else:
                node[path[-1]] = value
            if extra_key is not None and isinstance(node, dict):
                node[extra_key] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit changed the shape
    _check(data)


YAML_PIECES = st.sampled_from(
    ["name: x\n", "domains:\n", "  xa:\n", "    dataset: {type: synthetic}\n", "features:\n", "  m:\n",
     "    extractor: {type: mfcc}\n", "    encoder: {type: mean_pool}\n", "- a\n", "[1, 2\n", "{a: 1}\n", "&a [x]\n",
     "*a\n", "b: *a\n", "!!python/object:os.system {}\n", "!!binary aGk=\n", "? [a]\n", ": v\n", "---\n", "...\n",
     "\t", "'", '"', "%YAML 1.1\n", "x: !!set {a, b}\n", "y: 2001-12-14\n", "z: .inf\n", "w: .nan\n",
     "lr: 1e-3\n", "k: ${K:-3}\n", "n: ${NOPE_X}\n", "\x00", "\ufeff", "  ", "#c\n", "key: |\n  text\n"]
)


@PROPERTY
@given(pieces=st.lists(st.one_of(YAML_PIECES, st.text(max_size=6)), max_size=14))
def test_random_yaml_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        data, lines = load_yaml_text(text, "fuzz.yaml")
        data = substitute_env(data, lines)
    except RecipeError as err:
        assert str(err).startswith("fuzz.yaml: ") or "environment variable" in str(err)
        return
    assert isinstance(data, dict)
    _check(data)


@PROPERTY
@given(
    sets=st.lists(
        st.one_of(
            st.builds(lambda p, v: f"{p}={v}", st.sampled_from([".".join(map(str, p)) for p in PATHS]), st.text()),
            st.text(max_size=20),
        ),
        max_size=3,
    ),
    unsets=st.lists(
        st.one_of(st.sampled_from([".".join(map(str, p)) for p in PATHS]), st.text(max_size=8)), max_size=2
    ),
)
def test_random_set_and_unset_overrides(sets: list[str], unsets: list[str]) -> None:
    text = yaml.safe_dump(GOOD)
    try:
        data, lines = load_yaml_text(text)
        data = apply_unsets(data, unsets)
        data = apply_overrides(data, sets, lines)
    except RecipeError:
        return
    _check(data)


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes_as_a_recipe_file(raw: bytes, tmp_path_factory: Any) -> None:
    path = Path(tmp_path_factory.mktemp("bytes")) / "r.yaml"
    path.write_bytes(raw)
    try:
        load_recipe(path)
    except SerkitError as err:
        assert isinstance(err, RecipeError)

"""Hostile recipes: unknown fields at any depth, wrong types, impossible values, import paths, YAML tricks.

tests/config/test_recipe.py covers the basics (three errors at once with lines, one
import path, lr < 0, bad YAML); this file goes through every section and kind.
"""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from serkit.config.loader import MAX_DEPTH, MAX_VALUES, load_yaml_text
from serkit.config.recipe import DataSpec, SpeakerProtocol, StoreSpec, TrainSpec, load_recipe, validate_recipe_data
from serkit.errors import RecipeError
from serkit.plugins import get_registry

BASE: dict[str, Any] = {
    "name": "demo",
    "protocol": {"type": "speaker", "k": 3},
    "domains": {"xa": {"dataset": {"type": "synthetic", "languages": ["xa"]}}},
    "features": {"mfcc": {"extractor": {"type": "mfcc", "n_mfcc": 20}, "encoder": {"type": "mean_pool"}}},
    "fusion": {"type": "gated_nas"},
    "heads": {"default": {"type": "mlp"}},
    "loss": {"main": {"type": "cross_entropy"}},
    "optimizer": {"type": "adamw"},
    "train": {"epochs": 2},
    "data": {},
    "store": {},
}


def problems_of(path: tuple[Any, ...], value: Any) -> list[tuple[str, str]]:
    data = copy.deepcopy(BASE)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(RecipeError) as info:
        validate_recipe_data(data)
    return [(p, m) for p, _, m in info.value.problems]


def fields(names: Any) -> str:
    return ", ".join(n for n in names if n != "type")


def params(kind: str, name: str) -> str:
    return fields(get_registry().get(kind, name).Params.model_fields)


def test_base_recipe_is_valid() -> None:
    validate_recipe_data(copy.deepcopy(BASE))


@pytest.mark.parametrize(
    "path,near,section",
    [
        (("train", "epoch"), "epochs", lambda: fields(TrainSpec.model_fields)),
        (("data", "workers"), "extract_workers", lambda: fields(DataSpec.model_fields)),
        (("store", "rooot"), "root", lambda: fields(StoreSpec.model_fields)),
        (("protocol", "kk"), "k", lambda: fields(SpeakerProtocol.model_fields)),
        (("domains", "xa", "dataset", "langauges"), "languages", lambda: params("dataset", "synthetic")),
        (("features", "mfcc", "extractor", "n_mfc"), "n_mfcc", lambda: params("extractor", "mfcc")),
        (("features", "mfcc", "encoder", "stat"), "stats", lambda: params("encoder", "mean_pool")),
        (("features", "mfcc", "extractr"), "extractor", lambda: "extractor, encoder"),
        (("fusion", "zetta"), "zeta", lambda: params("fusion", "gated_nas")),
        (("heads", "default", "hiden"), "hidden", lambda: params("head", "mlp")),
        (("loss", "main", "label_smooth"), "label_smoothing", lambda: params("loss", "cross_entropy")),
        (("loss", "mian"), "main", lambda: "main, aux"),
        (("optimizer", "lrr"), "lr", lambda: params("optimizer", "adamw")),
    ],
)
def test_unknown_fields_at_every_depth(path: tuple[str, ...], near: str, section: Any) -> None:
    assert problems_of(path, 1) == [
        (".".join(path), f"unknown field {path[-1]!r}; did you mean {near!r}? (fields: {section()})")
    ]


def test_unknown_top_level_field_lists_the_recipe_fields() -> None:
    ((path, msg),) = problems_of(("epochs",), 3)
    assert path == "epochs"
    assert msg.startswith("unknown field 'epochs' (fields: name, description, seed, repeats, device, protocol, ")


@pytest.mark.parametrize(
    "path,value,expected",
    [
        (("domains",), ["xa"], "Input should be a valid dictionary (got ['xa'])"),
        (("features", "mfcc", "extractor"), "mfcc", "Input should be a valid dictionary or object to extract fields "
         "from (got 'mfcc')"),
        (("train", "epochs"), "5", None),  # numeric strings are accepted (lax mode): no problem
        (("train", "epochs"), "five", "Input should be a valid integer, unable to parse string as an integer "
         "(got 'five')"),
        (("seed",), 1.5, "Input should be a valid integer, got a number with a fractional part"),
        (("heads", "default", "hidden"), "16", "Input should be a valid tuple (got '16')"),
        (("data", "on_bad_audio"), "ignore", "Input should be 'error' or 'skip'"),
        (("protocol",), 5, "Input should be a valid dictionary or object to extract fields from (got 5)"),
        (("name",), None, "Input should be a valid string (got None)"),
    ],
)
def test_wrong_types(path: tuple[str, ...], value: Any, expected: str | None) -> None:
    if expected is None:
        data = copy.deepcopy(BASE)
        data["train"]["epochs"] = value
        assert validate_recipe_data(data).train.epochs == 5
        return
    assert problems_of(path, value) == [(".".join(path), expected)]


@pytest.mark.parametrize(
    "path,value,expected",
    [
        (("optimizer", "lr"), -0.1, "Input should be greater than 0"),
        (("optimizer", "lr"), 0, "Input should be greater than 0"),
        (("optimizer", "lr"), float("inf"), "Input should be a finite number"),
        (("optimizer", "lr"), float("nan"), "Input should be a finite number"),
        (("fusion", "zeta"), 1.0, "Input should be greater than 1"),
        (("fusion", "zeta"), 0.5, "Input should be greater than 1"),
        (("fusion", "beta"), 0, "Input should be greater than 0"),
        (("train", "batch_size"), 0, "Input should be greater than or equal to 1"),
        (("train", "grad_clip"), float("inf"), "Input should be a finite number"),
        (("repeats",), 0, "Input should be greater than or equal to 1"),
        (("protocol", "k"), 1, "k must be at least 2 (or 'all')"),
        (("protocol", "val_speakers"), 1.0, "Input should be less than 1"),
        (("heads", "default", "dropout"), 1.0, "Input should be less than 1"),
        (("features", "mfcc", "extractor", "win_ms"), float("inf"), "Input should be a finite number"),
        (("name",), "../../etc/evil", "name '../../etc/evil' cannot name a run folder: use 1 to 120 characters "
         "without '/', '\\' or control characters (not '.' or '..')"),
        (("name",), "", "name '' cannot name a run folder: use 1 to 120 characters without '/', '\\' or control "
         "characters (not '.' or '..')"),
    ],
)
def test_impossible_values(path: tuple[str, ...], value: Any, expected: str) -> None:
    assert problems_of(path, value) == [(".".join(path), expected)]


def test_protocol_without_or_with_an_unknown_type() -> None:
    tags = "random, speaker, predefined, cross_corpus, cross_lingual"
    assert problems_of(("protocol",), {"k": 3}) == [("protocol.type", f"missing 'type'; available protocols: {tags}")]
    assert problems_of(("protocol",), {"type": "speakers"}) == [
        ("protocol.type", f"unknown protocol 'speakers'; available: {tags}; did you mean 'speaker'?")
    ]


@pytest.mark.parametrize(
    "path,kind",
    [
        (("domains", "xa", "dataset"), "dataset"),
        (("features", "mfcc", "extractor"), "extractor"),
        (("features", "mfcc", "encoder"), "encoder"),
        (("fusion",), "fusion"),
        (("heads", "default"), "head"),
        (("loss", "main"), "loss"),
        (("optimizer",), "optimizer"),
    ],
)
@pytest.mark.parametrize("target", ["torch.optim.SGD", "mypkg.corpus:Corpus", "os.system"])
def test_import_paths_are_never_types(path: tuple[str, ...], kind: str, target: str) -> None:
    names = ", ".join(get_registry().names(kind))
    assert problems_of(path, {"type": target}) == [
        (
            ".".join((*path, "type")),
            f"unknown {kind} type {target!r}; available: {names} (recipes name registered components, never import "
            "paths)",
        )
    ]


def test_non_string_keys_are_reported_not_crashed_on() -> None:
    data = copy.deepcopy(BASE)
    data["heads"][None] = {"type": "mlp"}
    data["train"][3] = 1
    with pytest.raises(RecipeError) as info:
        validate_recipe_data(data)
    assert [(p, m) for p, _, m in info.value.problems] == [
        ("heads.None.[key]", "Input should be a valid string (got None)"),
        ("train.3", "Keys should be strings"),
    ]


# ----------------------------------------------------------------------------- YAML
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    "tag,shown",
    [
        ("!!python/object:os.system {}", "!!python/object:os.system"),
        ("!!python/object/apply:os.system ['echo pwned']", "!!python/object/apply:os.system"),
        ("!!python/name:builtins.eval", "!!python/name:builtins.eval"),
        ("!!python/module:os", "!!python/module:os"),
        ("!custom {a: 1}", "!custom"),
    ],
)
def test_yaml_tags_are_refused_by_safe_load(tmp_path: Path, tag: str, shown: str) -> None:
    path = write(tmp_path, f"name: demo\ndescription: {tag}\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == (
        f"{path}: not valid YAML (line 2, column 14): tag {shown!r} is not allowed; recipes are read with "
        "yaml.safe_load, which builds only plain data (mappings, lists, strings, numbers, booleans, null)"
    )


def test_recursive_aliases_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: demo\ndescription: &a [1, *a]\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == (
        f"{path}: not valid as a recipe: a YAML alias refers to a mapping or list that contains it (line 2)"
    )


def test_alias_bombs_are_refused_before_expansion(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]  # 10**9 values
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: not valid as a recipe: more than {MAX_VALUES} values once YAML aliases are " \
        "expanded (line 5)"
    # a shared block used twice is fine
    data, _ = load_yaml_text("base: &h {type: mlp, hidden: [8]}\nheads: {a: *h, b: *h}\n")
    assert data["heads"]["a"] == data["heads"]["b"] == {"type": "mlp", "hidden": [8]}


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    for depth, expected in [
        (MAX_DEPTH + 1, f"not valid as a recipe: nested more than {MAX_DEPTH} levels deep"),
        (20_000, "not valid as a recipe: nested too deeply"),
    ]:
        path = write(tmp_path, "name: demo\ndescription: " + "[" * depth + "]" * depth + "\n")
        with pytest.raises(RecipeError) as info:
            load_recipe(path)
        assert str(info.value) == f"{path}: {expected}"


def test_not_utf8_and_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"name: d\xe9mo\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}: cannot read recipe: 'utf-8' codec can't decode byte 0xe9")
    path.write_text("just a string\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value) == f"{path}: a recipe must be a YAML mapping (name: ..., domains: ...), got str"


def test_set_overrides_are_checked_like_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from serkit.config.loader import LineMap, apply_overrides, substitute_env

    with pytest.raises(RecipeError) as info:
        apply_overrides({}, ["description=&a [1, *a]"], LineMap())
    assert str(info.value) == (
        "--set 'description=&a [1, *a]': not valid as a recipe: a YAML alias refers to a mapping or list that "
        "contains it (line 1)"
    )
    deep = "description=" + "[" * 100_000
    with pytest.raises(RecipeError) as info:
        apply_overrides({}, [deep], LineMap())
    assert str(info.value) == f"--set {deep[:57] + '...'!r}: not valid as a recipe: nested too deeply"
    # tags are never constructed: the value stays text
    assert apply_overrides({}, ["description=!!python/object:os.system {}"], LineMap()) == {
        "description": "!!python/object:os.system {}"
    }
    monkeypatch.setenv("SK_DEEP", "[" * 100_000)
    assert substitute_env({"description": "${SK_DEEP}"}) == {"description": "[" * 100_000}

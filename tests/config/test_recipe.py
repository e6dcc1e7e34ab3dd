from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serkit.config.loader import apply_overrides, load_yaml_text, substitute_env
from serkit.config.recipe import load_recipe
from serkit.errors import RecipeError

GOOD = """\
name: demo
domains:
  xa:
    dataset: {type: synthetic, languages: [xa]}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 20}
    encoder: {type: mean_pool}
"""

THREE_ERRORS = """\
name: demo
repeats: two
domains:
  xa:
    dataset: {type: synthetc, languages: [xa]}
features:
  mfcc:
    extractor:
      type: mfcc
      n_mfc: 20
    encoder: {type: mean_pool}
"""


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_good_recipe_validates_with_defaults(tmp_path: Path) -> None:
    recipe, _ = load_recipe(write(tmp_path, GOOD))
    assert recipe.name == "demo"
    assert recipe.protocol.type == "random" and recipe.protocol.test == 0.2
    assert recipe.features["mfcc"].extractor.n_mfcc == 20
    assert recipe.fusion.type == "concat"
    assert recipe.heads["default"].type == "mlp"
    assert recipe.optimizer.lr == pytest.approx(1e-3)


def test_every_error_at_once_with_paths_lines_and_closest(tmp_path: Path) -> None:
    path = write(tmp_path, THREE_ERRORS)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    problems = sorted(info.value.problems)
    assert problems == sorted(
        [
            (
                "repeats",
                2,
                "Input should be a valid integer, unable to parse string as an integer (got 'two')",
            ),
            (
                "domains.xa.dataset.type",
                5,
                f"unknown dataset type 'synthetc'; available: {_datasets()}; did you mean 'synthetic'?",
            ),
            (
                "features.mfcc.extractor.n_mfc",
                10,
                "unknown field 'n_mfc'; did you mean 'n_mfcc'? (fields: " + _mfcc_fields() + ")",
            ),
        ]
    )
    text = str(info.value)
    assert text.startswith(f"{path}: 3 problems\n")
    assert "  domains.xa.dataset.type (line 5): unknown dataset type 'synthetc'" in text


def _datasets() -> str:
    from serkit.plugins import get_registry

    names = get_registry().names("dataset")
    assert {"folder", "manifest", "synthetic"} <= set(names)
    return ", ".join(names)


def _mfcc_fields() -> str:
    from serkit.builtin.extractors.mfcc import Mfcc

    return ", ".join(Mfcc.Params.model_fields)


def test_import_path_as_type_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("type: mean_pool", "type: os.system")
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    ((path, line, msg),) = info.value.problems
    assert path == "features.mfcc.encoder.type" and line == 8
    assert msg.startswith("unknown encoder type 'os.system'; available: ")
    assert msg.endswith("(recipes name registered components, never import paths)")


def test_impossible_values_and_cross_field_checks(tmp_path: Path) -> None:
    text = GOOD + "optimizer: {type: adamw, lr: -1}\nheads: {yy: {type: mlp}}\n"
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    paths = [p for p, _, _ in info.value.problems]
    assert paths == ["optimizer.lr"]
    fixed = text.replace("lr: -1", "lr: 0.01")
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, fixed))
    msgs = [(p, m) for p, _, m in info.value.problems]
    assert (
        "heads.yy",
        "no domain uses head 'yy'; heads are keyed by head id (a domain id unless the domain sets 'head') "
        "or 'default' (head ids: xa)",
    ) in msgs
    assert ("heads", "head 'xa' is not defined and there is no 'default' head") in msgs


def test_sequence_stream_needs_encoder(tmp_path: Path) -> None:
    text = GOOD.replace("    encoder: {type: mean_pool}\n", "")
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, text))
    ((path, _, msg),) = info.value.problems
    assert path == "features.mfcc.encoder"
    assert msg.startswith("extractor 'mfcc' yields sequences; add an encoder (available: ")


def test_env_substitution(monkeypatch: pytest.MonkeyPatch) -> None:
    data, lines = load_yaml_text("a: ${SK_A:-5}\nb: x-${SK_B:-y}-z\nc: ${SK_C}\n")
    monkeypatch.setenv("SK_C", "set")
    out = substitute_env(data, lines)
    assert out == {"a": 5, "b": "x-y-z", "c": "set"}
    monkeypatch.delenv("SK_C")
    with pytest.raises(RecipeError) as info:
        substitute_env(data, lines)
    assert str(info.value) == (
        "c (line 3): environment variable SK_C is not set and has no default "
        "(write ${SK_C:-default} to give one)"
    )


def test_overrides(tmp_path: Path) -> None:
    recipe, _ = load_recipe(
        write(tmp_path, GOOD),
        [
            "repeats=3",
            "train.epochs=2",
            "features.mfcc.extractor.n_mfcc=13",
            "protocol.type=speaker",
        ],
    )
    assert recipe.repeats == 3 and recipe.train.epochs == 2
    assert recipe.features["mfcc"].extractor.n_mfcc == 13
    assert recipe.protocol.type == "speaker" and recipe.protocol.k == 5
    data2, lines = load_yaml_text("a: {b: [1, 2]}\n")
    assert apply_overrides(data2, ["a.b.1=7", "x.y=z"], lines) == {
        "a": {"b": [1, 7]},
        "x": {"y": "z"},
    }
    with pytest.raises(RecipeError, match=r"expected dotted\.path=value"):
        apply_overrides(data2, ["novalue"], lines)


def test_override_errors_say_set(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(write(tmp_path, GOOD), ["train.epochs=0"])
    assert info.value.problems == [
        ("train.epochs", None, "Input should be greater than or equal to 1")
    ]
    assert "  train.epochs (--set): Input should be greater than or equal to 1" in str(info.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("- a\n- b\n", "a recipe must be a YAML mapping"),
        ("a: [1, 2\n", "not valid YAML (line 2, column 1)"),
        ("!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(RecipeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_recipe(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_cli_validate_prints_all_errors_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, THREE_ERRORS)
    proc = subprocess.run(
        [sys.executable, "-m", "serkit", "validate", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "3 problems" in proc.stderr
    for needle in (
        "repeats (line 2)",
        "domains.xa.dataset.type (line 5)",
        "features.mfcc.extractor.n_mfc (line 10)",
    ):
        assert needle in proc.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "serkit", "validate", str(write(tmp_path, GOOD, "good.yaml"))],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout.strip().endswith(": ok")


def test_schema_has_component_unions() -> None:
    import json

    proc = subprocess.run(
        [sys.executable, "-m", "serkit", "schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(proc.stdout)
    text = json.dumps(schema)
    for name in ("cnn_bilstm_attn", "mean_pool", "synthetic", "mfcc", "ge2e", "adamw"):
        assert f'"{name}"' in text

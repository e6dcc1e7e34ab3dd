"""Every shipped recipe and every variant of every sweep validates against the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from serkit.config.recipe import load_recipe
from serkit.engine.sweep import load_sweep, variant_recipes
from serkit.plugins import get_registry, reset_plugins

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
FILES = sorted(RECIPES.glob("*.yaml"))


def _is_sweep(path: Path) -> bool:
    return "variants:" in path.read_text()


@pytest.fixture(autouse=True)
def _with_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    # dev recipes use the URDU plugin, which `make` installs next to serkit
    monkeypatch.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reset_plugins()


def _skip_without_plugin(path: Path) -> None:
    if "type: urdu" in path.read_text() and ("dataset", "urdu") not in get_registry():
        pytest.skip("serkit-plugin-urdu is not installed (make test installs it)")
    if "type: opensmile" in path.read_text() and ("extractor", "opensmile") not in get_registry():
        pytest.skip("serkit-plugin-opensmile is not installed (make test installs it)")


def test_recipes_exist() -> None:
    names = {p.name for p in FILES}
    assert {"quickstart.yaml", "paper_multidomain.yaml", "paper_table3.yaml", "paper_table4.yaml"} <= names
    assert {f"paper_single_{lang}.yaml" for lang in ("en", "de", "fr")} <= names


@pytest.mark.parametrize("path", [p for p in FILES if not _is_sweep(p)], ids=lambda p: p.name)
def test_recipe_validates(path: Path) -> None:
    _skip_without_plugin(path)
    recipe, _ = load_recipe(path)
    assert recipe.name == path.stem


@pytest.mark.parametrize("path", [p for p in FILES if _is_sweep(p)], ids=lambda p: p.name)
def test_sweep_variants_validate(path: Path) -> None:
    spec = load_sweep(path)
    base = RECIPES / (spec.recipe or next(iter(spec.variants.values())).recipe or "")
    _skip_without_plugin(base)
    recipes = variant_recipes(path)
    assert list(recipes) == list(spec.variants)


def test_paper_table3_variants_are_the_papers() -> None:
    recipes = variant_recipes(RECIPES / "paper_table3.yaml")
    fusion = {name: r.fusion.type for name, (r, _) in recipes.items()}
    assert fusion == {
        "Base": "shared_bottom",
        "BaseConcat": "concat",
        "SB": "shared_bottom",
        "OMoE": "omoe",
        "MMoE": "mmoe",
        "Ours": "gated_nas",
    }
    base = recipes["Base"][0]
    assert {d.head for d in base.domains.values()} == {"all"}
    ours = recipes["Ours"][0]
    assert (ours.fusion.beta, ours.fusion.gamma, ours.fusion.zeta, ours.fusion.selector) == (0.9, -0.1, 2.0, "ge2e")
    assert {d: s.aux_weight for d, s in ours.domains.items()} == {"en": 0.1, "de": 0.01, "fr": 0.015}
    assert ours.features["ge2e"].extractor.finetune and ours.features["ge2e"].extractor.lr_scale == 0.01
    assert ours.repeats == 5 and ours.train.epochs == 20 and ours.optimizer.lr == 1e-3


def test_table4_drops_only_the_aux_loss() -> None:
    recipes = variant_recipes(RECIPES / "paper_table4.yaml")
    for lang in ("en", "de", "fr"):
        with_aux, without = recipes[f"{lang}_aux"][0], recipes[f"{lang}_no_aux"][0]
        assert with_aux.loss.aux is not None and without.loss.aux is None
        a = with_aux.model_dump()
        b = without.model_dump()
        a["loss"].pop("aux")
        b["loss"].pop("aux")
        assert a == b


@pytest.mark.parametrize("name", ["paper_table3.yaml", "dev_table3.yaml", "synthetic_table3.yaml"])
def test_table3_base_differs_from_sb_only_in_its_one_shared_tower(name: str) -> None:
    spec = load_sweep(RECIPES / name)
    _skip_without_plugin(RECIPES / (spec.recipe or ""))
    recipes = variant_recipes(RECIPES / name)
    base, sb = recipes["Base"][0].model_dump(), recipes["SB"][0].model_dump()
    assert base["fusion"] == sb["fusion"] and base["fusion"]["type"] == "shared_bottom"
    assert {d["head"] for d in base["domains"].values()} == {"all"} and list(base["heads"]) == ["all"]
    assert all(d["head"] is None for d in sb["domains"].values())
    for recipe in (base, sb):
        recipe.pop("heads")
        for d in recipe["domains"].values():
            d.pop("head")
    assert base == sb


def test_table3_base_model_is_a_shared_bottom_and_one_head_over_the_union_of_labels() -> None:
    import torch

    from serkit.engine.data import StreamInfo
    from serkit.engine.model import build_model, head_plan
    from serkit.nn.moe import SharedBottomNet

    recipes = variant_recipes(RECIPES / "synthetic_table3.yaml")
    streams = [StreamInfo("mfcc", "sequence", 40), StreamInfo("ge2e", "vector", 256)]
    own = {d: sorted(spec.dataset.emotions) for d, spec in recipes["Base"][0].domains.items()}
    models = {}
    for name in ("Base", "SB"):
        recipe = recipes[name][0]
        head_of, head_labels = head_plan(recipe, own)
        labels = {d: head_labels[h] for d, h in head_of.items()}
        models[name] = build_model(recipe, get_registry(), streams, labels, head_of)
    base, sb = models["Base"], models["SB"]
    assert isinstance(base.fusion, SharedBottomNet) and isinstance(sb.fusion, SharedBottomNet)
    assert {k: v.shape for k, v in base.fusion.state_dict().items()} == {
        k: v.shape for k, v in sb.fusion.state_dict().items()
    }
    assert list(base.heads) == ["all"] and base.head_of == {"xa": "all", "xb": "all", "xc": "all"}
    union = ["angry", "boredom", "disgust", "fear", "happy", "neutral", "sad", "surprise"]  # the paper's 8 classes
    assert all(labs == union for labs in base.labels.values())
    out = [m for m in base.heads["all"].modules() if isinstance(m, torch.nn.Linear)][-1]
    assert out.out_features == 8
    assert list(sb.heads) == ["xa", "xb", "xc"]

"""The linear reference: the same numbers as scikit-learn by hand, in every run, and its warning."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from serkit.engine.reference import C_GRID, below_reference, pool_item, reference_metrics, summarise_reference
from serkit.metrics.functional import unweighted_accuracy


def _by_hand(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """A researcher's own scikit-learn code: scaler on train, C by validation UA, test predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x["train"])
    best_c, best_ua = None, -1.0
    for c in C_GRID:
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=0)
        clf.fit(scaler.transform(x["train"]), y["train"])
        ua = unweighted_accuracy(y["val"], clf.predict(scaler.transform(x["val"])))
        if ua > best_ua:
            best_c, best_ua = c, ua
    clf = LogisticRegression(C=best_c, class_weight="balanced", max_iter=5000, random_state=0)
    clf.fit(scaler.transform(x["train"]), y["train"])
    return float(best_c), clf.predict(scaler.transform(x["test"]))


def test_pool_item_is_mean_and_std_of_sequences_and_vectors_as_they_are() -> None:
    seq = np.array([[1.0, 2.0], [3.0, 6.0]])
    vec = np.array([7.0, 8.0, 9.0])
    np.testing.assert_allclose(pool_item({"s": seq, "v": vec}, ["v", "s"]), [7, 8, 9, 2, 4, 1, 2])


def test_reference_equals_scikit_learn_by_hand() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6))
    x = {
        k: np.concatenate([c + rng.normal(scale=2.0, size=(n, 6)) for c in centres])
        for k, n in (("train", 20), ("val", 8), ("test", 10))
    }
    y = {k: np.repeat(np.arange(3), n) for k, n in (("train", 20), ("val", 8), ("test", 10))}
    got = reference_metrics("logreg", x, y, 3)
    c, pred = _by_hand(x, y)
    assert got["C"] == c
    assert got["ua"] == pytest.approx(unweighted_accuracy(y["test"], pred), abs=1e-6)
    assert got["n"] == 30 and got["kind"] == "logreg"
    assert 0.4 < got["ua"] <= 1.0  # learns something: chance is 1/3


def test_summary_and_the_below_reference_sentence() -> None:
    runs = [{"reference": {"xa": {"kind": "logreg", "ua": u, "wa": u, "macro_f1": u, "C": 1.0}}} for u in (0.6, 0.8)]
    summary = summarise_reference(runs)
    assert summary["xa"]["ua"]["mean"] == pytest.approx(0.7)
    assert summary["xa"]["ua"]["std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    model = {"xa": {"ua": {"mean": 0.65}}}
    assert below_reference(model, summary) == [
        "domain xa: the model's test UA 0.6500 is below the linear reference's 0.7000 (logreg on the same "
        "streams and splits)"
    ]
    assert below_reference({"xa": {"ua": {"mean": 0.75}}}, summary) == []


RECIPE = """\
name: reference
seed: 0
protocol: {type: speaker, k: 2, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 4, per_class: 4, emotions: [angry, neutral, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}
    encoder: {type: stats_pool}
  ge2e:
    extractor: {type: ge2e}
heads:
  default: {type: mlp, hidden: [8]}
optimizer: {type: adamw, lr: 1.0e-12}
train: {epochs: 1, batch_size: 8}
logging: {tensorboard: false, mlflow: false}
"""


@pytest.fixture(scope="module")
def crippled_run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> tuple[Path, list[str]]:
    """A model that cannot learn (lr 1e-12): the reference must beat it and the run must say so."""
    import serkit
    from serkit.plugins import reset_plugins

    folder = tmp_path_factory.mktemp("reference")
    (folder / "r.yaml").write_text(RECIPE)
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings(record=True) as caught:
        mp.setenv("SERKIT_CACHE", str(session_cache))
        mp.setenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", "1")
        reset_plugins()
        warnings.simplefilter("always")
        run = Path(serkit.run(str(folder / "r.yaml"), out=str(folder / "run"), progress=False))
    reset_plugins()
    return run, [str(w.message) for w in caught]


def test_every_run_fits_the_reference_on_its_own_split(
    crippled_run: tuple[Path, list[str]], session_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serkit.config.recipe import load_recipe
    from serkit.engine.prepare import load_domains
    from serkit.features.driver import extract_features
    from serkit.features.store import FeatureStore
    from serkit.plugins import get_plugin_manager

    run, _ = crippled_run
    results = json.loads((run / "results.json").read_text())
    per_run = results["runs"][0]["reference"]["xa"]
    assert results["reference"]["xa"]["ua"]["values"] == [per_run["ua"]]
    # the same split and features, by hand
    recipe = load_recipe(str(run / "recipe.yaml"))[0]
    registry = get_plugin_manager().registry
    utts = load_domains(recipe)["xa"]
    feats: dict[str, list[np.ndarray]] = {}
    for sid in ("mfcc", "ge2e"):
        ext = registry.create("extractor", recipe.features[sid].extractor)
        store = FeatureStore(session_cache / "features", ext)
        keys = extract_features(utts, ext, store, progress=False).keys
        feats[sid] = [store.get(keys[u.id]) for u in utts]
    with (run / "splits" / "xa.csv").open() as fh:
        roles = [row["r0-f0"] for row in csv.DictReader(fh)]
    labels = sorted({u.label for u in utts})
    x_all = np.stack([pool_item({s: feats[s][i] for s in feats}, ["mfcc", "ge2e"]) for i in range(len(utts))])
    y_all = np.array([labels.index(u.label) for u in utts])
    x = {k: x_all[[r == k for r in roles]] for k in ("train", "val", "test")}
    y = {k: y_all[[r == k for r in roles]] for k in ("train", "val", "test")}
    c, pred = _by_hand(x, y)
    assert per_run["C"] == c
    assert per_run["ua"] == pytest.approx(unweighted_accuracy(y["test"], pred), abs=1e-6)


def test_a_model_below_the_reference_is_warned_about(crippled_run: tuple[Path, list[str]]) -> None:
    run, messages = crippled_run
    results = json.loads((run / "results.json").read_text())
    model, ref = results["domains"]["xa"]["ua"]["mean"], results["reference"]["xa"]["ua"]["mean"]
    assert model < ref
    assert any(
        m.startswith(f"domain xa: the model's test UA {model:.4f} is below the linear reference's {ref:.4f}")
        for m in messages
    )
    report = (run / "report.md").read_text()
    assert "### Linear reference (logreg on the same streams and splits)" in report
    assert "> **Warning:** the model is below the linear reference on xa." in report

"""recipes/small_corpus.yaml, the recommended start for a new language, trains end to end on a small corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serkit.plugins import get_registry, reset_plugins
from serkit.testing.cli import run_cli

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "small_corpus.yaml"


@pytest.fixture(autouse=True)
def _with_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SERKIT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reset_plugins()
    if ("extractor", "opensmile") not in get_registry():
        pytest.skip("serkit-plugin-opensmile is not installed (make test installs it)")


def test_small_corpus_runs_on_a_manifest_with_its_reference(tmp_path: Path) -> None:
    from serkit.data.synthetic import generate_corpus

    utts = generate_corpus(tmp_path / "audio", speakers=4, per_class=3, emotions=("angry", "neutral", "sad"))
    manifest = tmp_path / "corpus.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{u.path},{u.label},{u.speaker}\n" for u in utts))
    out = tmp_path / "run"
    args = ["run", str(RECIPE), "--out", str(out), "--quiet", "--set", f"domains.main.dataset.path={manifest}"]
    args += ["--set", "repeats=1", "--set", "train.epochs=3", "--set", "protocol={type: speaker, k: 2, folds: [0]}"]
    assert run_cli(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["domains"]) == {"main"}
    assert results["reference"]["main"]["kind"] == "logreg"
    assert (out / "checkpoints" / "speaker_norm.json").is_file()  # acted: every speaker has every label
    assert results["runs"][0]["best_epoch"] == 3  # select_by: last, with the EMA of the weights
    assert set(results["extraction"]) == {"mfcc", "ge2e", "egemaps", "compare"}

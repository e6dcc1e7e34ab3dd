"""Labels a run must not silently turn into classes, and audio ``data info`` must not call usable (issue 17)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.data.labels import canonical_label
from serkit.testing.cli import run_cli


def _wav(path: Path, seconds: float, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal(round(seconds * 16000))).astype(np.float32), 16000)
    return path


def _manifest(folder: Path, gioia: str = "gioia") -> Path:
    rows = ["path,label,speaker"]
    for i in range(12):
        label = ("angry", "sad", "happy")[i % 3]
        _wav(folder / f"a{i}.wav", 0.5, i)
        rows.append(f"a{i}.wav,{label},s{i % 4}")
    _wav(folder / "g.wav", 0.5, 99)
    rows.append(f"g.wav,{gioia},s0")
    path = folder / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


RECIPE = """\
name: labels
protocol: {{type: speaker, k: 2}}
domains:
  it: {{dataset: {{type: manifest, path: '{manifest}'{extra}}}}}
features:
  mfcc: {{extractor: {{type: mfcc, n_mfcc: 13}}, encoder: {{type: mean_pool}}}}
train: {{epochs: 1}}
"""


def test_label_map_keys_match_whatever_the_case() -> None:
    assert canonical_label("Gioia", {"gioia": "happy"}) == "happy"
    assert canonical_label("gioia", {" GIOIA ": "Happy"}) == "happy"  # targets are canonicalised too
    assert canonical_label("Freude", {"freude": "joy"}) == "happy"
    assert canonical_label("gioia") == "gioia"  # unknown: left for the run to refuse


def test_an_unknown_label_stops_the_run_before_extraction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import serkit.features.driver as driver

    def no_extraction(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("features were extracted")

    monkeypatch.setattr(driver, "extract_features", no_extraction)
    manifest = _manifest(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(manifest=manifest, extra=""))
    assert run_cli(["run", str(recipe), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: domains.it: label(s) 'gioia' (1 utterance(s), e.g. {(tmp_path / 'g.wav').resolve()}) are not among "
        "serkit's emotions (angry, boredom, calm, contempt, disgust, fear, happy, neutral, sad, surprise, or an "
        "alias such as anger, joy, neu), so they would silently become classes of their own; map them with "
        "domains.it.dataset.label_map (e.g. {gioia: happy}; keys match whatever the case), or declare the "
        "domain's label set with the dataset's labels: [...]\n"
    )
    assert not (tmp_path / "run").exists()
    # mapped (in another case than the corpus's), or declared as a label set of one's own: accepted
    from serkit.config.recipe import load_recipe
    from serkit.engine.precheck import check_protocol
    from serkit.engine.prepare import load_domains

    recipe.write_text(RECIPE.format(manifest=_manifest(tmp_path, "Gioia"), extra=", label_map: {gioia: happy}"))
    rec, _ = load_recipe(recipe)
    domains = load_domains(rec)
    check_protocol(rec, domains)
    assert sorted({u.label for u in domains["it"]}) == ["angry", "happy", "sad"]
    recipe.write_text(RECIPE.format(manifest=_manifest(tmp_path), extra=", labels: [angry, sad, happy, gioia]"))
    rec, _ = load_recipe(recipe)
    check_protocol(rec, load_domains(rec))


def test_data_info_flags_a_wav_too_short_to_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _wav(tmp_path / "angry" / "s1_a.wav", 0.5)
    short = _wav(tmp_path / "sad" / "s1_b.wav", 0.008)  # a truncated file: 128 samples
    assert run_cli(["data", "info", "folder", "--root", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["audio"]["readable"] == 1
    assert info["problems"]["too_short"] == [
        f"{short.resolve()}: audio is 0.008 s long; the minimum is 0.1 s (a run refuses it)"
    ]
    assert info["problems"]["count"] == 1
    assert run_cli(["data", "info", "folder", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "files too short to use (1):" in out and "audio is 0.008 s long; the minimum is 0.1 s" in out

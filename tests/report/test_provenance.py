"""Traceable numbers: recipe hash, data fingerprints, serkit's commit; a run writes them with its audit."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from serkit.data.utterance import Utterance
from serkit.report.provenance import data_fingerprint, git_info, recipe_sha256
from serkit.testing.cli import run_cli


def test_recipe_hash_ignores_where_files_are_but_not_what_is_computed() -> None:
    a = {
        "name": "r",
        "domains": {"de": {"dataset": {"type": "emodb", "root": "/data/emodb"}}},
        "store": {"root": None, "dtype": "float32"},
        "optimizer": {"lr": 0.001},
    }
    b = json.loads(json.dumps(a))
    b["domains"]["de"]["dataset"]["root"] = "/elsewhere/emodb"
    b["store"]["root"] = "/scratch/features"
    assert recipe_sha256(a) == recipe_sha256(b)
    expected = {"name": "r", "domains": {"de": {"dataset": {"type": "emodb"}}}, "store": {"dtype": "float32"},
                "optimizer": {"lr": 0.001}}
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":"))
    assert recipe_sha256(a) == hashlib.sha256(canonical.encode()).hexdigest()
    b["optimizer"]["lr"] = 0.002
    assert recipe_sha256(a) != recipe_sha256(b)
    assert a["domains"]["de"]["dataset"]["root"] == "/data/emodb"  # the input is left alone


def test_data_fingerprint_is_the_hash_of_the_sorted_content_hashes() -> None:
    utts = [Utterance("b", "/x/b.wav", "sad", "s1"), Utterance("a", "/x/a.wav", "angry", "s2")]
    content = {"a": "11" * 32, "b": "22" * 32}
    fp = data_fingerprint(utts, content)
    assert fp["n"] == 2 and fp["unhashed"] == 0
    assert fp["audio"] == hashlib.sha256(f"{'11' * 32}\n{'22' * 32}".encode()).hexdigest()
    labelled = f"{'11' * 32}\tangry\ts2\n{'22' * 32}\tsad\ts1"
    assert fp["labelled"] == hashlib.sha256(labelled.encode()).hexdigest()
    # order does not matter; a relabelled utterance changes only the labelled fingerprint
    again = data_fingerprint(utts[::-1], content)
    assert again == fp
    relabelled = data_fingerprint([utts[0], Utterance("a", "/x/a.wav", "happy", "s2")], content)
    assert relabelled["audio"] == fp["audio"] and relabelled["labelled"] != fp["labelled"]
    assert data_fingerprint(utts, {"a": "11" * 32})["unhashed"] == 1


def test_git_info_of_this_checkout_and_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import serkit

    package = Path(serkit.__file__).parent
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=package, capture_output=True, text=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True)
    info = git_info()
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != package.resolve().parent:
        assert info is None  # serkit installed from a wheel: no commit to report
    else:
        assert info is not None and info["commit"] == head.stdout.strip() and isinstance(info["dirty"], bool)
    # a package folder that is not a checkout's top level (e.g. site-packages inside some repo)
    outer = tmp_path / "repo"
    nested = outer / "venv" / "site-packages" / "serkit"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    assert git_info(nested) is None
    assert git_info(tmp_path / "nowhere") is None  # not even a folder
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git program at all
    assert git_info(package) is None


def _tone(seed: int, f0: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(4800) / 16000
    return (0.1 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.slow
def test_a_run_writes_its_audit_and_provenance(tmp_path: Path) -> None:
    rows = ["path,label,speaker,fold"]
    hashes = []
    for i in range(48):
        label = ("angry", "sad")[i % 2]
        path = tmp_path / "audio" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, _tone(i, 150.0 if label == "angry" else 300.0), 16000, subtype="PCM_16")
        hashes.append(hashlib.sha256(path.read_bytes()).hexdigest())
        rows.append(f"audio/u{i}.wav,{label},s{i % 3},{i % 2 + (i // 24) * 2}")  # folds share speakers
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: traced\nprotocol: predefined\n"
        f"domains: {{xa: {{dataset: {{type: manifest, path: {tmp_path / 'm.csv'}}}}}}}\n"
        "features: {mfcc: {extractor: {type: mfcc, n_mfcc: 13}, encoder: {type: mean_pool}}}\n"
        "heads: {default: {type: mlp, hidden: [8]}}\ntrain: {epochs: 1, batch_size: 16}\n"
    )
    out = tmp_path / "run"
    assert run_cli(["run", str(recipe), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    audit = results["audit"]
    assert audit["speaker_dependent"] and audit["protocol"] == "predefined"
    assert audit["domains"]["xa"]["speakers"]["train/test"]["runs"] == 4
    prov = results["provenance"]
    assert prov["data"]["xa"]["n"] == 48
    assert prov["data"]["xa"]["audio"] == hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert prov["recipe_sha256"] == recipe_sha256(resolved)
    assert prov["serkit_version"] == __import__("serkit").__version__
    report = (out / "report.md").read_text()
    assert (
        "- protocol: **predefined** — splits given by the data (a manifest's split or fold column) — "
        "**speaker-dependent** (split audit)\n"
    ) in report
    assert "> **Split audit:** **speaker-dependent**" in report and "## Provenance" in report
    assert f"| xa | 48 | {prov['data']['xa']['audio'][:16]} |" in report
    assert "<blockquote>" in (out / "report.html").read_text()

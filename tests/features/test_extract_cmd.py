"""``serkit extract RECIPE [--shard i/n]``: cache a recipe's features without training."""

from __future__ import annotations

from pathlib import Path

import pytest

from serkit.builtin.extractors.mfcc import Mfcc
from serkit.features import FeatureStore
from serkit.testing.cli import run_cli

RECIPE = """\
name: tiny
seed: 0
protocol: {{type: speaker, k: 2}}
domains:
  xa: {{dataset: {{type: synthetic, languages: [xa], speakers: 2, per_class: 1, seed: 3}}}}
  xb: {{dataset: {{type: synthetic, languages: [xb], speakers: 2, per_class: 1, seed: 3}}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 13, n_mels: 26}}
    encoder: {{type: mean_pool}}
fusion: {{type: concat}}
heads:
  default: {{type: mlp, hidden: [8]}}
loss: {{main: {{type: cross_entropy}}}}
optimizer: {{type: adamw, lr: 1.0e-3}}
train: {{epochs: 1, batch_size: 4}}
store: {{root: {root}}}
"""


def _recipe(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / f"tiny-{root.name}.yaml"
    path.write_text(RECIPE.format(root=root))
    return path


def _store(root: Path) -> FeatureStore:
    return FeatureStore(root, Mfcc(n_mfcc=13, n_mels=26))


def test_extract_caches_every_stream_and_domain(tmp_path, capsys):
    root = tmp_path / "features"
    recipe = _recipe(tmp_path, root)
    assert run_cli(["extract", str(recipe), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "serkit extract tiny: 1 stream(s) x 2 domain(s), 16 utterances ->" in out
    assert "  mfcc [xa]: 8 computed, 0 cached, 0 failed" in out and "  mfcc [xb]: 8 computed" in out
    store = _store(root)
    assert len(store) == 16 and f"  store mfcc: {store.path}" in out
    assert run_cli(["extract", str(recipe), "--quiet", "--set", "data.extract_executor=thread"]) == 0
    out = capsys.readouterr().out
    assert "  mfcc [xa]: 0 computed, 8 cached, 0 failed" in out and "thread executor" in out


def test_unchanged_audio_is_not_hashed_again_unless_rehash_is_asked(tmp_path, capsys, monkeypatch):
    from serkit.features import hash_index

    monkeypatch.setattr(hash_index, "RACY_SECONDS", 0.0)  # the synthetic files are seconds old
    monkeypatch.delenv("SERKIT_REHASH", raising=False)
    recipe = _recipe(tmp_path, tmp_path / "features")
    assert run_cli(["extract", str(recipe), "--quiet"]) == 0
    assert "  mfcc [xa]: 8 computed, 0 cached, 0 failed (" in capsys.readouterr().out
    assert run_cli(["extract", str(recipe), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "  mfcc [xa]: 0 computed, 8 cached, 0 failed" in out and "; 0 file(s) hashed)" in out
    assert run_cli(["extract", str(recipe), "--quiet", "--rehash"]) == 0
    out = capsys.readouterr().out
    assert "  mfcc [xb]: 0 computed, 8 cached, 0 failed" in out and "; 8 file(s) hashed)" in out


def test_shards_from_the_command_line_and_from_torchrun(tmp_path, capsys, monkeypatch):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert run_cli(["extract", str(_recipe(tmp_path, whole)), "--quiet"]) == 0
    recipe = _recipe(tmp_path, sharded)
    assert run_cli(["extract", str(recipe), "--quiet", "--shard", "0/2"]) == 0
    out = capsys.readouterr().out
    assert "16 utterances (shard 0/2) ->" in out and "left to other shards" in out
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert run_cli(["extract", str(recipe), "--quiet"]) == 0  # torchrun's rank 1 of 2
    assert "16 utterances (shard 1/2, from torchrun) ->" in capsys.readouterr().out
    store = _store(sharded)
    assert store.keys() == _store(whole).keys() and len(store.files()) == 3
    monkeypatch.setenv("WORLD_SIZE", "1")  # a single process: no sharding
    assert run_cli(["extract", str(recipe), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "(shard" not in out and out.count("0 computed, 8 cached") == 2


@pytest.mark.parametrize("value", ["3/2", "2/2", "-1/2", "1/0", "a/b", "2", "1/2/3"])
def test_bad_shard_values(tmp_path, capsys, value):
    recipe = _recipe(tmp_path, tmp_path / "features")
    assert run_cli(["extract", str(recipe), "--shard", value]) == 2
    assert f"--shard: expected i/n with 0 <= i < n, got '{value}'" in capsys.readouterr().err
    assert not (tmp_path / "features").exists()  # checked before anything is loaded


def test_recipe_errors_and_registration(tmp_path, capsys):
    from serkit.cli.main import cli

    assert "extract" in cli.commands
    recipe = _recipe(tmp_path, tmp_path / "features")
    assert run_cli(["extract", str(recipe), "--set", "data.extract_executor=gpu"]) == 2
    err = capsys.readouterr().err
    assert "data.extract_executor" in err and "'auto', 'thread' or 'process'" in err

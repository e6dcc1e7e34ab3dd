"""speaker_norm: auto follows the corpus design: on for acted corpora, off where speakers show few emotions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serkit.engine.prepare import label_coverage
from serkit.testing.cli import run_recipe_isolated


def test_label_coverage_by_hand() -> None:
    acted = [(s, lab) for s in "ABC" for lab in ("angry", "sad", "happy")]
    assert label_coverage(acted) == 1.0
    talk_show = [("A", "angry"), ("A", "sad"), ("B", "happy"), ("C", "happy"), ("C", "happy")]
    assert label_coverage(talk_show) == pytest.approx((2 + 1 + 1) / (3 * 3))
    assert label_coverage([]) == 0.0


RECIPE = """\
name: auto_norm
seed: 0
protocol: {{type: speaker, k: 2, folds: [0]}}
domains:
  acted: {{dataset: {{type: manifest, path: {acted}}}}}
  talk: {{dataset: {{type: manifest, path: {talk}}}}}
features:
  mfcc: {{extractor: {{type: mfcc, n_mfcc: 13, hop_ms: 20}}, encoder: {{type: stats_pool}}}}
heads: {{default: {{type: mlp, hidden: [8]}}}}
data: {{speaker_norm: auto}}
train: {{epochs: 1, batch_size: 8}}
logging: {{tensorboard: false, mlflow: false}}
"""


def test_auto_normalises_the_acted_domain_only(tmp_path: Path, session_cache: Path) -> None:
    from serkit.data.synthetic import generate_corpus

    utts = generate_corpus(tmp_path / "audio", speakers=6, per_class=2, emotions=("angry", "neutral", "sad"))
    acted = ["path,label,speaker"] + [f"{u.path},{u.label},{u.speaker}" for u in utts]
    # the same audio as a talk show: each speaker shows one emotion (speakers renamed by label)
    talk = ["path,label,speaker"] + [f"{u.path},{u.label},{u.speaker}-{u.label}" for u in utts]
    (tmp_path / "acted.csv").write_text("\n".join(acted) + "\n")
    (tmp_path / "talk.csv").write_text("\n".join(talk) + "\n")
    recipe = RECIPE.format(acted=tmp_path / "acted.csv", talk=tmp_path / "talk.csv")
    run = run_recipe_isolated(recipe, tmp_path, session_cache)
    stored = json.loads((run / "checkpoints" / "speaker_norm.json").read_text())
    assert list(stored["domains"]) == ["acted"]
    from serkit.inference import load_model

    model = load_model(run)
    one = str(utts[0].path)
    assert model.logits([one], domain="talk").shape == (1, 3)  # left as it is: no speakers needed
    with pytest.raises(Exception, match="speakers="):
        model.logits([one], domain="acted")
    assert model.logits([one], domain="acted", speakers="s-new", speaker_stats="global").shape == (1, 3)

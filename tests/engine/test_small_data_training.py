"""Training aids for small corpora: masking, mixup, input dropout, weight averaging, clipping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from serkit.engine.averaging import WeightAverage
from serkit.engine.data import Batch, StreamInfo
from serkit.engine.model import SerModel
from serkit.engine.train import TrainObjective
from serkit.errors import ModelError
from serkit.nn.augment import SequenceMasking
from serkit.nn.fusion import ConcatFusionNet
from serkit.nn.standardize import Standardize
from serkit.testing.cli import run_recipe_isolated


def test_masking_is_identity_in_eval_and_seeded_in_training() -> None:
    masking = SequenceMasking(time_masks=2, time_width=0.2, freq_masks=1, freq_width=3)
    x = torch.randn(4, 50, 10) + 5.0  # no zeros but the masked ones
    lengths = torch.tensor([50, 30, 10, 1])
    assert masking.eval()(x, lengths) is x
    masking.train()
    torch.manual_seed(0)
    a = masking(x, lengths)
    torch.manual_seed(0)
    b = masking(x, lengths)
    torch.testing.assert_close(a, b)
    zero = a == 0
    assert zero.any()
    time_only = zero.all(dim=2)  # frames masked across every dimension
    for i, n in enumerate(lengths.tolist()):
        assert time_only[i].sum() <= 2 * int(0.2 * n)  # two spans of at most 20 % of the length each
    freq_only = zero.all(dim=1)
    assert (freq_only.sum(dim=1) <= 3).all()


def test_masking_rejects_bad_settings() -> None:
    with pytest.raises(ModelError, match="time_width in \\[0, 1\\]"):
        SequenceMasking(time_width=1.5)


def test_standardize_clip() -> None:
    norm = Standardize(2, clip=3.0)
    norm.set_stats(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1e-6]))
    out = norm(torch.tensor([[1.0, 0.5]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 3.0]]))  # 0.5 / 1e-5 (the floor) would be 50,000


def _model(input_dropout: float = 0.0) -> SerModel:
    torch.manual_seed(0)
    streams = [StreamInfo("a", "vector", 3), StreamInfo("b", "vector", 2)]
    fusion = ConcatFusionNet({"a": 3, "b": 2})
    heads = {"d": nn.Linear(fusion.out_dim, 3)}
    return SerModel(streams, {}, fusion, heads, {"d": "d"}, {"d": ["x", "y", "z"]}, input_dropout=input_dropout)


def _batch() -> Batch:
    gen = torch.Generator().manual_seed(1)
    return Batch(
        {"a": torch.randn(6, 3, generator=gen), "b": torch.randn(6, 2, generator=gen)},
        torch.tensor([0, 1, 2, 0, 1, 2]),
        "d",
        torch.arange(6),
    )


def test_mixup_loss_is_the_mixed_loss_by_hand() -> None:
    model = _model()
    ce = nn.ModuleDict({"d": _CE()})
    objective = TrainObjective(model, ce, None, {}, mixup=0.4).train()
    batch = _batch()
    torch.manual_seed(7)
    got = objective(batch)
    torch.manual_seed(7)
    lam = float(torch.distributions.Beta(torch.tensor(0.4), torch.tensor(0.4)).sample())
    perm = torch.randperm(6)
    x = {k: lam * v + (1 - lam) * v[perm] for k, v in batch.streams.items()}
    logits = model.heads["d"](torch.cat([x["a"], x["b"]], dim=1))
    f = nn.functional.cross_entropy
    want = lam * f(logits, batch.targets) + (1 - lam) * f(logits, batch.targets[perm])
    torch.testing.assert_close(got, want)
    assert 0 < lam < 1
    objective.eval()
    torch.testing.assert_close(objective(batch), f(model(batch)[0], batch.targets))  # no mixup outside training


class _CE(nn.Module):
    def forward(self, logits: torch.Tensor, targets: torch.Tensor, rep: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, targets)


def test_input_dropout_only_in_training() -> None:
    model = _model(input_dropout=0.5)
    batch = _batch()
    model.eval()
    a, _ = model(batch)
    b, _ = model(batch)
    torch.testing.assert_close(a, b)
    model.train()
    torch.manual_seed(0)
    c, _ = model(batch)
    assert not torch.allclose(a, c)


def test_ema_and_swa_follow_their_formulas() -> None:
    net = nn.Linear(2, 1, bias=False)
    ema = WeightAverage(net, "ema", decay=0.9)
    swa = WeightAverage(net, "swa", start_epoch=2)
    values = [1.0, 2.0, 4.0]
    for epoch, v in enumerate(values, start=1):
        with torch.no_grad():
            net.weight.fill_(v)
        ema.after_step(net)
        swa.after_epoch(net, epoch)
    want_ema = (1.0 * 0.9 + 0.1 * 2.0) * 0.9 + 0.1 * 4.0  # the first update copies the weights
    torch.testing.assert_close(ema.model_to_evaluate(net).weight, torch.full((1, 2), want_ema))
    torch.testing.assert_close(swa.model_to_evaluate(net).weight, torch.full((1, 2), 3.0))  # epochs 2 and 3
    fresh = WeightAverage(net, "swa", start_epoch=5)
    assert fresh.model_to_evaluate(net) is net  # nothing averaged yet: the model itself


RECIPE = """\
name: small
seed: 0
protocol: {type: speaker, k: 2, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 4, per_class: 4, emotions: [angry, neutral, sad]}}
features:
  mfcc:
    extractor: {type: mfcc, n_mfcc: 13, hop_ms: 20}
    encoder: {type: stats_pool, deltas: 1}
  ge2e:
    extractor: {type: ge2e}
heads:
  default: {type: mlp, hidden: [16], dropout: 0.3}
loss: {main: {type: cross_entropy, label_smoothing: 0.1}}
data: {standardize: global, standardize_clip: 5.0}
train: {epochs: 4, batch_size: 8, mixup: 0.4, input_dropout: 0.2, average: ema, ema_decay: 0.9,
        mask: {time_masks: 2, time_width: 0.1, freq_masks: 1, freq_width: 2}}
logging: {tensorboard: false, mlflow: false}
"""


def test_a_seeded_run_with_every_aid_is_reproducible(tmp_path: Path, session_cache: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    runs = [run_recipe_isolated(RECIPE, tmp_path / name, session_cache) for name in ("a", "b")]
    results = [json.loads((r / "runs" / "r0-f0.json").read_text()) for r in runs]
    assert results[0]["history"] == results[1]["history"]  # the same masks, mixes and dropout
    assert results[0]["test"] == results[1]["test"]
    assert len(results[0]["history"]) == 4

"""serkit.testing.network_contract: broken networks are caught, and a plugin written against the public
interfaces only (example_network_plugin.py: encoder, fusion, head, callback, metric) keeps the contracts
and trains in a recipe."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from serkit import ComponentParams, Encoder, Fusion, FusionOutput, Head
from serkit.testing.network_contract import (
    EncoderContract,
    FusionContract,
    HeadContract,
    assert_encoder_contract,
    check_encoder,
    check_fusion,
    check_head,
)


def _example() -> ModuleType:
    name = "serkit_example_network_plugin"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("example_network_plugin.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


example = _example()


class TestExampleEncoder(EncoderContract):
    @pytest.fixture
    def encoder(self) -> Encoder:
        return example.MaxPoolEncoder(width=5)


class TestExampleFusion(FusionContract):
    @pytest.fixture
    def fusion(self) -> Fusion:
        return example.SoftmaxSumFusion(width=4)


class TestExampleHead(HeadContract):
    @pytest.fixture
    def head(self) -> Head:
        return example.LinearHead()


# -- broken components are caught ------------------------------------------------------------


class _Enc(Encoder):
    """An encoder whose network the test gives."""

    name: ClassVar[str] = "broken_encoder"
    net: ClassVar[Any] = None

    class Params(ComponentParams):
        pass

    def build(self, in_dim: int) -> nn.Module:
        return type(self).net(in_dim)


class _MeanOfEverything(nn.Module):
    """Mean over every frame, padding included, minus the batch mean (rows depend on each other)."""

    def __init__(self, in_dim: int, batch_norm: bool = False) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, 3)
        self.out_dim = 3
        self.batch_norm = batch_norm

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out = self.proj(x.mean(dim=1))
        return out - out.mean(dim=0) if self.batch_norm else out


def test_an_encoder_that_reads_padding_or_other_rows_is_caught() -> None:
    _Enc.net = _MeanOfEverything
    problems = check_encoder(_Enc())
    assert any("padded frames" in p for p in problems) and any("other rows" in p for p in problems)
    _Enc.net = lambda in_dim: nn.Identity()  # no out_dim
    assert check_encoder(_Enc()) == ["build_stream(6, ...): the network's out_dim is None; expected a positive int"]
    with pytest.raises(AssertionError) as err:
        assert_encoder_contract(_Enc())
    assert str(err.value) == (
        f"encoder '{_Enc.name}' ({__name__}._Enc) breaks the encoder contract (1 problem):\n"
        "  - build_stream(6, ...): the network's out_dim is None; expected a positive int"
    )


class _Fus(Fusion):
    """A fusion whose network the test gives."""

    name: ClassVar[str] = "broken_fusion"
    net: ClassVar[Any] = None

    class Params(ComponentParams):
        pass

    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        return type(self).net(stream_dims, domains)


class _PerDomainDict(nn.Module):
    """Reads only the first stream and keeps one layer per domain in a dict (``out``: a tuple, a vector penalty)."""

    def __init__(self, stream_dims: Mapping[str, int], domains: Sequence[str], out: str = "ok") -> None:
        super().__init__()
        first = next(iter(stream_dims))
        self.first, self.out = first, out
        self.layers = nn.ModuleDict({d: nn.Linear(stream_dims[first], 4) for d in domains})
        self.out_dim = 4

    def forward(self, streams: Mapping[str, torch.Tensor], domain: str) -> Any:
        rep = self.layers[domain](streams[self.first])
        if self.out == "tuple":
            return rep, {}
        return FusionOutput(rep, {"penalty": rep.sum(dim=1)} if self.out == "penalty" else {})


def test_a_fusion_that_init_from_cannot_extend_or_that_ignores_a_stream_is_caught() -> None:
    _Fus.net = _PerDomainDict
    problems = check_fusion(_Fus())
    assert any("the output does not depend on stream 's2'" in p for p in problems)
    assert any("init_from cannot add a domain: layers.new_domain.weight appears" in p for p in problems)
    _Fus.net = lambda dims, domains: _PerDomainDict(dims, domains, out="penalty")
    assert any("extras['penalty'] must be a finite scalar" in p for p in check_fusion(_Fus()))
    _Fus.net = lambda dims, domains: _PerDomainDict(dims, domains, out="tuple")
    assert "eval mode: forward returned tuple; expected a serkit.FusionOutput" in check_fusion(_Fus())


def test_a_head_with_the_wrong_number_of_outputs_is_caught() -> None:
    class Wrong(Head):
        """A head with one output too many."""

        name: ClassVar[str] = "wrong_head"

        class Params(ComponentParams):
            pass

        def build(self, in_dim: int, n_classes: int) -> nn.Module:
            return nn.Linear(in_dim, n_classes + 1)

    assert check_head(Wrong(), n_classes=(3,)) == ["build(8, 3): logits are torch.Size([4, 4]); expected (4, 3)"]


# -- the example plugin trains in a recipe -----------------------------------------------------

RECIPE = """
name: example-plugin
seed: 0
repeats: 1
device: cpu
protocol: {type: speaker, k: 2}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 4, per_class: 3, seed: 5}}
  xb: {dataset: {type: synthetic, languages: [xb], speakers: 4, per_class: 3, seed: 5}}
features:
  mfcc: {extractor: {type: mfcc, n_mfcc: 13}, encoder: {type: example_max_pool, width: 6}}
  mfcc20: {extractor: {type: mfcc, n_mfcc: 20}, encoder: {type: mean_pool}}
fusion: {type: example_softmax_sum, width: 6}
heads: {default: {type: example_linear}}
optimizer: {type: adamw, lr: 1.0e-2}
train:
  epochs: 2
  batch_size: 8
  select_by: val_balanced_error
  callbacks: [{type: example_warmup, steps: 4, freeze_encoder_epochs: 1}]
reference: none
"""


def test_the_example_plugin_trains_in_a_recipe(tmp_path: Path) -> None:
    import serkit
    from serkit.plugins import load_plugins, reset_plugins

    reset_plugins(load_plugins(autoload=False, extra=[("example", example)]))
    example.WARMUP_LRS.clear()
    (tmp_path / "r.yaml").write_text(RECIPE)
    run_dir = Path(serkit.run(str(tmp_path / "r.yaml"), out=str(tmp_path / "run"), progress=False))
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["domains"]) == {"xa", "xb"} and len(results["runs"]) == 2
    run = results["runs"][0]
    assert {"balanced_error", "gates"} <= set(run["val"]["xa"])  # the plugin's metric and the declared gates
    assert run["fusion"] == {"streams": ["mfcc", "mfcc20"]}
    lrs = [lr for _, lr in example.WARMUP_LRS[:4]]
    assert lrs == pytest.approx([2.5e-3, 5.0e-3, 7.5e-3, 1.0e-2])  # the warm-up set the learning rate
    assert example.WARMUP_LRS[5][1] == pytest.approx(1.0e-2)
    assert "callbacks" in (run_dir / "recipe.yaml").read_text()
    model = serkit.load_model(run_dir)  # the plugin's components rebuild the model
    wave = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0)).numpy()
    assert model.predict(wave, domain="xa", sample_rate=16000).label in model.labels("xa")

from __future__ import annotations

import pytest
import torch

from serkit.builtin.fusion.concat import ConcatFusion
from serkit.errors import ModelError
from serkit.nn import ConcatFusionNet, FusionOutput


def test_builds_a_concatenation_in_stream_order() -> None:
    net = ConcatFusion().build({"wav2vec": 3, "ge2e": 2}, ["en", "de"])
    assert isinstance(net, ConcatFusionNet) and net.out_dim == 5
    out = net({"ge2e": torch.ones(1, 2), "wav2vec": torch.zeros(1, 3)}, "en")
    assert isinstance(out, FusionOutput)
    assert out.representation.tolist() == [[0.0, 0.0, 0.0, 1.0, 1.0]]
    with pytest.raises(ModelError, match="unknown domain 'fr'; known: en, de"):
        net({"ge2e": torch.ones(1, 2), "wav2vec": torch.zeros(1, 3)}, "fr")


def test_has_no_params() -> None:
    assert ConcatFusion.Params.model_fields == {}

"""Every built-in encoder, fusion and head keeps its contract (serkit.testing.network_contract)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from serkit.plugins import get_registry
from serkit.testing.network_contract import EncoderContract, FusionContract, HeadContract

#: Params the contract builds a component with, when its defaults do not fit the contract's streams.
PARAMS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("encoder", "weighted_layers"): [{}, {"per_domain": True}, {"sequence_encoder": {"type": "stats_pool"}}],
    ("encoder", "cnn_bilstm_attn"): [{"channels": 4, "lstm_hidden": 4, "attention_dim": 4, "kernel_sizes": [3, 5]}],
    ("fusion", "gated_nas"): [
        {"width": 6},
        {"width": 6, "l0_weight": 0.1, "selector_as_expert": False},
        {"width": 6, "private_projections": True},
    ],
    ("fusion", "mmoe"): [{}, {"private_projections": True}],
}


def _specs(kind: str) -> list[Any]:
    from serkit.plugins import load_plugins

    names = load_plugins(autoload=False).registry.names(kind)
    return [
        pytest.param({"type": name, **params}, id=f"{name}-{i}")
        for name in names
        for i, params in enumerate(PARAMS.get((kind, name), [{}]))
    ]


class TestBuiltinEncoders(EncoderContract):
    in_dim: ClassVar[int] = 6

    @pytest.fixture(params=_specs("encoder"))
    def encoder(self, request: pytest.FixtureRequest) -> Any:
        if request.param["type"] == "weighted_layers":  # three layers of width 4 side by side
            self.in_dim, self.layers = 12, 3  # type: ignore[misc]
        return get_registry().create("encoder", request.param)


class TestBuiltinVectorEncoders(EncoderContract):
    in_dim: ClassVar[int] = 12
    layers: ClassVar[int] = 3
    output: ClassVar[str] = "vector"

    @pytest.fixture
    def encoder(self) -> Any:
        return get_registry().create("encoder", {"type": "weighted_layers", "per_domain": True})


class TestBuiltinFusions(FusionContract):
    stream_dims: ClassVar[dict[str, int]] = {"mfcc": 6, "ge2e": 4, "w2v": 5}  # ge2e: the gates' default selector

    @pytest.fixture(params=_specs("fusion"))
    def fusion(self, request: pytest.FixtureRequest) -> Any:
        return get_registry().create("fusion", request.param)


class TestPrivateProjectionsFromOneDomain(FusionContract):
    """A one-domain run with private projections can still be extended by init_from."""

    stream_dims: ClassVar[dict[str, int]] = {"mfcc": 6, "ge2e": 4}
    domains: ClassVar[tuple[str, ...]] = ("xa",)

    @pytest.fixture
    def fusion(self) -> Any:
        return get_registry().create("fusion", {"type": "gated_nas", "width": 6, "private_projections": True})


class TestBuiltinHeads(HeadContract):
    @pytest.fixture(params=_specs("head"))
    def head(self, request: pytest.FixtureRequest) -> Any:
        return get_registry().create("head", request.param)

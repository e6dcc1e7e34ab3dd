"""The ``shared_bottom``, ``omoe``, ``mmoe`` and ``gated_nas`` fusion components."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError

from serkit.builtin.fusion.gated_nas import GatedNASFusion
from serkit.builtin.fusion.mmoe import MMoEFusion
from serkit.builtin.fusion.omoe import OMoEFusion
from serkit.builtin.fusion.shared_bottom import SharedBottomFusion
from serkit.errors import ModelError
from serkit.interfaces.fusion import Fusion
from serkit.nn.fusion import FusionOutput
from serkit.nn.moe import GatedNASNet, MMoENet, OMoENet, SharedBottomNet
from serkit.registry import Registry

COMPONENTS = [SharedBottomFusion, OMoEFusion, MMoEFusion, GatedNASFusion]
DIMS = {"wav2vec": 6, "ge2e": 4, "mfcc": 3}


def streams(n: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {sid: torch.randn(n, dim, generator=g) for sid, dim in DIMS.items()}


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.name)
def test_registers_with_documented_params_and_is_created_from_a_spec(cls: type[Fusion]) -> None:
    registry = Registry()
    registry.register(cls)
    component = registry.create("fusion", {"type": cls.name})
    assert isinstance(component, cls) and cls.kind == "fusion"
    assert cls.describe()
    for field_name, info in cls.Params.model_fields.items():
        assert info.description, f"{cls.name}.{field_name} has no description"


def test_names_and_defaults() -> None:
    assert [c.name for c in COMPONENTS] == ["shared_bottom", "omoe", "mmoe", "gated_nas"]
    p = GatedNASFusion().params
    assert (p.width, p.activation, p.dropout, p.selector, p.selector_as_expert) == (256, "none", 0.0, "ge2e", True)
    assert (p.beta, p.gamma, p.zeta, p.l0_weight, p.init_log_kappa) == (0.9, -0.1, 2.0, 0.0, 2.0)
    assert set(SharedBottomFusion.Params.model_fields) == {"width", "activation", "dropout"}
    assert set(MMoEFusion.Params.model_fields) == set(OMoEFusion.Params.model_fields)


@pytest.mark.parametrize(
    ("cls", "net_cls", "gated"),
    [
        (SharedBottomFusion, SharedBottomNet, False),
        (OMoEFusion, OMoENet, True),
        (MMoEFusion, MMoENet, True),
        (GatedNASFusion, GatedNASNet, True),
    ],
    ids=["shared_bottom", "omoe", "mmoe", "gated_nas"],
)
def test_builds_the_network_with_the_params(cls: type[Fusion], net_cls: type, gated: bool) -> None:
    extra = {"selector_as_expert": False} if gated else {}
    net = cls(width=8, activation="mish", **extra).build(DIMS, ["en", "de", "fr"])
    assert type(net) is net_cls and net.out_dim == 8
    assert isinstance(net.projections.layers[0][1], torch.nn.Mish)
    out = net(streams(), "fr")
    assert isinstance(out, FusionOutput) and out.representation.shape == (3, 8)
    summary = json.loads(json.dumps(net.summary()))
    assert summary["streams"] == ["wav2vec", "ge2e", "mfcc"]
    if gated:
        assert net.experts == ["wav2vec", "mfcc"] and summary["experts"] == ["wav2vec", "mfcc"]
        assert out.extras["gates"].shape == (3, 2)


def test_gated_nas_passes_the_hard_concrete_settings() -> None:
    fusion = GatedNASFusion(beta=0.5, gamma=-0.2, zeta=1.5, l0_weight=0.1, init_log_kappa=-1.0, width=4)
    net = fusion.build(DIMS, ["en", "de"])
    c = net.connectivity
    assert (c.beta, c.gamma, c.zeta, net.l0_weight) == (0.5, -0.2, 1.5, 0.1)
    assert c.log_kappa.shape == (2, 3, 3) and torch.equal(c.log_kappa, torch.full((2, 3, 3), -1.0))
    assert net.transitions.shape == (2, 3, 3, 4, 4)
    out = net(streams(), "de")
    assert set(out.extras) == {"gates", "xi", "penalty"}
    summary = json.loads(json.dumps(net.summary()))
    assert set(summary["xi"]) == {"en", "de"} and len(summary["xi"]["de"]) == 3


@pytest.mark.parametrize("cls", [OMoEFusion, MMoEFusion, GatedNASFusion], ids=lambda c: c.name)
def test_build_rejects_an_unknown_selector_listing_the_streams(cls: type[Fusion]) -> None:
    with pytest.raises(ModelError) as info:
        cls(selector="speaker").build(DIMS, ["en"])
    assert str(info.value) == (
        f"{cls.name} fusion: selector 'speaker' is not a stream; streams: 'wav2vec', 'ge2e', 'mfcc'"
    )


@pytest.mark.parametrize("cls", [MMoEFusion, GatedNASFusion], ids=lambda c: c.name)
def test_forward_rejects_an_unknown_domain(cls: type[Fusion]) -> None:
    net = cls(width=4).build(DIMS, ["en", "de"])
    with pytest.raises(ModelError) as info:
        net(streams(), "fr")
    assert str(info.value) == f"{cls.name} fusion: unknown domain 'fr'; known: en, de"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"zeta": 1.0}, "zeta", "Input should be greater than 1"),
        ({"zeta": 0.5}, "zeta", "Input should be greater than 1"),
        ({"zeta": float("inf")}, "zeta", "Input should be a finite number"),
        ({"gamma": 0.0}, "gamma", "Input should be less than 0"),
        ({"beta": 0.0}, "beta", "Input should be greater than 0"),
        ({"l0_weight": -0.1}, "l0_weight", "Input should be greater than or equal to 0"),
        ({"init_log_kappa": float("nan")}, "init_log_kappa", "Input should be a finite number"),
        ({"width": 0}, "width", "Input should be greater than 0"),
        ({"dropout": 1.0}, "dropout", "Input should be less than 1"),
        ({"selector": ""}, "selector", "String should have at least 1 character"),
        ({"delta": 2.0}, "delta", "Extra inputs are not permitted"),
        (
            {"activation": "relux"},
            "activation",
            "Value error, activation must be 'none' or a known activation: unknown activation 'relux'; "
            "available: elu, gelu, identity, leaky_relu, mish, relu, sigmoid, silu, tanh; did you mean 'relu'?",
        ),
    ],
)
def test_params_validation(kwargs: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        GatedNASFusion(**kwargs)
    (error,) = info.value.errors()
    assert error["loc"] == (field,)
    assert error["msg"] == message


def test_params_are_frozen_and_other_components_reject_nas_fields() -> None:
    fusion = MMoEFusion(selector="ge2e")
    with pytest.raises(ValidationError):
        fusion.params.width = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="zeta"):
        MMoEFusion(zeta=2.0)
    with pytest.raises(ValidationError, match="selector"):
        SharedBottomFusion(selector="ge2e")


SCRIPT = """
import sys
from serkit.builtin.fusion.gated_nas import GatedNASFusion
from serkit.builtin.fusion.mmoe import MMoEFusion
from serkit.builtin.fusion.omoe import OMoEFusion
from serkit.builtin.fusion.shared_bottom import SharedBottomFusion
for cls in (SharedBottomFusion, OMoEFusion, MMoEFusion, GatedNASFusion):
    cls(activation="gelu")
print(",".join(sorted(m for m in ("torch", "numpy", "sklearn", "librosa") if m in sys.modules)) or "none")
"""


def test_importing_and_validating_imports_no_heavy_library() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "none"

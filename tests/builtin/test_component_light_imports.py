"""The components of this package import neither torch nor numpy until they build."""

from __future__ import annotations

import subprocess
import sys

import pytest

from serkit.builtin.encoders.cnn_bilstm_attn import CnnBiLstmAttnEncoder
from serkit.builtin.encoders.mean_pool import MeanPoolEncoder
from serkit.builtin.fusion.concat import ConcatFusion
from serkit.builtin.heads.mlp import MlpHead
from serkit.builtin.losses.cross_entropy import CrossEntropyLoss
from serkit.builtin.optimizers.adamw import AdamWOptimizer
from serkit.errors import RecipeError
from serkit.registry import Registry

COMPONENTS = [
    CnnBiLstmAttnEncoder,
    MeanPoolEncoder,
    ConcatFusion,
    MlpHead,
    CrossEntropyLoss,
    AdamWOptimizer,
]

SCRIPT = """
import sys
from serkit.builtin.encoders.cnn_bilstm_attn import CnnBiLstmAttnEncoder
from serkit.builtin.encoders.mean_pool import MeanPoolEncoder
from serkit.builtin.fusion.concat import ConcatFusion
from serkit.builtin.heads.mlp import MlpHead
from serkit.builtin.losses.cross_entropy import CrossEntropyLoss
from serkit.builtin.optimizers.adamw import AdamWOptimizer
import serkit.nn
for cls in (CnnBiLstmAttnEncoder, MeanPoolEncoder, ConcatFusion, MlpHead, CrossEntropyLoss,
            AdamWOptimizer):
    cls()
MlpHead(hidden=[256], activations=["mish", "gelu"])
heavy = sorted(m for m in ("torch", "numpy", "sklearn", "librosa") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_importing_and_validating_components_imports_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "none"


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.name)
def test_components_register_and_are_created_from_a_spec(cls: type) -> None:
    registry = Registry()
    registry.register(cls)
    component = registry.create(cls.kind, {"type": cls.name})
    assert isinstance(component, cls)
    assert cls.describe()
    for field_name, info in cls.Params.model_fields.items():
        assert info.description, f"{cls.name}.{field_name} has no description"


def test_kinds_and_names() -> None:
    assert [(c.kind, c.name) for c in COMPONENTS] == [
        ("encoder", "cnn_bilstm_attn"),
        ("encoder", "mean_pool"),
        ("fusion", "concat"),
        ("head", "mlp"),
        ("loss", "cross_entropy"),
        ("optimizer", "adamw"),
    ]


def test_unknown_parameter_is_rejected() -> None:
    registry = Registry()
    registry.register(MlpHead)
    with pytest.raises(Exception, match="hidden_units"):
        registry.create("head", {"type": "mlp", "hidden_units": [3]})
    with pytest.raises(RecipeError, match="did you mean 'mlp'"):
        registry.create("head", {"type": "mpl"})

"""The paper's formulas where serkit's defaults differ: eq. 6 (summed contrastive loss) and
eq. 2 (attention scaled by sqrt(k), k the LSTM state size), as the paper_* recipes use them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from serkit.config.recipe import load_recipe
from serkit.engine.data import Batch, StreamInfo
from serkit.engine.model import build_model
from serkit.engine.train import TrainObjective
from serkit.nn import CnnBiLstmAttn
from serkit.plugins import get_registry

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
PAPER = ["paper_multidomain.yaml", "paper_single_en.yaml", "paper_single_de.yaml", "paper_single_fr.yaml"]


def eq6_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """12 kept samples whose cosines are known by hand, plus classes with 1 and 5 samples.

    Class 0: three at (1, 0), three at (0, 1): centroid direction (1, 1)/sqrt(2); class 1:
    three at (-1, 0), three at (0, -1): centroid direction -(1, 1)/sqrt(2). Every kept sample
    has cosine 1/sqrt(2) with its own centroid and -1/sqrt(2) with the other. Class 2 (one
    sample) and class 3 (five samples) have no more than 5 samples: the paper drops them.
    """
    rows = [[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3 + [[-2.0, 0.0]] * 3 + [[0.0, -0.5]] * 3
    rows += [[0.3, -0.7]] + [[0.9, 0.2]] * 5
    targets = [0] * 6 + [1] * 6 + [2] + [3] * 5
    return torch.tensor(rows, dtype=torch.float64), torch.tensor(targets)


def eq6_by_hand(w: float, b: float) -> float:
    """sum_ji -log softmax_k(S_ji,k)[j] with S_own = w/sqrt(2) + b, S_other = -w/sqrt(2) + b."""
    own, other = w / math.sqrt(2) + b, -w / math.sqrt(2) + b
    per_sample = -(own - math.log(math.exp(own) + math.exp(other)))  # = log(1 + exp(-sqrt(2) w))
    return 12 * per_sample


@pytest.mark.parametrize("name", PAPER)
def test_paper_recipes_use_the_papers_sum_and_scaling(name: str) -> None:
    recipe, _ = load_recipe(RECIPES / name)
    aux = recipe.loss.aux
    assert (aux.type, aux.reduction, aux.min_per_class) == ("ge2e_contrastive", "sum", 6)
    scales = {sid: f.encoder.attention_scale for sid, f in recipe.features.items() if f.encoder is not None}
    assert scales == {"mfcc": "lstm_state", "wav2vec": "lstm_state"}


def test_summed_loss_is_eq6_by_hand_and_the_default_drops_classes_of_five() -> None:
    recipe, _ = load_recipe(RECIPES / "paper_single_de.yaml")
    spec = recipe.loss.aux.model_dump() | {"init_w": 1.5, "init_b": 0.25}
    loss = get_registry().create("loss", spec).build(2, 4)
    emb, targets = eq6_batch()
    value = loss(None, targets, emb)
    assert loss.w.item() == pytest.approx(1.5, rel=1e-6)
    assert value.item() == pytest.approx(eq6_by_hand(loss.w.item(), 0.25), rel=1e-12)
    assert eq6_by_hand(1.5, 0.25) == pytest.approx(12 * math.log1p(math.exp(-math.sqrt(2) * 1.5)), rel=1e-12)
    mean = get_registry().create("loss", {**spec, "reduction": "mean"}).build(2, 4)(None, targets, emb)
    assert value.item() == pytest.approx(12 * mean.item(), rel=1e-12)
    # the component's default min_per_class is the paper's: classes of 5 take no part
    default = get_registry().create("loss", {"type": "ge2e_contrastive", "init_w": 1.5, "init_b": 0.25})
    assert default.params.min_per_class == 6
    five = torch.cat([emb[:5], emb[6:11]]), torch.tensor([0] * 5 + [1] * 5)
    assert default.build(2, 2)(None, five[1], five[0]).item() == 0.0


def test_training_objective_is_ce_plus_alpha_times_the_sum() -> None:
    """Total = CE + alpha * sum_ji L(x_ji) (eq. 6), through the engine's objective."""
    overrides = ["features={v: {extractor: {type: ge2e}}}", "loss.aux.init_w=1.5", "loss.aux.init_b=0.25"]
    recipe, _ = load_recipe(RECIPES / "paper_single_de.yaml", overrides)
    reg = get_registry()
    labels = {"de": ["angry", "boredom", "disgust", "fear"]}
    model = build_model(recipe, reg, [StreamInfo("v", "vector", 2)], labels).double()
    main = torch.nn.ModuleDict({"de": reg.create("loss", recipe.loss.main).build(2, 4)})
    aux = torch.nn.ModuleDict({"de": reg.create("loss", recipe.loss.aux).build(2, 4)}).double()
    alpha = recipe.domains["de"].aux_weight
    assert alpha == 0.01
    emb, targets = eq6_batch()
    batch = Batch({"v": emb}, targets, "de", torch.arange(len(targets)))
    objective = TrainObjective(model, main, aux, {"de": alpha}).eval()
    with torch.no_grad():
        logits, fused = model(batch)
        assert torch.equal(fused.representation, emb)  # concat of one vector stream: the stream itself
        ce = F.cross_entropy(logits, targets).item()
        total = objective(batch).item()
    assert total == pytest.approx(ce + alpha * eq6_by_hand(1.5, 0.25), rel=1e-9)


def test_attention_scaled_by_the_lstm_state_size() -> None:
    torch.manual_seed(0)
    shape = {"channels": 4, "kernel_sizes": (3,), "lstm_hidden": 8, "attention_dim": 4}
    paper = CnnBiLstmAttn(3, **shape, attention_scale="lstm_state")  # type: ignore[arg-type]
    default = CnnBiLstmAttn(3, **shape)  # type: ignore[arg-type]
    default.load_state_dict(paper.state_dict())
    assert paper.scale == pytest.approx(1 / math.sqrt(16)) and default.scale == pytest.approx(1 / math.sqrt(4))
    paper.eval()
    default.eval()
    x, lengths = torch.randn(2, 7, 3), torch.tensor([7, 5])
    with torch.no_grad():
        lp = paper.attention_weights(x, lengths)[1, :5].log()
        ld = default.attention_weights(x, lengths)[1, :5].log()
    # the same logits z, divided by 4 (sqrt(2 * 8)) instead of 2 (sqrt(4)): centred log-weights halve
    assert torch.allclose(lp - lp.mean(), (ld - ld.mean()) / 2, atol=1e-5)
    component = get_registry().create(
        "encoder", {"type": "cnn_bilstm_attn", "lstm_hidden": 64, "attention_dim": 256, "attention_scale": "lstm_state"}
    )
    assert component.build(40).scale == pytest.approx(1 / math.sqrt(128))

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from serkit.builtin.losses.ge2e_contrastive import Ge2eContrastiveLoss
from serkit.errors import ModelError
from serkit.nn.ge2e_contrastive import Ge2eContrastive
from serkit.registry import Registry


def reference(
    emb: np.ndarray,
    targets: list[int],
    *,
    min_per_class: int,
    w: float,
    b: float,
    exclusive: bool,
    reduction: str,
) -> float:
    """Loop-based GE2E loss, straight from the definition."""
    x = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in emb.tolist()]
    kept = sorted(c for c in set(targets) if targets.count(c) >= min_per_class)
    if len(kept) < 2:
        return 0.0
    losses = []
    for i, j in enumerate(targets):
        if j not in kept:
            continue
        scores = {}
        for k in kept:
            members = [x[t] for t, y in enumerate(targets) if y == k and not (exclusive and t == i)]
            c = [sum(col) / len(members) for col in zip(*members, strict=True)]
            cos = sum(a * bb for a, bb in zip(x[i], c, strict=True)) / math.sqrt(sum(v * v for v in c))
            scores[k] = w * cos + b
        log_z = math.log(sum(math.exp(s) for s in scores.values()))
        losses.append(-(scores[j] - log_z))
    return sum(losses) / len(losses) if reduction == "mean" else sum(losses)


def batch(counts: list[int], dim: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    targets = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    targets = targets[torch.randperm(len(targets), generator=gen)]
    means = torch.randn(len(counts), dim, generator=gen, dtype=torch.float64)
    emb = means[targets] + 0.8 * torch.randn(len(targets), dim, generator=gen, dtype=torch.float64)
    return emb, targets


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_loop_reference(exclusive: bool, reduction: str) -> None:
    emb, targets = batch([5, 4, 3, 1, 2])  # min 3 keeps classes 0, 1, 2
    loss = Ge2eContrastive(min_per_class=3, init_w=7.0, init_b=-2.0, exclusive_centroid=exclusive, reduction=reduction)
    assert loss.w.item() == pytest.approx(7.0, rel=1e-6)
    value = loss(torch.zeros(len(targets), 5), targets, emb)
    assert value.shape == ()
    assert value.dtype == torch.float64
    expected = reference(
        emb.numpy(),
        targets.tolist(),
        min_per_class=3,
        w=loss.w.item(),
        b=loss.b.item(),
        exclusive=exclusive,
        reduction=reduction,
    )
    assert value.item() == pytest.approx(expected, rel=1e-9)


def test_exclusive_centroid_changes_the_value_and_sum_is_n_times_mean() -> None:
    emb, targets = batch([4, 4, 3])
    inclusive = Ge2eContrastive(min_per_class=2)(None, targets, emb)
    exclusive = Ge2eContrastive(min_per_class=2, exclusive_centroid=True)(None, targets, emb)
    # leaving x_ji out of its own centroid lowers its own-class similarity: a harder loss
    assert exclusive.item() > inclusive.item() + 1e-3
    total = Ge2eContrastive(min_per_class=2, reduction="sum")(None, targets, emb)
    assert total.item() == pytest.approx(11 * inclusive.item(), rel=1e-9)


def test_invariant_to_batch_order_and_embedding_scale() -> None:
    emb, targets = batch([3, 3, 4], seed=1)
    loss = Ge2eContrastive(min_per_class=3, exclusive_centroid=True)
    perm = torch.randperm(len(targets), generator=torch.Generator().manual_seed(5))
    scale = torch.rand(len(targets), 1, dtype=torch.float64) + 0.5
    a = loss(None, targets, emb)
    assert loss(None, targets[perm], emb[perm]).item() == pytest.approx(a.item(), rel=1e-12)
    assert loss(None, targets, emb * scale).item() == pytest.approx(a.item(), rel=1e-12)


def test_classes_below_min_per_class_are_dropped() -> None:
    emb, targets = batch([3, 4, 3], seed=2)
    loss = Ge2eContrastive(min_per_class=3, exclusive_centroid=True)
    base = loss(None, targets, emb).item()
    # a lone sample of a new class, and two samples of another: both below min_per_class
    extra = torch.randn(3, 5, dtype=torch.float64)
    more_emb = torch.cat([extra[:1], emb, extra[1:]]).requires_grad_(True)
    more_targets = torch.cat([torch.tensor([7]), targets, torch.tensor([9, 9])])
    value = loss(None, more_targets, more_emb)
    assert value.item() == pytest.approx(base, rel=1e-12)
    value.backward()
    assert more_emb.grad is not None
    assert more_emb.grad[0].abs().max().item() == 0.0  # dropped: no influence at all
    assert more_emb.grad[-2:].abs().max().item() == 0.0
    assert more_emb.grad[1:-2].abs().max().item() > 0.0


@pytest.mark.parametrize("counts", [[6, 2, 1], [9], [1, 1, 1, 1]])
def test_fewer_than_two_kept_classes_gives_a_differentiable_zero(counts: list[int]) -> None:
    emb, targets = batch(counts)
    emb.requires_grad_(True)
    loss = Ge2eContrastive(min_per_class=3)
    value = loss(torch.zeros(len(targets), 3), targets, emb)
    assert value.item() == 0.0
    assert value.requires_grad and value.grad_fn is not None
    value.backward()
    assert emb.grad is not None and emb.grad.abs().max().item() == 0.0
    assert loss.w_raw.grad is not None and loss.w_raw.grad.item() == 0.0
    # a non-trainable embedding still gives a graph (through w and b)
    assert loss(None, targets, emb.detach()).grad_fn is not None


def test_gradients_reach_w_b_and_the_embedding() -> None:
    emb, targets = batch([4, 5, 3], seed=3)
    emb = emb.float().requires_grad_(True)
    loss = Ge2eContrastive(min_per_class=3)
    loss(None, targets, emb).backward()
    assert {name for name, _ in loss.named_parameters()} == {"w_raw", "b"}
    for grad in (loss.w_raw.grad, loss.b.grad, emb.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().max().item() > 0


def test_w_stays_positive_after_a_step_pushing_it_negative() -> None:
    emb, targets = batch([4, 4], seed=4)
    loss = Ge2eContrastive(min_per_class=2)
    optimiser = torch.optim.SGD(loss.parameters(), lr=1.0)
    (loss(None, targets, emb) + 50.0 * loss.w).backward()  # d/dw_raw ~ 50: a step of ~ -50
    optimiser.step()
    assert loss.w_raw.item() < -30.0
    assert loss.w.item() > 0.0
    optimiser.zero_grad()
    value = loss(None, targets, emb)
    assert torch.isfinite(value)
    value.backward()
    assert loss.w_raw.grad is not None and loss.w_raw.grad.item() != 0.0  # not stuck


def test_targets_of_any_integer_dtype() -> None:
    emb, targets = batch([3, 3, 3], seed=6)
    loss = Ge2eContrastive(min_per_class=3)
    a = loss(None, targets, emb).item()
    assert loss(None, targets.to(torch.int32), emb).item() == pytest.approx(a, rel=1e-12)
    assert loss(None, targets.to(torch.uint8), emb).item() == pytest.approx(a, rel=1e-12)


def test_training_a_linear_embedding_separates_the_classes() -> None:
    torch.manual_seed(0)
    n_classes, per_class, dim = 3, 12, 8
    targets = torch.arange(n_classes).repeat_interleave(per_class)
    centres = 2.0 * torch.randn(n_classes, dim)
    inputs = centres[targets] + 0.7 * torch.randn(len(targets), dim)
    inputs = inputs + 6.0 * torch.randn(1, dim)  # shared offset: initially every cosine is high
    model = torch.nn.Linear(dim, 4)
    loss = Ge2eContrastive(min_per_class=5, exclusive_centroid=True)
    optimiser = torch.optim.Adam([*model.parameters(), *loss.parameters()], lr=0.05)

    def margin() -> float:
        with torch.no_grad():
            x = torch.nn.functional.normalize(model(inputs), dim=1)
            c = torch.nn.functional.normalize(torch.stack([x[targets == k].mean(0) for k in range(n_classes)]), dim=1)
            cos = x @ c.T
            own = cos.gather(1, targets[:, None]).squeeze(1)
            other = cos.masked_fill(torch.nn.functional.one_hot(targets, n_classes).bool(), -2.0).max(1).values
            return (own - other).mean().item()

    first = loss(None, targets, model(inputs)).item()
    margin_before = margin()
    for _ in range(150):
        optimiser.zero_grad()
        loss(None, targets, model(inputs)).backward()
        optimiser.step()
    last = loss(None, targets, model(inputs)).item()
    assert last < 0.3 * first
    assert margin() > margin_before + 0.3
    assert margin() > 0.5


def test_errors() -> None:
    loss = Ge2eContrastive(embedding_dim=5)
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: embedding must be \(B, D\); got None$"):
        loss(None, torch.tensor([0, 1]))
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: embedding must be \(B, 5\); got shape \(2, 4\)$"):
        loss(None, torch.tensor([0, 1]), torch.zeros(2, 4))
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: targets must be \(B,\) = \(2,\); got shape \(3,\)$"):
        loss(None, torch.tensor([0, 1, 2]), torch.zeros(2, 5))
    with pytest.raises(
        ModelError, match=r"^ge2e_contrastive: targets must be integer class indices; got torch.float32"
    ):
        loss(None, torch.tensor([0.0, 1.0]), torch.zeros(2, 5))
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: logits must be \(2, C\); got shape \(3, 4\)$"):
        loss(torch.zeros(3, 4), torch.tensor([0, 1]), torch.zeros(2, 5))
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: min_per_class must be an int >= 2; got 1$"):
        Ge2eContrastive(min_per_class=1)
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: init_w must be a finite number > 0; got 0.0$"):
        Ge2eContrastive(init_w=0.0)
    with pytest.raises(ModelError, match=r"^ge2e_contrastive: reduction must be 'mean' or 'sum'; got 'max'$"):
        Ge2eContrastive(reduction="max")  # type: ignore[arg-type]


# --- the registered component --------------------------------------------------------------


def test_component_builds_the_module_with_its_params() -> None:
    registry = Registry()
    registry.register(Ge2eContrastiveLoss)
    component = registry.create("loss", {"type": "ge2e_contrastive", "min_per_class": 3, "exclusive_centroid": True})
    assert isinstance(component, Ge2eContrastiveLoss)
    assert (component.kind, component.name) == ("loss", "ge2e_contrastive")
    assert component.params.weight == 0.1
    assert Ge2eContrastiveLoss.describe()
    for field_name, info in Ge2eContrastiveLoss.Params.model_fields.items():
        assert info.description, field_name

    module = component.build(embedding_dim=5, n_classes=6)
    assert isinstance(module, Ge2eContrastive)
    assert (module.min_per_class, module.exclusive_centroid, module.reduction) == (3, True, "mean")
    assert module.w.item() == pytest.approx(10.0, rel=1e-6)
    assert module.b.item() == -5.0
    emb, targets = batch([3, 4, 2])
    expected = reference(
        emb.numpy(), targets.tolist(), min_per_class=3, w=module.w.item(), b=-5.0, exclusive=True, reduction="mean"
    )
    assert module(torch.zeros(9, 6), targets, emb).item() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ModelError, match=r"embedding must be \(B, 5\)"):
        module(None, targets, emb[:, :4])


@pytest.mark.parametrize(
    ("field", "value"),
    [("min_per_class", 1), ("init_w", 0.0), ("weight", -0.1), ("reduction", "max"), ("typo", 1)],
)
def test_component_params_validation(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Ge2eContrastiveLoss.Params(**{field: value})


def test_component_import_is_light() -> None:
    script = (
        "import sys\n"
        "from serkit.builtin.losses.ge2e_contrastive import Ge2eContrastiveLoss\n"
        "Ge2eContrastiveLoss(weight=0.01, min_per_class=6)\n"
        "print(','.join(m for m in ('torch', 'numpy') if m in sys.modules) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "none"

"""Shared bottom, OMoE, MMoE and gated NAS fusion networks: maths, errors and learning."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from serkit.errors import ModelError
from serkit.nn.fusion import FusionOutput
from serkit.nn.moe import GatedNASNet, MMoENet, OMoENet, SharedBottomNet

DIMS = {"sel": 3, "a": 4, "b": 2}
DOMAINS = ["en", "de"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks run fastest, and steadiest on a busy machine, on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def batch(n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {sid: torch.randn(n, dim, generator=g) for sid, dim in DIMS.items()}


def linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x W^T + b`` by hand for an ``nn.Linear`` (the first module of a projection)."""
    first = layer[0]
    return x @ first.weight.T + first.bias


# --- shared bottom ---------------------------------------------------------------------


def test_shared_bottom_sums_the_projected_streams() -> None:
    torch.manual_seed(0)
    net = SharedBottomNet(DIMS, DOMAINS, width=6, activation="tanh")
    x = batch()
    out = net(x, "de")
    assert isinstance(out, FusionOutput) and net.out_dim == 6
    expected = sum(torch.tanh(linear(layer, x[sid])) for layer, sid in zip(net.projections.layers, DIMS, strict=True))
    assert torch.allclose(out.representation, expected, atol=1e-6)
    assert out.extras == {}
    assert torch.equal(net(x, "en").representation, out.representation)  # domain-independent
    assert net.summary() == {"streams": ["sel", "a", "b"]}


def test_shared_bottom_without_activation_is_linear() -> None:
    torch.manual_seed(0)
    net = SharedBottomNet({"a": 2}, width=3)
    x = torch.randn(4, 2)
    ((layer,),) = [net.projections.layers]
    assert torch.allclose(net({"a": x}, "any").representation, linear(layer, x), atol=1e-6)


def test_shared_bottom_dropout_acts_only_in_training() -> None:
    torch.manual_seed(0)
    net = SharedBottomNet({"a": 8}, width=64, dropout=0.5)
    x = {"a": torch.randn(16, 8)}
    assert not torch.equal(net(x, "d").representation, net(x, "d").representation)
    net.eval()
    assert torch.equal(net(x, "d").representation, net(x, "d").representation)


# --- gates -----------------------------------------------------------------------------


GATED: list[tuple[str, Callable[..., nn.Module]]] = [
    ("omoe", OMoENet),
    ("mmoe", MMoENet),
    ("gated_nas", GatedNASNet),
]


@pytest.mark.parametrize(("name", "cls"), GATED, ids=[n for n, _ in GATED])
def test_gates_are_a_softmax_of_the_selector_summing_to_one(name: str, cls: Callable[..., nn.Module]) -> None:
    torch.manual_seed(0)
    net = cls(DIMS, "sel", DOMAINS, width=5)
    net.eval()
    x = batch(7)
    out = net(x, "de")
    gates = out.extras["gates"]
    assert out.representation.shape == (7, 5) and gates.shape == (7, 3)
    assert torch.allclose(gates.sum(dim=1), torch.ones(7), atol=1e-6)
    assert (gates > 0).all()
    gate = net.gates[1 if name != "omoe" else 0]
    assert torch.allclose(gates, torch.softmax(x["sel"] @ gate.weight.T + gate.bias, dim=1), atol=1e-6)
    assert net.experts == ["sel", "a", "b"]
    summary = net.summary()
    json.dumps(summary)
    assert summary["streams"] == ["sel", "a", "b"] and summary["experts"] == ["sel", "a", "b"]
    assert summary["selector"] == "sel"


def test_mmoe_gates_differ_per_domain_omoe_gates_do_not() -> None:
    torch.manual_seed(0)
    x = batch()
    mmoe = MMoENet(DIMS, "sel", DOMAINS, width=4)
    assert not torch.allclose(mmoe(x, "en").extras["gates"], mmoe(x, "de").extras["gates"])
    omoe = OMoENet(DIMS, "sel", DOMAINS, width=4)
    assert torch.equal(omoe(x, "en").extras["gates"], omoe(x, "de").extras["gates"])
    assert torch.equal(omoe(x, "en").representation, omoe(x, "de").representation)
    assert len(omoe.gates) == 1 and len(mmoe.gates) == 2


def test_mixture_is_the_gate_weighted_sum_of_the_projected_experts() -> None:
    torch.manual_seed(0)
    net = MMoENet(DIMS, "sel", DOMAINS, width=4, activation="relu")
    x = batch()
    out = net(x, "en")
    g = out.extras["gates"]
    f = [torch.relu(linear(layer, x[sid])) for layer, sid in zip(net.projections.layers, DIMS, strict=True)]
    expected = sum(g[:, j : j + 1] * f[j] for j in range(3))
    assert torch.allclose(out.representation, expected, atol=1e-6)


def test_selector_can_be_left_out_of_the_experts() -> None:
    torch.manual_seed(0)
    net = OMoENet(DIMS, "sel", width=4, selector_as_expert=False, gate_bias=False)
    x = batch()
    out = net(x, "whatever")
    assert net.experts == ["a", "b"] and out.extras["gates"].shape == (5, 2)
    assert net.gates[0].bias is None and net.gates[0].weight.shape == (2, 3)
    assert torch.allclose(out.extras["gates"], torch.softmax(x["sel"] @ net.gates[0].weight.T, dim=1))
    # the selector feeds only the gate: changing it changes the weights, not the experts
    f = [linear(layer, x[sid]) for layer, sid in zip(net.projections.layers, ["a", "b"], strict=True)]
    g = out.extras["gates"]
    assert torch.allclose(out.representation, g[:, :1] * f[0] + g[:, 1:] * f[1], atol=1e-6)


# --- gated NAS -------------------------------------------------------------------------


def test_gated_nas_with_open_gates_and_one_stream_is_a_linear_map() -> None:
    torch.manual_seed(0)
    net = GatedNASNet({"x": 3}, "x", ["en", "de"], width=4)
    with torch.no_grad():
        net.connectivity.log_kappa.fill_(20.0)  # s_bar > 1 -> xi = 1 exactly
    net.eval()
    x = torch.randn(6, 3)
    out = net({"x": x}, "de")
    assert out.extras["xi"].tolist() == [[1.0]] and out.extras["gates"].tolist() == [[1.0]] * 6
    (layer,) = net.projections.layers
    w = net.transitions[1, 0, 0]  # domain "de", connection (0, 0)
    expected = (x @ layer[0].weight.T + layer[0].bias) @ w.T
    assert torch.allclose(out.representation, expected, atol=1e-5)
    # the same map as one matrix: x A^T + c with A = W P, c = W b
    a, c = w @ layer[0].weight, w @ layer[0].bias
    assert torch.allclose(out.representation, x @ a.T + c, atol=1e-5)


def test_gated_nas_matches_the_explicit_double_sum() -> None:
    torch.manual_seed(0)
    net = GatedNASNet(DIMS, "sel", DOMAINS, width=3, activation="gelu")
    with torch.no_grad():
        # a mix of closed (0), fractional and open (1) connections
        net.connectivity.log_kappa[0] = torch.tensor([[-4.0, 0.0, 2.0], [-1.0, 3.0, -0.5], [0.5, -4.0, 1.0]])
    net.eval()
    x = batch(4)
    out = net(x, "en")
    c = net.connectivity
    xi = torch.clamp(torch.sigmoid(c.log_kappa[0]) * 2.1 - 0.1, 0.0, 1.0)
    assert torch.allclose(out.extras["xi"], xi)
    assert (xi == 0).any() and (xi == 1).any() and ((xi > 0) & (xi < 1)).any()
    f = [nn.functional.gelu(linear(layer, x[sid])) for layer, sid in zip(net.projections.layers, DIMS, strict=True)]
    g = out.extras["gates"]
    expected = torch.zeros(4, 3)
    for i in range(3):
        u_i = sum(xi[i, j] * (f[j] @ net.transitions[0, i, j].T) for j in range(3))
        expected += g[:, i : i + 1] * u_i
    assert torch.allclose(out.representation, expected, atol=1e-5)


def test_gated_nas_samples_one_connectivity_per_batch_in_training_and_is_fixed_in_eval() -> None:
    torch.manual_seed(0)
    net = GatedNASNet(DIMS, "sel", DOMAINS, width=3, init_log_kappa=0.0)
    x = batch()
    first, second = net(x, "en"), net(x, "en")
    assert first.extras["xi"].shape == (3, 3)
    assert not torch.equal(first.extras["xi"], second.extras["xi"])
    assert not torch.allclose(first.representation, second.representation)
    net.eval()
    a, b = net(x, "en"), net(x, "en")
    assert torch.equal(a.extras["xi"], b.extras["xi"]) and torch.equal(a.representation, b.representation)
    assert torch.allclose(a.extras["xi"], torch.full((3, 3), 0.95))


def test_gated_nas_l0_penalty_is_the_closed_form_for_the_batch_domain() -> None:
    torch.manual_seed(0)
    net = GatedNASNet(DIMS, "sel", DOMAINS, width=3, l0_weight=0.5)
    with torch.no_grad():
        net.connectivity.log_kappa[0].fill_(0.0)
        net.connectivity.log_kappa[1].copy_(torch.arange(9.0).reshape(3, 3) - 4.0)
    out = net(batch(), "de")
    shift = -0.9 * math.log(0.1 / 2.0)
    expected = 0.5 * sum(1.0 / (1.0 + math.exp(-(lk - 4.0 + shift))) for lk in range(9))
    assert out.extras["penalty"].shape == ()
    assert out.extras["penalty"].item() == pytest.approx(expected, abs=1e-5)
    out.extras["penalty"].backward()
    grad = net.connectivity.log_kappa.grad
    assert (grad[0] == 0).all() and (grad[1] > 0).all()  # only the batch's domain
    en = net(batch(), "en").extras["penalty"]
    assert en.item() == pytest.approx(0.5 * 9 / (1.0 + math.exp(-shift)), abs=1e-5)
    assert "penalty" not in GatedNASNet(DIMS, "sel", DOMAINS, width=3)(batch(), "en").extras


def test_gated_nas_summary_is_json_with_the_deterministic_connectivity_per_domain() -> None:
    torch.manual_seed(0)
    net = GatedNASNet(DIMS, "sel", DOMAINS, width=3, selector_as_expert=False)
    with torch.no_grad():
        net.connectivity.log_kappa[1, 0, 1] = -5.0
    summary = json.loads(json.dumps(net.summary()))
    assert summary["streams"] == ["sel", "a", "b"] and summary["experts"] == ["a", "b"]
    assert summary["domains"] == ["en", "de"]
    assert summary["xi"] == {"en": [[1.0, 1.0], [1.0, 1.0]], "de": [[1.0, 0.0], [1.0, 1.0]]}
    assert summary["p_nonzero"]["de"][0][1] == pytest.approx(1 / (1 + math.exp(5.0 + 0.9 * math.log(0.05))))
    assert net.training  # summary does not change the mode


def test_state_dict_round_trip_reproduces_the_output() -> None:
    torch.manual_seed(0)
    net = GatedNASNet(DIMS, "sel", DOMAINS, width=3).eval()
    torch.manual_seed(1)
    other = GatedNASNet(DIMS, "sel", DOMAINS, width=3).eval()
    other.load_state_dict(net.state_dict())
    x = batch()
    assert torch.equal(net(x, "de").representation, other(x, "de").representation)


# --- private projections ---------------------------------------------------------------


@pytest.mark.parametrize("cls", [OMoENet, MMoENet, GatedNASNet], ids=["omoe", "mmoe", "gated_nas"])
def test_private_projections_start_as_the_shared_model(cls: Callable[..., nn.Module]) -> None:
    torch.manual_seed(0)
    shared = cls(DIMS, "sel", DOMAINS, width=3).eval()
    torch.manual_seed(0)
    private = cls(DIMS, "sel", DOMAINS, width=3, private_projections=True).eval()
    x = batch()
    for domain in DOMAINS:
        assert torch.equal(private(x, domain).representation, shared(x, domain).representation)
    assert not [k for k in shared.state_dict() if "private" in k]  # old checkpoints keep their keys
    assert private.projections.private_weight[1].shape == (2, 3, DIMS["a"])  # stacked over domains


def test_private_projection_adds_to_the_shared_one_before_the_activation() -> None:
    torch.manual_seed(0)
    net = MMoENet({"a": 4}, "a", DOMAINS, width=3, activation="tanh", private_projections=True)
    with torch.no_grad():
        net.projections.private_weight[0][1].normal_()
        net.projections.private_bias[0][1].normal_()
    x = torch.randn(5, 4)
    w, b = net.projections.private_weight[0][1], net.projections.private_bias[0][1]
    expected = torch.tanh(linear(net.projections.layers[0], x) + x @ w.T + b)  # one expert: its gate is 1
    assert torch.allclose(net({"a": x}, "de").representation, expected, atol=1e-6)
    assert torch.allclose(net({"a": x}, "en").representation, torch.tanh(linear(net.projections.layers[0], x)))


def test_a_domain_trains_only_its_own_private_projections() -> None:
    torch.manual_seed(0)
    net = GatedNASNet(DIMS, "sel", DOMAINS, width=3, private_projections=True)
    net(batch(), "de").representation.sum().backward()
    for grad in [p.grad for p in net.projections.private_weight] + [p.grad for p in net.projections.private_bias]:
        assert grad is not None and grad[1].abs().sum() > 0 and torch.equal(grad[0], torch.zeros_like(grad[0]))


def _conflicting_task(n: int, seed: int) -> dict[str, tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Two domains whose labels read orthogonal directions of the same stream ``a``."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for domain, column in (("en", 0), ("de", 1)):
        a = torch.randn(n, 6, generator=g)
        out[domain] = ({"sel": torch.randn(n, 2, generator=g), "a": a}, (a[:, column] > 0).long())
    return out


def _accuracies(private: bool, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)  # width 1: one shared projection can serve one domain's direction only
    net = MMoENet({"sel": 2, "a": 6}, "sel", DOMAINS, width=1, selector_as_expert=False, private_projections=private)
    heads = nn.ModuleDict({d: nn.Linear(1, 2) for d in DOMAINS})
    opt = torch.optim.Adam([*net.parameters(), *heads.parameters()], lr=3e-2)
    for _ in range(200):
        for domain, (streams, label) in _conflicting_task(128, seed).items():
            loss = nn.functional.cross_entropy(heads[domain](net(streams, domain).representation), label)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return {
            d: float((heads[d](net(x, d).representation).argmax(1) == y).float().mean())
            for d, (x, y) in _conflicting_task(512, seed + 1).items()
        }


def test_private_projections_learn_what_the_shared_projection_cannot() -> None:
    assert min(_accuracies(private=True).values()) > 0.9
    assert min(_accuracies(private=False).values()) < 0.8


def test_private_projections_need_domains() -> None:
    with pytest.raises(ModelError, match="domains are required"):
        OMoENet(DIMS, "sel", width=3, private_projections=True)


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [OMoENet, MMoENet, GatedNASNet], ids=["omoe", "mmoe", "gated_nas"])
def test_unknown_selector_lists_the_streams(cls: Callable[..., nn.Module]) -> None:
    name = {OMoENet: "omoe", MMoENet: "mmoe", GatedNASNet: "gated_nas"}[cls]
    with pytest.raises(ModelError) as info:
        cls(DIMS, "ge2e", DOMAINS)
    assert str(info.value) == f"{name} fusion: selector 'ge2e' is not a stream; streams: 'sel', 'a', 'b'"


@pytest.mark.parametrize(
    "make",
    [
        lambda: SharedBottomNet(DIMS, DOMAINS, width=2),
        lambda: OMoENet(DIMS, "sel", DOMAINS, width=2),
        lambda: MMoENet(DIMS, "sel", DOMAINS, width=2),
        lambda: GatedNASNet(DIMS, "sel", DOMAINS, width=2),
    ],
    ids=["shared_bottom", "omoe", "mmoe", "gated_nas"],
)
def test_unknown_domain_is_rejected(make: Callable[[], nn.Module]) -> None:
    net = make()
    with pytest.raises(ModelError, match=r"fusion: unknown domain 'fr'; known: en, de$"):
        net(batch(), "fr")


def test_construction_errors() -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: MMoENet(DIMS, "sel", None), "mmoe fusion: domains are required (one gate per domain); got None"),
        (lambda: GatedNASNet(DIMS, "sel", []), "gated_nas fusion: domains is empty; at least one domain is needed"),
        (
            lambda: MMoENet(DIMS, "sel", "en"),
            "mmoe fusion: domains must be a sequence of domain ids; got the string 'en'",
        ),
        (lambda: MMoENet(DIMS, "sel", ["en", "en"]), "mmoe fusion: duplicated domain id(s) 'en'"),
        (
            lambda: OMoENet({"sel": 3}, "sel", selector_as_expert=False),
            "omoe fusion: no expert stream: the selector 'sel' is the only stream and selector_as_expert is false",
        ),
        (lambda: SharedBottomNet({}), "shared_bottom fusion: stream_dims is empty; at least one stream is needed"),
        (lambda: SharedBottomNet({"a": 0}), "shared_bottom fusion: stream 'a' has width 0; expected a positive int"),
        (lambda: SharedBottomNet({"a": 2}, width=0), "shared_bottom fusion: width must be a positive int; got 0"),
        (lambda: SharedBottomNet({"a": 2}, dropout=1.0), "shared_bottom fusion: dropout must be in [0, 1); got 1.0"),
        (lambda: GatedNASNet(DIMS, "sel", DOMAINS, zeta=1.0), "gated_nas fusion: zeta must be finite and > 1; got 1.0"),
        (
            lambda: GatedNASNet(DIMS, "sel", DOMAINS, gamma=0.1),
            "gated_nas fusion: gamma must be finite and < 0; got 0.1",
        ),
        (
            lambda: GatedNASNet(DIMS, "sel", DOMAINS, l0_weight=-1.0),
            "gated_nas fusion: l0_weight must be >= 0; got -1.0",
        ),
    ]
    for make, message in cases:
        with pytest.raises(ModelError) as info:
            make()
        assert str(info.value) == message
    with pytest.raises(ModelError, match=r"omoe fusion: activation must be 'none' or a known activation: unknown "):
        OMoENet(DIMS, "sel", activation="relux")


def test_streams_are_checked_at_forward() -> None:
    net = MMoENet(DIMS, "sel", DOMAINS, width=2)
    x = batch()
    del x["b"]
    with pytest.raises(ModelError, match="mmoe fusion: missing stream"):
        net(x, "en")


# --- learning --------------------------------------------------------------------------


def two_domain_task(n: int, seed: int) -> dict[str, tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Domain ``en``: the label is the sign of ``a[:, 0]``; ``de``: of ``b[:, 0]``.

    The selector carries the domain (like a speaker/language embedding) plus noise.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, domain in enumerate(["en", "de"]):
        sel = torch.randn(n, 4, generator=g) * 0.3
        sel[:, 0] += 1.0 if k == 0 else -1.0
        a, b = torch.randn(n, 6, generator=g), torch.randn(n, 6, generator=g)
        label = ((a if k == 0 else b)[:, 0] > 0).long()
        out[domain] = ({"sel": sel, "a": a, "b": b}, label)
    return out


LEARNERS: list[tuple[str, Callable[[], nn.Module]]] = [
    ("shared_bottom", lambda: SharedBottomNet({"sel": 4, "a": 6, "b": 6}, ["en", "de"], width=16)),
    ("omoe", lambda: OMoENet({"sel": 4, "a": 6, "b": 6}, "sel", ["en", "de"], width=16)),
    ("mmoe", lambda: MMoENet({"sel": 4, "a": 6, "b": 6}, "sel", ["en", "de"], width=16, selector_as_expert=False)),
    (
        "gated_nas",
        lambda: GatedNASNet({"sel": 4, "a": 6, "b": 6}, "sel", ["en", "de"], width=16, l0_weight=0.01),
    ),
]


@pytest.mark.parametrize(("name", "make"), LEARNERS, ids=[n for n, _ in LEARNERS])
@pytest.mark.parametrize("seed", [0, 1])
def test_learns_a_two_domain_task(name: str, make: Callable[[], nn.Module], seed: int) -> None:
    torch.manual_seed(seed)
    net = make()
    heads = nn.ModuleDict({d: nn.Linear(net.out_dim, 2) for d in ["en", "de"]})
    opt = torch.optim.Adam([*net.parameters(), *heads.parameters()], lr=1e-2)
    train = two_domain_task(128, seed)
    for _ in range(150):
        for domain, (streams, label) in train.items():
            out = net(streams, domain)
            loss = nn.functional.cross_entropy(heads[domain](out.representation), label)
            loss = loss + out.extras.get("penalty", 0.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        for domain, (streams, label) in two_domain_task(256, seed + 100).items():
            out = net(streams, domain)
            accuracy = float((heads[domain](out.representation).argmax(1) == label).float().mean())
            assert accuracy > 0.85, (domain, accuracy)
            if name in ("omoe", "mmoe"):  # the gate favours the stream the domain's label uses
                informative = net.experts.index("a" if domain == "en" else "b")
                assert float(out.extras["gates"].mean(0)[informative]) > 0.5
    json.dumps(net.summary())

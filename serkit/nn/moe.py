"""The paper's multi-domain fusion networks: shared bottom, OMoE, MMoE and gated NAS.

Every network first projects each expert stream ``v_j: (B, k_j)`` to a common ``width``
with its own ``Linear`` (then an optional activation and dropout), giving
``f_j: (B, width)`` (the gated networks can add a private projection per domain,
``private_projections``); then:

- :class:`SharedBottomNet` (SB): ``sum_j f_j``, the same for every domain;
- :class:`OMoENet`: ``sum_j g_j(x) f_j`` with one gate ``g(x) = softmax(W x + b)`` shared
  by all domains, ``x`` being the selector stream's vector (the paper's GE2E embedding);
- :class:`MMoENet`: the same with one gate ``g_k`` per domain ``k``;
- :class:`GatedNASNet` (the paper's "Ours"): per-domain gates plus a NAS layer per domain,
  ``u_i = sum_j xi^k_ij W^k_ij f_j`` with hard concrete connection gates ``xi^k_ij`` (see
  :mod:`serkit.nn.hard_concrete`), and ``sum_i g_k(x)_i u_i``.

``forward(streams, domain)`` takes ``streams[sid]: (B, k_sid)`` and the batch's domain id,
and returns a :class:`serkit.interfaces.fusion.FusionOutput` with the representation
``(B, width)``; the gated networks add ``extras["gates"]: (B, M)`` (columns in the order of
:attr:`experts`), gated NAS also ``extras["xi"]: (M, M)`` and, with ``l0_weight > 0``,
``extras["penalty"]`` (a scalar). ``summary()`` returns JSON-serialisable facts for the
report (stream and expert order; gated NAS: the deterministic connectivity per domain).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from serkit.errors import ModelError
from serkit.interfaces.fusion import GATES, PENALTY, FusionOutput
from serkit.nn.activations import check_activation, make_activation
from serkit.nn.fusion import check_streams
from serkit.nn.hard_concrete import (
    HardConcrete,
    check_hard_concrete,
    hard_concrete_deterministic,
    hard_concrete_prob_nonzero,
    hard_concrete_sample,
)

__all__ = ["NO_ACTIVATION", "GatedNASNet", "MMoENet", "OMoENet", "SharedBottomNet"]

#: The ``activation`` value meaning "no activation after the stream projections".
NO_ACTIVATION: str = "none"


def _check_stream_dims(stream_dims: Mapping[str, int], where: str) -> dict[str, int]:
    if not stream_dims:
        raise ModelError(f"{where}: stream_dims is empty; at least one stream is needed")
    for sid, dim in stream_dims.items():
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ModelError(f"{where}: stream {sid!r} has width {dim!r}; expected a positive int")
    return dict(stream_dims)


def _check_domains(domains: Sequence[str] | None, where: str, required: bool) -> tuple[str, ...] | None:
    if domains is None:
        if required:
            raise ModelError(f"{where}: domains are required (one gate per domain); got None")
        return None
    if isinstance(domains, str):
        raise ModelError(f"{where}: domains must be a sequence of domain ids; got the string {domains!r}")
    found = tuple(domains)
    if required and not found:
        raise ModelError(f"{where}: domains is empty; at least one domain is needed")
    duplicated = sorted({d for d in found if found.count(d) > 1})
    if duplicated:
        raise ModelError(f"{where}: duplicated domain id(s) {', '.join(map(repr, duplicated))}")
    return found


def _check_projection(width: int, activation: str, dropout: float, where: str) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ModelError(f"{where}: width must be a positive int; got {width!r}")
    if activation != NO_ACTIVATION:
        try:
            check_activation(activation)
        except ModelError as err:
            raise ModelError(f"{where}: activation must be {NO_ACTIVATION!r} or a known activation: {err}") from err
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ModelError(f"{where}: dropout must be in [0, 1); got {dropout!r}")


class _Projections(nn.Module):
    """``[v_j: (B, k_j)]`` -> ``(B, M, width)``: per-stream ``Linear`` -> activation -> dropout.

    With ``n_private = K > 0`` each of the ``K`` domains also has its own projection of
    every stream, ``(K, width, k_j)`` weights and ``(K, width)`` biases stacked over domains,
    added to the shared ``Linear`` before the activation: ``W_j v + b_j + W^k_j v + b^k_j``.
    They start at zero (the shared model), so what a domain keeps apart from the others is
    what its own data pull away from the shared projection, against the weight decay.
    With ``K = 1`` this is the plain projection written as a sum of two (same function, other
    training steps); the row lets ``init_from`` add domains.
    """

    def __init__(self, dims: Sequence[int], width: int, activation: str, dropout: float, n_private: int = 0) -> None:
        super().__init__()
        layers = []
        for dim in dims:
            parts: list[nn.Module] = [nn.Linear(dim, width)]
            if activation != NO_ACTIVATION:
                parts.append(make_activation(activation))
            if dropout > 0:
                parts.append(nn.Dropout(dropout))
            layers.append(nn.Sequential(*parts))
        self.layers = nn.ModuleList(layers)
        self.n_private = n_private
        if n_private:  # no parameters otherwise: checkpoints without private projections load as before
            self.private_weight = nn.ParameterList(nn.Parameter(torch.zeros(n_private, width, dim)) for dim in dims)
            self.private_bias = nn.ParameterList(nn.Parameter(torch.zeros(n_private, width)) for _ in dims)

    def forward(self, vectors: Sequence[Tensor], index: int = 0) -> Tensor:
        """``vectors[j]: (B, k_j)`` of domain number ``index`` -> ``(B, M, width)``."""
        if not self.n_private:
            return torch.stack([layer(v) for layer, v in zip(self.layers, vectors, strict=True)], dim=1)
        out = []
        for j, (layer, v) in enumerate(zip(self.layers, vectors, strict=True)):
            z = layer[0](v) + nn.functional.linear(v, self.private_weight[j][index], self.private_bias[j][index])
            out.append(layer[1:](z))
        return torch.stack(out, dim=1)


class SharedBottomNet(nn.Module):
    """Shared bottom (SB): ``sum_j f_j(v_j)``; the same representation for every domain.

    ``forward(streams, domain)``: ``streams[sid]: (B, k_sid)`` -> representation
    ``(B, width)``; no extras. ``domain`` is checked against ``domains`` when given.

    Args:
        stream_dims: stream id -> width ``k``; its order is the order of the projections.
        domains: the domain ids the model knows (optional).
        width: common width of the projected streams and of the representation.
        activation: applied after each projection; ``"none"`` or a name of
            :data:`serkit.nn.activations.ACTIVATIONS`.
        dropout: dropout on each projected stream, in ``[0, 1)``.
    """

    where = "shared_bottom fusion"

    def __init__(
        self,
        stream_dims: Mapping[str, int],
        domains: Sequence[str] | None = None,
        width: int = 256,
        activation: str = NO_ACTIVATION,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.stream_dims = _check_stream_dims(stream_dims, self.where)
        self.domains = _check_domains(domains, self.where, required=False)
        _check_projection(width, activation, dropout, self.where)
        self.projections = _Projections(list(self.stream_dims.values()), width, activation, dropout)
        self.out_dim: int = width

    def forward(self, streams: Mapping[str, Tensor], domain: str) -> FusionOutput:
        if self.domains is not None and domain not in self.domains:
            raise ModelError(f"{self.where}: unknown domain {domain!r}; known: {', '.join(self.domains)}")
        check_streams(streams, self.stream_dims, self.where)
        projected = self.projections([streams[sid] for sid in self.stream_dims])
        return FusionOutput(projected.sum(dim=1))

    def summary(self) -> dict[str, Any]:
        """``{"streams": [...]}``: the stream order (JSON-serialisable)."""
        return {"streams": list(self.stream_dims)}

    def extra_repr(self) -> str:
        return f"stream_dims={self.stream_dims}, out_dim={self.out_dim}"


class _GatedMixture(nn.Module):
    """Projections of the expert streams plus softmax gates on the selector stream.

    ``n_gates`` is 1 (one gate for all domains) or ``len(domains)`` (one per domain).
    """

    where = "gated fusion"

    def __init__(
        self,
        stream_dims: Mapping[str, int],
        selector: str,
        domains: Sequence[str] | None,
        per_domain: bool,
        width: int,
        activation: str,
        dropout: float,
        selector_as_expert: bool,
        gate_bias: bool,
        private_projections: bool = False,
    ) -> None:
        super().__init__()
        self.stream_dims = _check_stream_dims(stream_dims, self.where)
        self.domains = _check_domains(domains, self.where, required=per_domain or private_projections)
        _check_projection(width, activation, dropout, self.where)
        if selector not in self.stream_dims:
            raise ModelError(
                f"{self.where}: selector {selector!r} is not a stream; streams: "
                f"{', '.join(map(repr, self.stream_dims))}"
            )
        self.selector = selector
        self.selector_as_expert = bool(selector_as_expert)
        self.experts: list[str] = [sid for sid in self.stream_dims if self.selector_as_expert or sid != selector]
        if not self.experts:
            raise ModelError(
                f"{self.where}: no expert stream: the selector {selector!r} is the only stream "
                "and selector_as_expert is false"
            )
        n_private = len(self.domains or ()) if private_projections else 0
        self.projections = _Projections(
            [self.stream_dims[sid] for sid in self.experts], width, activation, dropout, n_private
        )
        n_gates = len(self.domains or ()) if per_domain else 1
        self.gates = nn.ModuleList(
            nn.Linear(self.stream_dims[selector], len(self.experts), bias=gate_bias) for _ in range(n_gates)
        )
        self.per_domain = per_domain
        self.width = width
        self.out_dim: int = width

    def _domain_index(self, domain: str) -> int:
        """The position of ``domain`` in ``domains`` (0 without domains)."""
        if self.domains is not None and domain not in self.domains:
            raise ModelError(f"{self.where}: unknown domain {domain!r}; known: {', '.join(self.domains)}")
        return 0 if self.domains is None else self.domains.index(domain)

    def _experts_and_gates(self, streams: Mapping[str, Tensor], domain: str) -> tuple[int, Tensor, Tensor]:
        """``(domain index, f: (B, M, width), g: (B, M))`` for a batch of ``domain``."""
        index = self._domain_index(domain)
        check_streams(streams, self.stream_dims, self.where)
        projected = self.projections([streams[sid] for sid in self.experts], index)
        gate = self.gates[index if self.per_domain else 0]
        weights = torch.softmax(gate(streams[self.selector]), dim=-1)
        return index, projected, weights

    def forward(self, streams: Mapping[str, Tensor], domain: str) -> FusionOutput:
        _, projected, weights = self._experts_and_gates(streams, domain)
        representation = torch.einsum("bm,bmw->bw", weights, projected)
        return FusionOutput(representation, {GATES: weights})

    def summary(self) -> dict[str, Any]:
        """Stream order, expert order (the columns of ``extras["gates"]``), selector, domains."""
        return {
            "streams": list(self.stream_dims),
            "experts": list(self.experts),
            "selector": self.selector,
            "domains": list(self.domains or ()),
        }

    def extra_repr(self) -> str:
        return f"experts={self.experts}, selector={self.selector!r}, out_dim={self.out_dim}"


class OMoENet(_GatedMixture):
    """One-gate mixture of experts (OMoE): ``sum_j g_j(x) f_j``, ``g(x) = softmax(W x + b)``.

    One gate for every domain; ``x`` is the selector stream's vector ``(B, d)``.
    ``forward(streams, domain)`` -> representation ``(B, width)`` and
    ``extras["gates"]: (B, M)``, rows summing to 1, columns in :attr:`experts` order.

    Args:
        stream_dims: stream id -> width ``k``, in recipe order.
        selector: the stream whose vector feeds the gate.
        domains: the domain ids the model knows (optional; checked at forward when given).
        width: common width of the projected streams and of the representation.
        activation: after each projection; ``"none"`` or an activation name.
        dropout: dropout on each projected stream, in ``[0, 1)``.
        selector_as_expert: whether the selector stream is also one of the experts.
        gate_bias: whether the gate has a bias ``b`` (the paper writes ``softmax(W x)``).
        private_projections: each domain also gets its own projection of every expert
            stream, added to the shared one and starting at zero (needs ``domains``).

    Raises:
        ModelError: the selector is not a stream (the message lists them), no expert
            stream is left, or a width/activation/dropout is invalid.
    """

    where = "omoe fusion"

    def __init__(
        self,
        stream_dims: Mapping[str, int],
        selector: str,
        domains: Sequence[str] | None = None,
        width: int = 256,
        activation: str = NO_ACTIVATION,
        dropout: float = 0.0,
        selector_as_expert: bool = True,
        gate_bias: bool = True,
        private_projections: bool = False,
    ) -> None:
        super().__init__(
            stream_dims,
            selector,
            domains,
            per_domain=False,
            width=width,
            activation=activation,
            dropout=dropout,
            selector_as_expert=selector_as_expert,
            gate_bias=gate_bias,
            private_projections=private_projections,
        )


class MMoENet(_GatedMixture):
    """Multi-gate mixture of experts (MMoE): ``sum_j g_k(x)_j f_j`` with a gate per domain ``k``.

    ``g_k(x) = softmax(W_k x + b_k)``; ``x`` is the selector stream's vector ``(B, d)``.
    ``forward(streams, domain)`` -> representation ``(B, width)`` and
    ``extras["gates"]: (B, M)`` of the batch's domain.

    Args:
        stream_dims: stream id -> width ``k``, in recipe order.
        selector: the stream whose vector feeds the gates.
        domains: the domain ids; one gate each (required).
        width, activation, dropout, selector_as_expert, gate_bias, private_projections: as
            for :class:`OMoENet`.

    Raises:
        ModelError: as for :class:`OMoENet`; no or duplicated domains; at forward, an
            unknown domain.
    """

    where = "mmoe fusion"

    def __init__(
        self,
        stream_dims: Mapping[str, int],
        selector: str,
        domains: Sequence[str],
        width: int = 256,
        activation: str = NO_ACTIVATION,
        dropout: float = 0.0,
        selector_as_expert: bool = True,
        gate_bias: bool = True,
        private_projections: bool = False,
    ) -> None:
        super().__init__(
            stream_dims,
            selector,
            domains,
            per_domain=True,
            width=width,
            activation=activation,
            dropout=dropout,
            selector_as_expert=selector_as_expert,
            gate_bias=gate_bias,
            private_projections=private_projections,
        )


class GatedNASNet(_GatedMixture):
    """Gated NAS (the paper's "Ours"): per-domain gates over a per-domain NAS layer.

    For a batch of domain ``k``::

        u_i = sum_j xi^k_ij W^k_ij f_j          (i, j over the M experts)
        representation = sum_i g_k(x)_i u_i     g_k(x) = softmax(W_k x + b_k)

    with a ``width x width`` transition matrix ``W^k_ij`` per connection and domain, and a
    connection gate ``xi^k_ij`` in ``[0, 1]`` from the hard concrete distribution with a
    learnable ``log kappa^k_ij`` (:attr:`connectivity`, shape ``(K, M, M)``). In training
    mode one ``(M, M)`` sample is drawn per forward call, i.e. one connectivity for the
    whole batch (the NAS intent: the batch is run through one sampled architecture); in
    evaluation mode ``xi`` is deterministic.

    ``forward(streams, domain)`` -> representation ``(B, width)`` and extras
    ``"gates": (B, M)``, ``"xi": (M, M)`` (rows ``i`` = outputs ``u_i``, columns ``j`` =
    inputs ``f_j``, both in :attr:`experts` order) and, when ``l0_weight > 0``,
    ``"penalty"``: ``l0_weight * sum_ij P(xi^k_ij != 0)``, a scalar.

    Args:
        stream_dims: stream id -> width ``k``, in recipe order.
        selector: the stream whose vector feeds the gates.
        domains: the domain ids; one gate and one NAS layer each (required).
        width, activation, dropout, selector_as_expert, gate_bias, private_projections: as
            for :class:`OMoENet`.
        beta: hard concrete temperature, ``> 0``.
        gamma: lower stretch end, ``< 0``.
        zeta: upper stretch end, ``> 1`` (the paper's delta).
        l0_weight: weight of the L0 penalty, ``>= 0`` (0: no penalty).
        init_log_kappa: initial ``log kappa`` of every connection; the default 2.0 starts
            with every connection open at evaluation and open in about 87 % of the samples.

    Raises:
        ModelError: as for :class:`MMoENet`; invalid ``beta``/``gamma``/``zeta``,
            negative ``l0_weight`` or non-finite ``init_log_kappa``.
    """

    where = "gated_nas fusion"

    def __init__(
        self,
        stream_dims: Mapping[str, int],
        selector: str,
        domains: Sequence[str],
        width: int = 256,
        activation: str = NO_ACTIVATION,
        dropout: float = 0.0,
        selector_as_expert: bool = True,
        gate_bias: bool = True,
        private_projections: bool = False,
        beta: float = 0.9,
        gamma: float = -0.1,
        zeta: float = 2.0,
        l0_weight: float = 0.0,
        init_log_kappa: float = 2.0,
    ) -> None:
        super().__init__(
            stream_dims,
            selector,
            domains,
            per_domain=True,
            width=width,
            activation=activation,
            dropout=dropout,
            selector_as_expert=selector_as_expert,
            gate_bias=gate_bias,
            private_projections=private_projections,
        )
        check_hard_concrete(beta, gamma, zeta, self.where)
        if isinstance(l0_weight, bool) or not isinstance(l0_weight, (int, float)) or not l0_weight >= 0:
            raise ModelError(f"{self.where}: l0_weight must be >= 0; got {l0_weight!r}")
        n_domains, n_experts = len(self.gates), len(self.experts)
        # Each u_i sums M products W_ij f_j: the bound 1/sqrt(M * width) keeps the variance
        # of u_i like that of one nn.Linear over the M * width inputs.
        bound = 1.0 / math.sqrt(n_experts * width)
        self.transitions = nn.Parameter(
            torch.empty(n_domains, n_experts, n_experts, width, width).uniform_(-bound, bound)
        )
        self.connectivity = HardConcrete(
            (n_domains, n_experts, n_experts), beta=beta, gamma=gamma, zeta=zeta, init_log_kappa=init_log_kappa
        )
        self.l0_weight = float(l0_weight)

    def xi(self, domain: str) -> Tensor:
        """The ``(M, M)`` connection gates of ``domain``: a fresh sample in training mode,
        the deterministic value in evaluation mode."""
        log_kappa = self.connectivity.log_kappa[self._domain_index(domain)]
        c = self.connectivity
        if self.training:
            return hard_concrete_sample(log_kappa, c.beta, c.gamma, c.zeta)
        return hard_concrete_deterministic(log_kappa, c.gamma, c.zeta)

    def forward(self, streams: Mapping[str, Tensor], domain: str) -> FusionOutput:
        index, projected, weights = self._experts_and_gates(streams, domain)
        xi = self.xi(domain)
        transitions = self.transitions[index] * xi[:, :, None, None]  # (M, M, width, width)
        nas = torch.einsum("ijop,bjp->bio", transitions, projected)  # u: (B, M, width)
        representation = torch.einsum("bi,bio->bo", weights, nas)
        extras = {GATES: weights, "xi": xi}
        if self.l0_weight > 0:
            c = self.connectivity
            p_nonzero = hard_concrete_prob_nonzero(c.log_kappa[index], c.beta, c.gamma, c.zeta)
            extras[PENALTY] = self.l0_weight * p_nonzero.sum()
        return FusionOutput(representation, extras)

    def summary(self) -> dict[str, Any]:
        """Adds, per domain, the deterministic ``xi`` and ``P(xi != 0)`` as ``M x M`` lists
        (rows: outputs ``u_i``, columns: inputs ``f_j``, in ``experts`` order)."""
        out = super().summary()
        with torch.no_grad():
            xi = self.connectivity.deterministic().detach().cpu()
            p_nonzero = self.connectivity.prob_nonzero().detach().cpu()
        out["xi"] = {d: xi[k].tolist() for k, d in enumerate(self.domains or ())}
        out["p_nonzero"] = {d: p_nonzero[k].tolist() for k, d in enumerate(self.domains or ())}
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, domains={list(self.domains or ())}, l0_weight={self.l0_weight}"

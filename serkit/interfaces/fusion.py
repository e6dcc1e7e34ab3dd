"""Fusion: M stream vectors + the batch's domain -> one representation per sample.

What the engine relies on, besides :meth:`Fusion.build`'s signature:

- the network's ``out_dim: int`` (the width of the heads' and losses' inputs);
- ``forward(streams, domain)`` returns a :class:`FusionOutput`; of its extras, the engine
  reads the declared ones, :data:`GATES` (averaged over a validation or test set into the
  metrics and the report's gate plot) and :data:`PENALTY` (added to the training loss);
  other extras (e.g. gated NAS's ``xi``) are for the fusion's own users;
- an optional ``summary() -> dict`` (JSON-serialisable), recorded per run in ``results.json``;
- parameters that belong to one domain are stacked over the domains (first dimension =
  number of domains, in the order :meth:`Fusion.build` got them) or live in a
  ``ModuleList`` named ``gates`` with one entry per domain: ``init_from`` then keeps the
  initial run's rows and gives new domains fresh ones (:mod:`serkit.engine.init_from`).

:class:`serkit.testing.network_contract.FusionContract` checks a fusion against these rules.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from serkit.interfaces.base import Component

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["ENGINE_EXTRAS", "GATES", "PENALTY", "Fusion", "FusionOutput"]

#: Extra of :class:`FusionOutput`: gate weights ``(B, M)`` over the fusion's experts (one
#: column per stream, in the fusion's order); the engine reports their mean per domain.
GATES = "gates"

#: Extra of :class:`FusionOutput`: a scalar added to the training loss (e.g. gated NAS's L0 term).
PENALTY = "penalty"

#: The extras the engine reads, with what it does with them.
ENGINE_EXTRAS: dict[str, str] = {
    GATES: "(B, M) gate weights; their mean over a validation or test set goes into the metrics ('gates')",
    PENALTY: "scalar added to the training loss of the batch",
}


@dataclass
class FusionOutput:
    """The output of a fusion network's ``forward(streams, domain)``.

    Attributes:
        representation: ``(B, D)``, the input of the domain's head (and of auxiliary
            losses on the representation).
        extras: named tensors for the loss and the report: the declared :data:`GATES`
            ``(B, M)`` and :data:`PENALTY` (a scalar), and any of the fusion's own; empty
            for fusions without any.
    """

    representation: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)

    @property
    def gates(self) -> Tensor | None:
        """The gate weights ``(B, M)`` (extra :data:`GATES`), or None."""
        return self.extras.get(GATES)

    @property
    def penalty(self) -> Tensor | None:
        """The scalar added to the training loss (extra :data:`PENALTY`), or None."""
        return self.extras.get(PENALTY)


class Fusion(Component):
    """Factory of the network that merges the feature streams.

    :meth:`build` returns an ``nn.Module`` with ``out_dim: int`` whose
    ``forward(streams, domain)`` takes ``streams: dict[str, Tensor (B, k_i)]`` (one entry
    per stream id, in recipe order) and ``domain: str`` (every sample of a batch comes
    from one domain) and returns a :class:`FusionOutput` holding the
    representation ``(B, out_dim)`` and extras (gate weights, penalties) for the loss and
    the report.
    """

    kind: ClassVar[str] = "fusion"

    @abstractmethod
    def build(self, stream_dims: Mapping[str, int], domains: Sequence[str]) -> nn.Module:
        """Create the fusion network for streams of the given dims and these domain ids."""

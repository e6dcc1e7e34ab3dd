"""Loss ``ge2e_contrastive``: the paper's GE2E-style auxiliary loss on the representation."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.loss import Loss

if TYPE_CHECKING:
    from torch import nn

__all__ = ["Ge2eContrastiveLoss"]


class Ge2eContrastiveLoss(Loss):
    """GE2E-style contrastive loss pulling each sample towards its class centroid.

    Auxiliary objective: the engine adds ``weight * loss`` (or ``aux_weight * loss`` when
    the domain sets ``aux_weight``) to the main loss; the module itself returns the
    unweighted value. The module's ``forward(logits (B, C), targets (B,), embedding (B, D))``
    returns a scalar; the logits are not used. Batches need several samples per class (use
    :class:`serkit.data.sampler.BalancedBatchSampler`). See :class:`serkit.nn.ge2e_contrastive.Ge2eContrastive`.
    """

    name: ClassVar[str] = "ge2e_contrastive"

    class Params(ComponentParams):
        weight: float = Field(
            0.1,
            ge=0.0,
            description="Default multiplier of this loss in the total (CE + weight * loss); a "
            "domain's aux_weight overrides it. Paper: English 0.1, German 0.01, French 0.015.",
        )
        min_per_class: int = Field(
            6,
            ge=2,
            description="A class takes part in a batch's loss only if it has at least this many "
            "samples in the batch. Default: the paper's (it keeps classes with more than 5 samples).",
        )
        init_w: float = Field(
            10.0,
            gt=0.0,
            description="Initial scale w of the cosine similarities (kept positive as "
            "w = softplus(w_raw)); GE2E uses 10.",
        )
        init_b: float = Field(
            -5.0,
            description="Initial bias b of the similarities; GE2E uses -5.",
        )
        exclusive_centroid: bool = Field(
            False,
            description="Leave each sample out of its own class centroid, as the original GE2E.",
        )
        reduction: Literal["mean", "sum"] = Field(
            "mean",
            description="Reduction over the kept samples: 'mean' keeps the weight comparable "
            "across batch sizes; 'sum' is the paper's eq. 6 (CE + alpha * sum of the per-sample "
            "losses), which its alpha values (0.1 / 0.01 / 0.015) assume: with 8 samples of 4 "
            "classes kept, 'sum' is 32 x 'mean'. The paper_* recipes use 'sum'.",
        )

    params: Params

    def build(self, embedding_dim: int, n_classes: int) -> nn.Module:
        """A :class:`serkit.nn.ge2e_contrastive.Ge2eContrastive` for ``(B, embedding_dim)`` representations.

        Its learnable ``w_raw`` and ``b`` are optimised with the model.
        """
        from serkit.nn.ge2e_contrastive import Ge2eContrastive

        p = self.params
        return Ge2eContrastive(
            min_per_class=p.min_per_class,
            init_w=p.init_w,
            init_b=p.init_b,
            exclusive_centroid=p.exclusive_centroid,
            reduction=p.reduction,
            embedding_dim=embedding_dim,
        )

"""GE2E-style supervised contrastive loss on the fused representation.

Per batch, the classes (emotions) with at least ``min_per_class`` samples are kept; each
kept sample ``x_ji`` (sample ``i`` of class ``j``, L2-normalised) is scored against every
kept class centroid ``c_k`` with ``S_ji,k = w * cos(x_ji, c_k) + b`` and the loss is the
softmax cross-entropy ``L(x_ji) = -log softmax_k(S_ji,k)[j]`` (Wan et al. 2018, "Generalized
end-to-end loss for speaker verification", used as an auxiliary loss for SER).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from serkit.errors import ModelError

__all__ = ["Ge2eContrastive"]

_NAME = "ge2e_contrastive"


def _inverse_softplus(y: float) -> float:
    """``x`` with ``softplus(x) = log(1 + exp(x)) = y`` for ``y > 0``."""
    return y + math.log(-math.expm1(-y))


class Ge2eContrastive(nn.Module):
    """GE2E softmax loss over the class centroids of a batch.

    ``forward(logits, targets, embedding)`` takes the logits ``(B, C)`` (unused; accepted for
    the common loss signature, may be ``None``), integer targets ``(B,)`` on any device and
    the representation ``(B, D)``, and returns a scalar.

    Steps:

    1. ``x = embedding / ||embedding||`` (row-wise).
    2. Keep the classes with at least ``min_per_class`` samples in the batch; the samples of
       the other classes take no part at all (neither as anchors nor in centroids). With
       fewer than 2 kept classes the loss is an exact zero that stays connected to the graph
       (through ``embedding``, ``w`` and ``b``), so ``backward()`` works and gives zero grads.
    3. Centroids ``c_k`` = mean of the kept ``x`` of class ``k``. With
       ``exclusive_centroid=True`` the own-class centroid of ``x_ji`` is the mean of the
       *other* samples of class ``j`` (as in the original GE2E); kept classes always have
       ``>= min_per_class >= 2`` samples, so it is defined.
    4. ``S_ji,k = w * cos(x_ji, c_k) + b`` with ``w = softplus(w_raw)`` (always > 0, and,
       unlike clamping, never stuck at the bound with a zero gradient) and a free bias ``b``.
    5. ``L(x_ji) = -log softmax_k(S_ji,k)[j]``, reduced over the kept samples by ``"mean"``
       (default: the loss weight means the same thing whatever the batch size) or ``"sum"``
       (the paper's eq. 6, ``CE + alpha * sum_ji L(x_ji)``: with ``N`` kept samples, ``N``
       times the mean, so the paper's alpha values assume ``"sum"``).

    The computation is vectorised over samples (no Python loop). It runs in the promoted
    dtype of the embedding and the parameters (float32 at least).

    Args:
        min_per_class: a class needs at least this many samples in the batch to count
            (``>= 2``). The default is the paper's: it keeps classes with *more than* 5
            samples, i.e. at least 6.
        init_w: initial scale ``w`` (``> 0``); GE2E uses 10.
        init_b: initial bias ``b``; GE2E uses -5.
        exclusive_centroid: leave ``x_ji`` out of its own class centroid.
        reduction: ``"mean"`` or ``"sum"`` over the kept samples.
        embedding_dim: if given, ``D`` is checked in ``forward``.
    """

    def __init__(
        self,
        *,
        min_per_class: int = 6,
        init_w: float = 10.0,
        init_b: float = -5.0,
        exclusive_centroid: bool = False,
        reduction: Literal["mean", "sum"] = "mean",
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(min_per_class, bool) or not isinstance(min_per_class, int) or min_per_class < 2:
            raise ModelError(f"{_NAME}: min_per_class must be an int >= 2; got {min_per_class!r}")
        if not (isinstance(init_w, (int, float)) and math.isfinite(init_w) and init_w > 0):
            raise ModelError(f"{_NAME}: init_w must be a finite number > 0; got {init_w!r}")
        if not (isinstance(init_b, (int, float)) and math.isfinite(init_b)):
            raise ModelError(f"{_NAME}: init_b must be a finite number; got {init_b!r}")
        if reduction not in ("mean", "sum"):
            raise ModelError(f"{_NAME}: reduction must be 'mean' or 'sum'; got {reduction!r}")
        if embedding_dim is not None and (
            isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1
        ):
            raise ModelError(f"{_NAME}: embedding_dim must be a positive int or None; got {embedding_dim!r}")
        self.min_per_class = min_per_class
        self.exclusive_centroid = bool(exclusive_centroid)
        self.reduction = reduction
        self.embedding_dim = embedding_dim
        self.w_raw = nn.Parameter(torch.tensor(_inverse_softplus(float(init_w))))
        self.b = nn.Parameter(torch.tensor(float(init_b)))

    @property
    def w(self) -> Tensor:
        """The positive scale ``softplus(w_raw)`` (a 0-d tensor in the graph)."""
        return F.softplus(self.w_raw)

    def _check(self, logits: Tensor | None, targets: Tensor, embedding: Tensor | None) -> None:
        if embedding is None or embedding.dim() != 2:
            shape = None if embedding is None else tuple(embedding.shape)
            raise ModelError(f"{_NAME}: embedding must be (B, D); got {shape}")
        batch, dim = embedding.shape
        if self.embedding_dim is not None and dim != self.embedding_dim:
            raise ModelError(
                f"{_NAME}: embedding must be (B, {self.embedding_dim}); got shape {tuple(embedding.shape)}"
            )
        if not embedding.is_floating_point():
            raise ModelError(f"{_NAME}: embedding must be a floating-point tensor; got {embedding.dtype}")
        if targets.shape != (batch,):
            raise ModelError(f"{_NAME}: targets must be (B,) = ({batch},); got shape {tuple(targets.shape)}")
        if targets.is_floating_point() or targets.is_complex():
            raise ModelError(f"{_NAME}: targets must be integer class indices; got {targets.dtype}")
        if logits is not None and (logits.dim() != 2 or logits.shape[0] != batch):
            raise ModelError(f"{_NAME}: logits must be ({batch}, C); got shape {tuple(logits.shape)}")

    def forward(self, logits: Tensor | None, targets: Tensor, embedding: Tensor | None = None) -> Tensor:
        """Scalar loss; see the class docstring. ``targets`` may live on another device."""
        self._check(logits, targets, embedding)
        assert embedding is not None
        dtype = torch.promote_types(embedding.dtype, self.b.dtype)
        emb = embedding.to(dtype)
        w = self.w.to(dtype)
        b = self.b.to(dtype)
        targets = targets.to(device=emb.device, dtype=torch.long)

        _, inverse, counts = torch.unique(targets, return_inverse=True, return_counts=True)
        keep = counts >= self.min_per_class  # (C_batch,)
        n_kept = int(keep.sum())
        if n_kept < 2:
            # exact zero, still connected to the embedding and to w, b
            return (emb.sum() + w + b) * 0.0

        kept_sample = keep[inverse]  # (B,)
        x = F.normalize(emb[kept_sample], dim=1)  # (N, D)
        new_index = torch.cumsum(keep.long(), 0) - 1  # batch class -> kept class
        label = new_index[inverse[kept_sample]]  # (N,) in [0, K)
        size = counts[keep].to(dtype)  # (K,)

        sums = x.new_zeros(n_kept, x.shape[1]).index_add(0, label, x)  # (K, D)
        centroids = sums / size[:, None]
        cos = x @ F.normalize(centroids, dim=1).T  # (N, K)
        if self.exclusive_centroid:
            own = (sums[label] - x) / (size[label] - 1.0)[:, None]  # (N, D)
            cos_own = (x * F.normalize(own, dim=1)).sum(dim=1)  # (N,)
            is_own = F.one_hot(label, n_kept).bool()
            cos = torch.where(is_own, cos_own[:, None], cos)

        scores = w * cos + b  # (N, K)
        losses = -torch.log_softmax(scores, dim=1).gather(1, label[:, None]).squeeze(1)  # (N,)
        return losses.mean() if self.reduction == "mean" else losses.sum()

    def extra_repr(self) -> str:
        return (
            f"min_per_class={self.min_per_class}, exclusive_centroid={self.exclusive_centroid}, "
            f"reduction={self.reduction!r}, embedding_dim={self.embedding_dim}"
        )

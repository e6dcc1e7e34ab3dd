"""A learned softmax-weighted sum over stacked layers (SUPERB / s3prl), per domain if asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from serkit.errors import ModelError

__all__ = ["SHARED", "WeightedLayers"]

#: Key of the one weight set shared by every domain (``per_domain`` off).
SHARED = "*"


class WeightedLayers(nn.Module):
    """``sum_j softmax(w)_j * layer_j``, then a sequence network for frame-level input.

    The input holds ``layers`` layers side by side in its last axis (``in_dim = layers *
    width``, layer ``j`` at ``[..., j * width : (j + 1) * width]``, as ``hf_ssl`` and
    ``whisper`` store ``layer: weighted``). The logits ``w`` start at zero, so the initial
    weights are uniform and the output is the mean over layers.

    ``forward(x, lengths=None, domain=None)``:

    - frame-level input: ``x (B, L, in_dim)``, ``lengths (B,)`` -> the weighted sum
      ``(B, L, width)`` -> ``encoder(., lengths)`` -> ``(B, encoder.out_dim)``; padded
      frames never reach anything but the encoder, which masks them.
    - pooled input (``encoder`` None): ``x (B, in_dim)`` (per-layer utterance statistics),
      ``lengths`` None -> ``(B, width)``.

    Args:
        in_dim: ``layers * width``.
        layers: number of stacked layers (>= 1).
        domains: with per-domain weights, the domain ids (one weight set each; a domain
            that is never trained keeps uniform weights); empty or None: one set for all.
        encoder: network over the weighted frames (``forward(x (B, L, width), lengths) ->
            (B, out_dim)``, with ``out_dim``), or None for pooled input.

    Attributes:
        logits: ``nn.ParameterDict`` domain id (or :data:`SHARED`) -> ``(layers,)``.
        out_dim: ``encoder.out_dim``, or ``width`` without an encoder.
        takes_domain: True with per-domain weights (the model passes ``domain=``).
    """

    def __init__(
        self,
        in_dim: int,
        layers: int,
        domains: Sequence[str] | None = None,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ModelError(f"weighted_layers: layers must be a positive int; got {layers!r}")
        if isinstance(in_dim, bool) or not isinstance(in_dim, int) or in_dim < 1 or in_dim % layers:
            raise ModelError(
                f"weighted_layers: in_dim {in_dim!r} is not a multiple of layers={layers} "
                "(the input must hold the layers side by side)"
            )
        keys = list(domains or [])
        if len(set(keys)) != len(keys) or any(not k or "." in k for k in keys):
            raise ModelError(f"weighted_layers: domain ids must be distinct, non-empty and without '.'; got {keys}")
        self.in_dim = in_dim
        self.layers = layers
        self.width = in_dim // layers
        self.takes_domain = bool(keys)
        self.logits = nn.ParameterDict({k: nn.Parameter(torch.zeros(layers)) for k in (keys or [SHARED])})
        self.encoder = encoder
        self.out_dim: int = int(encoder.out_dim) if encoder is not None else self.width  # type: ignore[arg-type]

    def weights(self, domain: str | None = None) -> Tensor:
        """Softmax weights ``(layers,)`` of ``domain`` (the shared set without per-domain weights).

        Raises:
            ModelError: per-domain weights and ``domain`` is None or unknown.
        """
        if not self.takes_domain:
            return torch.softmax(self.logits[SHARED], dim=0)
        if domain is None or domain not in self.logits:
            raise ModelError(
                f"weighted_layers: per-domain layer weights need a known domain; got {domain!r}; "
                f"domains: {', '.join(self.logits)}"
            )
        return torch.softmax(self.logits[domain], dim=0)

    def mix(self, x: Tensor, domain: str | None = None) -> Tensor:
        """The weighted sum over layers: ``(..., layers * width)`` -> ``(..., width)``."""
        if x.shape[-1] != self.in_dim:
            raise ModelError(
                f"weighted_layers: input has last dimension {x.shape[-1]}; expected in_dim={self.in_dim} "
                f"({self.layers} layers x {self.width})"
            )
        w = self.weights(domain).to(x.dtype)
        return torch.einsum("...jd,j->...d", x.reshape(*x.shape[:-1], self.layers, self.width), w)

    def forward(self, x: Tensor, lengths: Tensor | None = None, domain: str | None = None) -> Tensor:
        mixed = self.mix(x, domain)
        if self.encoder is None:
            if x.dim() != 2:
                raise ModelError(
                    f"weighted_layers: without a sequence encoder the input must be pooled vectors (B, "
                    f"{self.in_dim}); got shape {tuple(x.shape)} (frame-level streams need an encoder)"
                )
            return mixed
        if lengths is None or x.dim() != 3:
            raise ModelError(
                f"weighted_layers: the sequence encoder needs frame-level input (B, L, {self.in_dim}) and "
                f"lengths; got shape {tuple(x.shape)}" + ("" if lengths is not None else " without lengths")
            )
        return self.encoder(mixed, lengths)

    def summary(self) -> dict[str, Any]:
        """``{"layer_weights": {domain or "*": [softmax weight per layer]}}`` (JSON-serialisable)."""
        with torch.no_grad():
            return {
                "layer_weights": {
                    k: [round(float(v), 6) for v in torch.softmax(p.detach().float(), dim=0).cpu()]
                    for k, p in self.logits.items()
                }
            }

    def extra_repr(self) -> str:
        per = f", domains={list(self.logits)}" if self.takes_domain else ""
        return f"in_dim={self.in_dim}, layers={self.layers}, width={self.width}{per}"

"""The assembled model: per-stream encoders -> fusion -> per-domain heads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from serkit.engine.data import Batch, StreamInfo
from serkit.errors import ModelError
from serkit.registry import Registry

__all__ = ["SerModel", "build_model"]


class SerModel(nn.Module):
    """Speech emotion model over cached feature streams.

    Args:
        streams: stream infos in recipe order.
        encoders: stream id -> encoder network (sequence streams only).
        fusion: fusion network (``forward(dict[str, (B, k_i)], domain) -> FusionOutput``).
        heads: domain id -> classification tower ``(B, D) -> (B, C_domain)``.
        labels: domain id -> label names (index order of the head's outputs).
    """

    def __init__(
        self,
        streams: Sequence[StreamInfo],
        encoders: Mapping[str, nn.Module],
        fusion: nn.Module,
        heads: Mapping[str, nn.Module],
        labels: Mapping[str, Sequence[str]],
    ) -> None:
        super().__init__()
        self.stream_infos = list(streams)
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.heads = nn.ModuleDict(dict(heads))
        self.labels = {d: list(v) for d, v in labels.items()}

    def encode(self, streams: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Stream inputs -> one vector per stream: ``{id: (B, k_i)}``."""
        out: dict[str, torch.Tensor] = {}
        for info in self.stream_infos:
            value = streams[info.name]
            if info.name in self.encoders:
                x, lengths = value
                out[info.name] = self.encoders[info.name](x, lengths)
            else:
                out[info.name] = value
        return out

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, C_domain)`` and the fusion output for one domain's batch."""
        if batch.domain not in self.heads:
            raise ModelError(f"no head for domain {batch.domain!r}; heads: {', '.join(self.heads)}")
        fused = self.fusion(self.encode(batch.streams), batch.domain)
        return self.heads[batch.domain](fused.representation), fused


def build_model(
    recipe: Any,
    registry: Registry,
    streams: Sequence[StreamInfo],
    labels: Mapping[str, Sequence[str]],
) -> SerModel:
    """Create encoders, fusion and heads from a validated recipe."""
    encoders: dict[str, nn.Module] = {}
    dims: dict[str, int] = {}
    for info in streams:
        spec = recipe.features[info.name]
        if info.output == "sequence":
            enc = registry.create("encoder", spec.encoder).build(info.dim)
            encoders[info.name] = enc
            dims[info.name] = int(enc.out_dim)
        else:
            dims[info.name] = info.dim
    domains = list(labels)
    fusion = registry.create("fusion", recipe.fusion).build(dims, domains)
    heads: dict[str, nn.Module] = {}
    for d in domains:
        head_spec = recipe.heads.get(d) or recipe.heads["default"]
        heads[d] = registry.create("head", head_spec).build(int(fusion.out_dim), len(labels[d]))
    return SerModel(streams, encoders, fusion, heads, labels)

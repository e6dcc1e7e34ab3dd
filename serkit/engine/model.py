"""The assembled model: per-stream encoders -> fusion -> per-domain (or shared) heads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from serkit.engine.data import Batch, StreamInfo
from serkit.errors import ModelError
from serkit.interfaces.encoder import StreamContext
from serkit.registry import Registry

__all__ = ["SerModel", "build_model", "head_plan"]


class SerModel(nn.Module):
    """Speech emotion model over cached feature streams.

    Args:
        streams: stream infos in recipe order.
        encoders: stream id -> encoder network (sequence streams and fine-tuned extractors).
        fusion: fusion network (``forward(dict[str, (B, k_i)], domain) -> FusionOutput``).
        heads: head id -> classification tower ``(B, D) -> (B, C_head)``.
        head_of: domain id -> head id (several domains may share one head).
        labels: domain id -> label names of its head's outputs (index order).
        norms: optional feature standardisation applied before the encoders: key -> stream
            id -> :class:`serkit.nn.standardize.Standardize`, where the key is ``"*"`` (one
            set for every domain) or a domain id.
        input_dropout: dropout probability on every stream's vector before the fusion
            (training only).
        augment: applied to sequence inputs ``(x (B, L, d), lengths)`` after
            standardisation, in training mode only (e.g. :class:`serkit.nn.augment.SequenceMasking`).
    """

    def __init__(
        self,
        streams: Sequence[StreamInfo],
        encoders: Mapping[str, nn.Module],
        fusion: nn.Module,
        heads: Mapping[str, nn.Module],
        head_of: Mapping[str, str],
        labels: Mapping[str, Sequence[str]],
        norms: Mapping[str, Mapping[str, nn.Module]] | None = None,
        input_dropout: float = 0.0,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.augment = augment
        self.stream_infos = list(streams)
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.heads = nn.ModuleDict(dict(heads))
        self.head_of = dict(head_of)
        self.labels = {d: list(v) for d, v in labels.items()}
        self.norms = nn.ModuleDict({k: nn.ModuleDict(dict(v)) for k, v in (norms or {}).items()})

    def encode(self, streams: Mapping[str, Any], domain: str | None = None) -> dict[str, torch.Tensor]:
        """Stream inputs -> one vector per stream: ``{id: (B, k_i)}``.

        ``domain`` picks the standardisation statistics when they are per domain, and is
        passed to encoders whose network has ``takes_domain`` (per-domain layer weights)."""
        out: dict[str, torch.Tensor] = {}
        norms = self._norms_of(domain)
        for info in self.stream_infos:
            value = streams[info.name]
            if info.name in norms:
                norm = norms[info.name]
                value = (norm(value[0]), value[1]) if isinstance(value, tuple) else norm(value)
            if self.augment is not None and self.training and isinstance(value, tuple):
                value = (self.augment(value[0], value[1]), value[1])
            if info.name in self.encoders:
                enc = self.encoders[info.name]
                x, lengths = value if isinstance(value, tuple) else (value, None)  # vector streams: no lengths
                kwargs = {"domain": domain} if getattr(enc, "takes_domain", False) else {}
                out[info.name] = enc(x, lengths, **kwargs)
            else:
                out[info.name] = value
        return out

    def _norms_of(self, domain: str | None) -> Mapping[str, nn.Module]:
        if not len(self.norms):
            return {}
        if "*" in self.norms:
            return self.norms["*"]
        if domain is None or domain not in self.norms:
            raise ModelError(
                f"per-domain feature standardisation needs a known domain; got {domain!r}; "
                f"domains: {', '.join(self.norms)}"
            )
        return self.norms[domain]

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, C)`` of the batch's domain head, and the fusion output."""
        head = self.head_of.get(batch.domain)
        if head is None:
            raise ModelError(f"no head for domain {batch.domain!r}; domains: {', '.join(self.head_of)}")
        return self.classify(self.encode(batch.streams, batch.domain), batch.domain)

    def classify(self, vectors: Mapping[str, torch.Tensor], domain: str) -> tuple[torch.Tensor, Any]:
        """Stream vectors ``{id: (B, k_i)}`` -> the domain head's logits ``(B, C)`` and the fusion output.

        Input dropout (training only) is applied to every vector first."""
        head = self.head_of.get(domain)
        if head is None:
            raise ModelError(f"no head for domain {domain!r}; domains: {', '.join(self.head_of)}")
        fused = self.fusion({k: self.input_dropout(v) for k, v in vectors.items()}, domain)
        return self.heads[head](fused.representation), fused


def head_plan(recipe: Any, domain_labels: Mapping[str, Sequence[str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Which head each domain uses and each head's label list (union of its domains' labels).

    Returns:
        ``(head_of, head_labels)``: domain id -> head id, head id -> sorted labels.
    """
    head_of = {d: (recipe.domains[d].head or d) for d in domain_labels}
    head_labels: dict[str, list[str]] = {}
    for d, h in head_of.items():
        head_labels[h] = sorted(set(head_labels.get(h, [])) | set(domain_labels[d]))
    return head_of, head_labels


def build_model(
    recipe: Any,
    registry: Registry,
    streams: Sequence[StreamInfo],
    labels: Mapping[str, Sequence[str]],
    head_of: Mapping[str, str] | None = None,
    extractors: Mapping[str, Any] | None = None,
) -> SerModel:
    """Create encoders, fusion and heads from a validated recipe.

    Args:
        labels: domain id -> label list of the domain's head.
        head_of: domain id -> head id (default: each domain its own head).
        extractors: stream id -> extractor instance; fine-tuned (``trainable``) extractors
            provide their own network in place of an encoder; the others' ``n_layers``
            reaches layer-aware encoders (:class:`serkit.interfaces.encoder.StreamContext`).
    """
    encoders: dict[str, nn.Module] = {}
    dims: dict[str, int] = {}
    domains = list(labels)
    for info in streams:
        spec = recipe.features[info.name]
        ext = (extractors or {}).get(info.name)
        if ext is not None and getattr(ext, "trainable", False):
            enc = ext.build_trainable()
            encoders[info.name] = enc
            dims[info.name] = int(enc.out_dim)
        elif info.output == "sequence" or spec.encoder is not None:  # vector streams: encoders with accepts_vectors
            layers = int(getattr(ext, "n_layers", 1)) if ext is not None else 1
            context = StreamContext(info.output, layers, tuple(domains), registry)
            enc = registry.create("encoder", spec.encoder).build_stream(info.dim, context)
            encoders[info.name] = enc
            dims[info.name] = int(enc.out_dim)
        else:
            dims[info.name] = info.dim
    head_of = dict(head_of or {d: d for d in domains})
    fusion = registry.create("fusion", recipe.fusion).build(dims, domains)
    heads: dict[str, nn.Module] = {}
    for d in domains:
        h = head_of[d]
        if h in heads:
            continue
        head_spec = recipe.heads.get(h) or recipe.heads["default"]
        heads[h] = registry.create("head", head_spec).build(int(fusion.out_dim), len(labels[d]))
    norms: dict[str, dict[str, nn.Module]] = {}
    mode = getattr(getattr(recipe, "data", None), "standardize", "none")
    if mode != "none":
        from serkit.nn.standardize import Standardize

        trainable = {s.name for s in streams if getattr((extractors or {}).get(s.name), "trainable", False)}
        for key in ["*"] if mode == "global" else domains:
            clip = getattr(recipe.data, "standardize_clip", None)
            norms[key] = {s.name: Standardize(s.dim, clip=clip) for s in streams if s.name not in trainable}
    train = getattr(recipe, "train", None)
    augment = None
    masking = getattr(train, "mask", None)
    if masking is not None:
        from serkit.nn.augment import SequenceMasking

        augment = SequenceMasking(**masking.model_dump())
    dropout = float(getattr(train, "input_dropout", 0.0))
    return SerModel(streams, encoders, fusion, heads, head_of, labels, norms, dropout, augment)

"""Encoder ``weighted_layers``: a learned softmax-weighted sum over an SSL model's layers (SUPERB's probe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from serkit.errors import ModelError, SerkitError
from serkit.interfaces.base import ComponentParams
from serkit.interfaces.encoder import Encoder, StreamContext

if TYPE_CHECKING:
    from torch import nn

__all__ = ["WeightedLayersEncoder"]

#: The sequence encoder used after the weighted sum of frame-level streams by default.
DEFAULT_SEQUENCE_ENCODER: dict[str, Any] = {"type": "mean_pool"}


class WeightedLayersEncoder(Encoder):
    """Learnable softmax weights over stored layers (uniform at start), optionally one set per domain.

    For streams that hold every hidden state of an SSL model side by side (``hf_ssl`` or
    ``whisper`` with ``layer: weighted``):

    - pooled streams (``pool: mean | mean_std``, one vector per utterance): ``(B,
      layers * width)`` -> the weighted sum ``(B, width)``;
    - frame-level streams (``pool: none``): ``(B, L, layers * width)`` -> the weighted sum
      per frame ``(B, L, width)`` -> ``sequence_encoder`` (default ``mean_pool``).

    With ``per_domain: true`` every domain learns its own weights: which depth each
    language uses. The learned weights are written to ``results.json`` (``layer_weights``
    per domain) and plotted in the report. See :class:`serkit.nn.layer_weights.WeightedLayers`.
    """

    name: ClassVar[str] = "weighted_layers"
    accepts_vectors: ClassVar[bool] = True

    class Params(ComponentParams):
        per_domain: bool = Field(
            False,
            description="One set of layer weights per domain (a domain's batches use and train its own); "
            "false: one set shared by all domains.",
        )
        layers: int | None = Field(
            None,
            ge=1,
            description="Number of layers stored side by side in the features; None: what the extractor "
            "declares (n_layers: every hidden state with layer: weighted).",
        )
        sequence_encoder: dict[str, Any] | None = Field(
            None,
            description="Frame-level streams only: the encoder applied to the weighted frames, any sequence "
            "encoder spec such as {type: cnn_bilstm_attn, lstm_hidden: 64}; None: {type: mean_pool}. "
            "Pooled streams take none.",
        )

        @field_validator("sequence_encoder")
        @classmethod
        def _check_nested(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
            if v is None:
                return v
            name = v.get("type")
            if not isinstance(name, str) or not name:
                raise ValueError("sequence_encoder needs a 'type' (an encoder name, e.g. mean_pool)")
            if name == "weighted_layers":
                raise ValueError("sequence_encoder cannot be weighted_layers itself")
            return v

    params: Params

    def build(self, in_dim: int) -> nn.Module:
        """A frame-level network for ``in_dim = layers * width`` inputs (``layers`` must be set)."""
        return self.build_stream(in_dim, StreamContext(output="sequence", layers=self.params.layers or 1))

    def build_stream(self, in_dim: int, context: StreamContext) -> nn.Module:
        """A :class:`serkit.nn.layer_weights.WeightedLayers` for the stream.

        Raises:
            ModelError: a single layer, ``in_dim`` not a multiple of the layer count, or a
                ``sequence_encoder`` on a pooled stream.
        """
        from serkit.nn.layer_weights import WeightedLayers

        layers = self.params.layers or context.layers
        problems = self._layer_problems(layers, in_dim, "the stream")
        if context.output != "sequence" and self.params.sequence_encoder is not None:
            problems.append(self._vector_with_sequence_encoder("the stream"))
        if problems:
            raise ModelError("encoder 'weighted_layers': " + "; ".join(problems))
        inner = None
        if context.output == "sequence":
            registry = context.registry
            if registry is None:
                from serkit.plugins import get_registry

                registry = get_registry()
            spec = self.params.sequence_encoder or DEFAULT_SEQUENCE_ENCODER
            inner = registry.create("encoder", dict(spec)).build(in_dim // layers)
        domains = list(context.domains) if self.params.per_domain else None
        return WeightedLayers(in_dim, layers, domains, inner)

    def check_stream(self, extractor: Any, registry: Any) -> list[str]:
        """Problems of this encoder on ``extractor``'s stream (reported by recipe validation)."""
        problems: list[str] = []
        what = f"extractor '{extractor.name}'"
        spec = self.params.sequence_encoder
        if spec is not None:
            try:
                registry.create("encoder", dict(spec))
            except (SerkitError, ValueError) as err:
                problems.append(f"sequence_encoder: {err}")
        try:
            output, dim = extractor.output, int(extractor.dim)
            layers = self.params.layers or int(extractor.n_layers)
        except SerkitError:  # e.g. a hub checkpoint not downloaded yet: checked when the model is built
            return problems
        if output != "sequence" and spec is not None:
            problems.append(self._vector_with_sequence_encoder(what))
        return problems + self._layer_problems(layers, dim, what)

    def _layer_problems(self, layers: int, dim: int, what: str) -> list[str]:
        if layers < 2:
            return [
                f"{what} stores a single layer; weighted_layers needs several side by side: set "
                "'layer: weighted' on the extractor (hf_ssl, whisper), or 'layers: N' when its features "
                "hold N layers"
            ]
        if dim % layers:
            return [f"{what} has dim {dim}, not a multiple of layers={layers}"]
        return []

    @staticmethod
    def _vector_with_sequence_encoder(what: str) -> str:
        return (
            f"{what} stores one vector per utterance (pool: mean | mean_std); sequence_encoder is for "
            "frame-level streams (pool: none): remove it"
        )

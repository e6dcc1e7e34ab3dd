"""Encoder ``cnn_bilstm_attn``: the paper's CNN -> BiLSTM -> attention sequence summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.encoder import Encoder

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CnnBiLstmAttnEncoder"]


class CnnBiLstmAttnEncoder(Encoder):
    """Parallel 1-D convolutions, a stacked BiLSTM and attention pooling (the paper's encoder).

    Maps ``(B, L, d)`` + lengths to ``(B, attention_dim)``; see
    :class:`serkit.nn.CnnBiLstmAttn`. The defaults are the paper's settings for wav2vec
    and Allosaurus features; for MFCC it uses ``channels=32, kernel_sizes=[3],
    lstm_hidden=64, lstm_layers=2``.
    """

    name: ClassVar[str] = "cnn_bilstm_attn"

    class Params(ComponentParams):
        channels: int = Field(64, gt=0, description="Convolution kernels per kernel size.")
        kernel_sizes: tuple[int, ...] = Field(
            (3, 5),
            description="Odd kernel widths in frames; one convolution per width, outputs "
            "concatenated.",
        )
        lstm_hidden: int = Field(128, gt=0, description="Hidden size of each LSTM direction.")
        lstm_layers: int = Field(1, gt=0, description="Number of stacked BiLSTM layers.")
        attention_dim: int = Field(
            256, gt=0, description="Width of the attention projections and of the output."
        )
        dropout: float = Field(
            0.1, ge=0.0, lt=1.0, description="Dropout after the convolutions and the BiLSTM."
        )

        lstm_impl: Literal["auto", "padded", "packed"] = Field(
            "auto",
            description="How the BiLSTM runs over variable-length batches; all give the same "
            "numbers. 'padded': each direction over the padded batch, the backward one over "
            "each sequence reversed within its length (fast on CPU); 'packed': "
            "pack_padded_sequence (cuDNN's native path); 'auto': padded on CPU, packed on CUDA.",
        )
        attention_scale: Literal["attention_dim", "lstm_state"] = Field(
            "attention_dim",
            description="What the attention logits q K^T are divided by the square root of: "
            "'attention_dim' (the transformer convention), or 'lstm_state', the paper's k (eq. 2): "
            "the size of the BiLSTM state the query comes from, 2 x lstm_hidden. The paper_* "
            "recipes use 'lstm_state'.",
        )

        @field_validator("kernel_sizes")
        @classmethod
        def _odd_kernels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
            if not value:
                raise ValueError("kernel_sizes must hold at least one kernel width")
            bad = [k for k in value if k < 1 or k % 2 == 0]
            if bad:
                raise ValueError(
                    "kernel_sizes must be positive odd integers (same padding keeps the "
                    f"sequence length); got {list(value)}"
                )
            return value

    params: Params

    def build(self, in_dim: int) -> nn.Module:
        """A :class:`serkit.nn.CnnBiLstmAttn` for ``in_dim``-dimensional frames."""
        from serkit.nn.cnn_bilstm_attn import CnnBiLstmAttn

        p = self.params
        return CnnBiLstmAttn(
            in_dim,
            channels=p.channels,
            kernel_sizes=p.kernel_sizes,
            lstm_hidden=p.lstm_hidden,
            lstm_layers=p.lstm_layers,
            attention_dim=p.attention_dim,
            dropout=p.dropout,
            lstm_impl=p.lstm_impl,
            attention_scale=p.attention_scale,
        )

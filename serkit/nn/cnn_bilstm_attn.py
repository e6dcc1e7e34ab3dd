"""The paper's sequence encoder: parallel 1-D convolutions -> BiLSTM -> attention pooling."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from serkit.errors import ModelError
from serkit.nn.bilstm import choose_impl, run_bilstm
from serkit.nn.masking import check_lengths, lengths_to_mask, masked_softmax, zero_padding

__all__ = ["CnnBiLstmAttn"]

#: What the attention logits can be scaled by: ``sqrt(attention_dim)`` or ``sqrt(2 * lstm_hidden)``.
_SCALES = ("attention_dim", "lstm_state")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"cnn_bilstm_attn: {name} must be a positive int; got {value!r}")
    return value


class CnnBiLstmAttn(nn.Module):
    """Summarise a padded feature sequence into one vector (Wang et al. 2022, section 2).

    ``forward(x, lengths)``: ``x: (B, L, in_dim)`` float, ``lengths: (B,)`` integer ->
    ``(B, attention_dim)``. Steps:

    1. padded frames are set to 0 (so their content, even NaN, cannot leak in);
    2. one ``Conv1d`` per kernel size over time (``channels`` kernels, same padding,
       ReLU), concatenated: ``(B, L, channels * len(kernel_sizes))``; dropout;
    3. a stacked bidirectional LSTM over the valid frames only (exactly as over packed
       sequences; see :func:`serkit.nn.bilstm.run_bilstm` for the fast padded path):
       outputs ``H: (B, L, 2 * lstm_hidden)``; the query source is the top layer's final
       forward and final backward states concatenated, ``(B, 2 * lstm_hidden)``; dropout
       on both;
    4. scaled dot-product attention: ``q = W_Q h``, ``K = H W_K``, ``V = H W_V`` (all to
       ``attention_dim``, no bias), weights ``softmax(q K^T / sqrt(s))`` over the valid
       frames only, output ``weights @ V``. ``s`` is ``attention_dim`` (the transformer
       convention, the default) or, with ``attention_scale="lstm_state"``, the paper's
       ``k`` (eq. 2): the size of the BiLSTM state ``h`` that ``W_Q`` projects,
       ``2 * lstm_hidden``.

    Padding never changes a row's output: with the same weights, a sequence alone and the
    same sequence padded with anything in a larger batch give the same vector (eval mode).

    Args:
        in_dim: feature dimension ``d``.
        channels: convolution kernels per kernel size.
        kernel_sizes: odd kernel widths (in frames), one convolution each.
        lstm_hidden: hidden size of each LSTM direction.
        lstm_layers: stacked BiLSTM layers (dropout between them when > 1).
        attention_dim: width of the projections and of the output.
        dropout: dropout probability in ``[0, 1)``.
        lstm_impl: ``"auto"`` (padded on CPU, packed on CUDA), ``"padded"`` or
            ``"packed"``; all three give the same numbers.
        attention_scale: ``"attention_dim"`` or ``"lstm_state"`` (the paper's): what the
            attention logits are scaled by (see step 4).
    """

    def __init__(
        self,
        in_dim: int,
        channels: int = 64,
        kernel_sizes: Sequence[int] = (3, 5),
        lstm_hidden: int = 128,
        lstm_layers: int = 1,
        attention_dim: int = 256,
        dropout: float = 0.1,
        lstm_impl: str = "auto",
        attention_scale: str = "attention_dim",
    ) -> None:
        super().__init__()
        self.in_dim = _positive_int("in_dim", in_dim)
        _positive_int("channels", channels)
        _positive_int("lstm_hidden", lstm_hidden)
        _positive_int("lstm_layers", lstm_layers)
        _positive_int("attention_dim", attention_dim)
        kernel_sizes = tuple(kernel_sizes)
        if not kernel_sizes:
            raise ModelError("cnn_bilstm_attn: kernel_sizes must not be empty")
        for k in kernel_sizes:
            _positive_int("each kernel size", k)
            if k % 2 == 0:
                raise ModelError(
                    f"cnn_bilstm_attn: kernel sizes must be odd (same padding); got {k}"
                )
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"cnn_bilstm_attn: dropout must be in [0, 1); got {dropout!r}")
        choose_impl(lstm_impl, torch.device("cpu"))  # validates the name
        if attention_scale not in _SCALES:
            raise ModelError(
                f"cnn_bilstm_attn: attention_scale must be one of {', '.join(_SCALES)}; got {attention_scale!r}"
            )
        self.attention_scale = attention_scale
        self.lstm_impl = lstm_impl
        self.kernel_sizes = kernel_sizes
        self.convs = nn.ModuleList(
            nn.Conv1d(in_dim, channels, kernel_size=k, padding=k // 2) for k in kernel_sizes
        )
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            input_size=channels * len(kernel_sizes),
            hidden_size=lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.w_q = nn.Linear(2 * lstm_hidden, attention_dim, bias=False)
        self.w_k = nn.Linear(2 * lstm_hidden, attention_dim, bias=False)
        self.w_v = nn.Linear(2 * lstm_hidden, attention_dim, bias=False)
        self.scale = 1.0 / math.sqrt(attention_dim if attention_scale == "attention_dim" else 2 * lstm_hidden)
        self.out_dim: int = attention_dim

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        weights, values = self._attend(x, lengths)
        return torch.einsum("bl,bld->bd", weights, values)

    def attention_weights(self, x: Tensor, lengths: Tensor) -> Tensor:
        """The attention weights ``(B, L)`` over frames (0 on padding, rows sum to 1)."""
        return self._attend(x, lengths)[0]

    def _attend(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        check_lengths(x, lengths, "cnn_bilstm_attn", self.in_dim)
        max_len = x.shape[1]
        mask = lengths_to_mask(lengths.to(x.device), max_len)  # (B, L)
        x = zero_padding(x, mask).transpose(1, 2)  # (B, in_dim, L)
        conv = torch.cat([torch.relu(c(x)) for c in self.convs], dim=1)  # (B, C*K, L)
        conv = self.dropout(conv.transpose(1, 2))  # (B, L, C*K)

        hidden, last = run_bilstm(self.lstm, conv, lengths.to(x.device), mask, self.lstm_impl)  # (B, L, 2H), (B, 2H)
        hidden, last = self.dropout(hidden), self.dropout(last)

        q = self.w_q(last)  # (B, A)
        keys = self.w_k(hidden)  # (B, L, A)
        values = self.w_v(hidden)  # (B, L, A)
        scores = torch.einsum("bd,bld->bl", q, keys) * self.scale  # (B, L)
        return masked_softmax(scores, mask), values

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, kernel_sizes={self.kernel_sizes}, out_dim={self.out_dim}, "
            f"attention_scale={self.attention_scale!r}"
        )

"""The GE2E speaker encoder as a trainable stream network (fine-tuning, as in the paper)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from serkit.nn.masking import lengths_to_mask

__all__ = ["Ge2eEncoderNet"]


class Ge2eEncoderNet(nn.Module):
    """resemblyzer's 3-layer LSTM + linear + ReLU, applied to cached mel windows.

    Input: the partial windows of each utterance, flattened: ``x (B, P, 160 * 40)`` with
    ``lengths (B,)`` valid windows per utterance. Each window goes through the LSTM; the
    final hidden state -> linear -> ReLU -> L2 norm gives a partial embedding; the
    utterance d-vector is the L2-normalised mean of its valid partial embeddings:
    ``(B, 256)``, the same numbers as the frozen extractor gives before any training.

    Args:
        lstm: the pretrained LSTM (copied, so the source encoder is untouched).
        linear: the pretrained output projection (copied).
        n_frames: frames per window (160).
        n_mels: mel channels (40).
    """

    def __init__(self, lstm: nn.LSTM, linear: nn.Linear, n_frames: int = 160, n_mels: int = 40) -> None:
        super().__init__()
        self.lstm = copy.deepcopy(lstm)
        self.linear = copy.deepcopy(linear)
        self.n_frames = n_frames
        self.n_mels = n_mels
        self.out_dim = int(linear.out_features)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``x (B, P, n_frames * n_mels)``, ``lengths (B,)`` -> unit-norm ``(B, out_dim)``."""
        b, p, d = x.shape
        if d != self.n_frames * self.n_mels:
            raise ValueError(f"Ge2eEncoderNet: expected windows of {self.n_frames * self.n_mels} values, got {d}")
        mask = lengths_to_mask(lengths.to(x.device), p)  # (B, P) bool
        windows = x[mask].reshape(-1, self.n_frames, self.n_mels)  # (N, 160, 40)
        _, (hidden, _) = self.lstm(windows)
        emb = torch.relu(self.linear(hidden[-1]))  # (N, 256)
        emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
        full = x.new_zeros(b, p, self.out_dim)
        full[mask] = emb
        mean = full.sum(dim=1) / lengths.to(x.device).clamp_min(1).unsqueeze(1).to(x.dtype)
        return mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)

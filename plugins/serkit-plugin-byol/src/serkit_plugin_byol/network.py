"""The BYOL-A audio encoder (AudioNTT2020) and its log-mel front end, as plain torch modules.

BYOL-A (Niizumi et al., 2021) trains a small convolutional encoder on log-mel
spectrograms with "bootstrap your own latent"; BYOL-S (Elbanna et al., 2022) trains the
same encoder on speech. The encoder, "AudioNTT2020":

- input: a normalised log-mel spectrogram, 64 mel bands, 10 ms frames;
- three blocks of [3x3 conv (64 channels, padding 1) -> batch norm -> ReLU -> 2x2 max pool],
  which divide both the mel and the time axis by 8;
- each remaining frame (64 channels x n_mels/8 bands, flattened band-major) goes through
  ``Linear(64 * n_mels / 8, d) -> ReLU -> Dropout(0.3) -> Linear(d, d) -> ReLU``;
- the utterance embedding is ``max over time + mean over time`` of those frames (``d``).

The parameter names (``features.{0,1,4,5,8,9}.*``, ``fc.{0,3}.*``) are those of the
published BYOL-A checkpoints, so their state dicts load as they are.

This module imports torch at import time; serkit components import it only inside their
methods.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

__all__ = ["CHANNELS", "DOWNSAMPLE", "AudioNTT2020", "ByolEncoderNet", "LogMelFrontEnd"]

#: Channels of every conv block, and the factor by which the three blocks shrink each axis.
CHANNELS = 64
DOWNSAMPLE = 8


def _frame_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean ``(B, max_len)``, True at valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class LogMelFrontEnd(nn.Module):
    """Waveform -> log-mel spectrogram, BYOL-A's front end.

    Power spectrogram (Hann window of ``win_length``, centred frames with reflect padding,
    every ``hop_length`` samples), HTK mel filter bank without area normalisation, then
    ``log(mel + eps)`` with ``eps`` the float32 machine epsilon.

    ``forward(wav)``: float ``(n_samples,)`` -> ``(1 + n_samples // hop_length, n_mels)``.

    Args:
        mel_fb: mel filter bank ``(n_mels, n_fft // 2 + 1)``.
        n_fft, win_length, hop_length: STFT sizes in samples.
    """

    def __init__(self, mel_fb: Tensor, n_fft: int, win_length: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.register_buffer("mel_fb", mel_fb.float(), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        spec = torch.stft(
            wav,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # (F, T)
        power = spec.real.square() + spec.imag.square()
        mel = self.mel_fb @ power  # (n_mels, T)
        return (mel + torch.finfo(torch.float32).eps).log().T.contiguous()  # (T, n_mels)


class AudioNTT2020(nn.Module):
    """BYOL-A's AudioNTT2020 encoder with padding masks.

    ``frames(x, lengths)``: normalised log-mels ``x (B, T, n_mels)`` (frames ``>= lengths``
    are padding and never influence the result) -> frame embeddings ``(B, T // 8, d)`` and
    their lengths ``(B,)`` = ``lengths // 8``. After every pooling, the frames beyond an
    item's own length are reset to zero, which is what the next convolution's zero
    padding sees when the item runs alone: a padded batch gives each item's own numbers.

    ``forward(x, lengths)`` -> ``(B, d)``: max + mean of the valid frame embeddings.

    Args:
        n_mels: mel bands of the input (a multiple of 8).
        d: embedding size (512, 1024 or 2048 for the published checkpoints).
    """

    def __init__(self, n_mels: int = 64, d: int = 2048) -> None:
        super().__init__()
        if n_mels % DOWNSAMPLE:
            raise ValueError(f"AudioNTT2020: n_mels must be a multiple of {DOWNSAMPLE}; got {n_mels}")
        self.n_mels = n_mels
        self.d = d
        layers: list[nn.Module] = []
        for block in range(3):
            layers += [
                nn.Conv2d(1 if block == 0 else CHANNELS, CHANNELS, 3, stride=1, padding=1),
                nn.BatchNorm2d(CHANNELS),
                nn.ReLU(),
                nn.MaxPool2d(2, stride=2),
            ]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(CHANNELS * (n_mels // DOWNSAMPLE), d),
            nn.ReLU(),
            nn.Dropout(p=0.3),
            nn.Linear(d, d),
            nn.ReLU(),
        )

    def frames(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Frame embeddings ``(B, T // 8, d)`` and their lengths ``(B,)``."""
        if x.dim() != 3 or x.shape[2] != self.n_mels:
            raise ValueError(f"AudioNTT2020: x must be (B, T, {self.n_mels}); got shape {tuple(x.shape)}")
        lengths = lengths.to(x.device)
        h = x.masked_fill(~_frame_mask(lengths, x.shape[1])[:, :, None], 0.0)
        h = h.transpose(1, 2).unsqueeze(1)  # (B, 1, n_mels, T)
        valid = lengths
        for block in range(3):
            conv, bn, relu, pool = self.features[4 * block : 4 * block + 4]
            h = pool(relu(bn(conv(h))))  # (B, 64, M / 2^k, T / 2^k)
            valid = valid // 2
            h = h.masked_fill(~_frame_mask(valid, h.shape[-1])[:, None, None, :], 0.0)
        b, c, m, t = h.shape
        h = h.permute(0, 3, 2, 1).reshape(b, t, m * c)  # (B, T', n_mels/8 * 64), band-major
        return self.fc(h), valid

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        emb, valid = self.frames(x, lengths)
        return pool_max_mean(emb, valid)


def pool_max_mean(emb: Tensor, lengths: Tensor) -> Tensor:
    """BYOL-A's temporal pooling: ``max_t + mean_t`` of the valid frames, ``(B, T, d) -> (B, d)``."""
    mask = _frame_mask(lengths.to(emb.device), emb.shape[1])[:, :, None]
    peak = emb.masked_fill(~mask, float("-inf")).amax(dim=1)
    mean = emb.masked_fill(~mask, 0.0).sum(dim=1) / lengths.to(emb.device).clamp_min(1)[:, None].to(emb.dtype)
    return peak + mean


class ByolEncoderNet(nn.Module):
    """A BYOL encoder fine-tuned with the emotion model (serkit stream network).

    ``forward(x, lengths)``: the cached normalised log-mels ``x (B, T, n_mels)``,
    ``lengths (B,)`` -> ``(B, d)`` embeddings, the numbers the frozen extractor gives before
    any training. Batch-norm layers stay in eval mode (their running statistics are not
    updated by the small, padded emotion batches); dropout follows ``train()``.

    Args:
        encoder: the loaded encoder (copied; the source is untouched).
    """

    def __init__(self, encoder: AudioNTT2020) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(encoder)
        self.out_dim = int(encoder.d)

    def train(self, mode: bool = True) -> ByolEncoderNet:
        super().train(mode)
        for module in self.encoder.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        short = lengths < DOWNSAMPLE
        if bool(short.any()):
            raise ValueError(f"ByolEncoderNet: every item needs >= {DOWNSAMPLE} frames; got lengths {lengths.tolist()}")
        return self.encoder(x, lengths)

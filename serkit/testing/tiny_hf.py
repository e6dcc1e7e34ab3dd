"""Tiny random transformers speech checkpoints written to a folder (no download), for tests and benchmarks.

``save_tiny_whisper`` writes a Whisper checkpoint with short input windows (3 s by
default: ``max_source_positions = 50 * window``), so that chunking is exercised on short
audio; ``save_tiny_ssl`` a wav2vec2 / HuBERT / WavLM checkpoint. Both also write the
matching feature extractor config (``preprocessor_config.json``) and need ``transformers``
and ``torch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SSL_MODELS", "TINY_SSL_CONFIG", "save_tiny_ssl", "save_tiny_whisper"]

#: Config fields of the tiny SSL checkpoints: hidden 32, 2 layers, CNN strides 5, 4, 2 (40 samples a frame),
#: kernels 10, 3, 3 (receptive field 60 samples).
TINY_SSL_CONFIG: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "conv_dim": (32, 32, 32),
    "conv_kernel": (10, 3, 3),
    "conv_stride": (5, 4, 2),
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
#: model type -> (config class, model class) in transformers.
SSL_MODELS: dict[str, tuple[str, str]] = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
    "hubert": ("HubertConfig", "HubertModel"),
    "wavlm": ("WavLMConfig", "WavLMModel"),
}


def save_tiny_whisper(
    folder: str | Path,
    *,
    seed: int = 0,
    layers: int = 3,
    hidden: int = 32,
    window_seconds: int = 3,
    preprocessor: bool = True,
) -> Path:
    """A random Whisper checkpoint (encoder and a 1-layer decoder) as ``save_pretrained`` writes it.

    Args:
        folder: where to write (created).
        seed: torch seed of the random weights.
        layers: encoder layers (``layers + 1`` hidden states).
        hidden: ``d_model``.
        window_seconds: input window (real checkpoints: 30); the feature extractor's
            ``chunk_length`` and ``max_source_positions = 50 * window_seconds``.
        preprocessor: also write ``preprocessor_config.json``.
    """
    import torch
    import transformers

    config = transformers.WhisperConfig(
        d_model=hidden,
        encoder_layers=layers,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * hidden,
        decoder_ffn_dim=2 * hidden,
        num_mel_bins=80,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        max_source_positions=50 * window_seconds,
        max_target_positions=16,
    )
    torch.manual_seed(seed)
    folder = Path(folder)
    transformers.WhisperForConditionalGeneration(config).save_pretrained(folder)
    if preprocessor:
        transformers.WhisperFeatureExtractor(feature_size=80, chunk_length=window_seconds).save_pretrained(folder)
    return folder


def save_tiny_ssl(
    folder: str | Path,
    model_type: str = "wav2vec2",
    *,
    seed: int = 0,
    norm: str = "group",
    **overrides: Any,
) -> Path:
    """A random wav2vec2 / HuBERT / WavLM checkpoint (hidden 32, 2 layers, CNN strides 5, 4, 2: 40 samples a frame).

    Args:
        folder: where to write (created).
        model_type: a key of :data:`SSL_MODELS`.
        seed: torch seed of the random weights.
        norm: ``feat_extract_norm``: ``"group"`` (base-size checkpoints) or ``"layer"``.
        overrides: other config fields (e.g. ``num_hidden_layers=12, hidden_size=768`` and
            the real CNN for a base-size model).
    """
    import torch
    import transformers

    if model_type not in SSL_MODELS:
        raise ValueError(f"model_type {model_type!r}; available: {', '.join(SSL_MODELS)}")
    config_cls, model_cls = SSL_MODELS[model_type]
    fields: dict[str, Any] = {**TINY_SSL_CONFIG, "feat_extract_norm": norm, **overrides}
    torch.manual_seed(seed)
    folder = Path(folder)
    getattr(transformers, model_cls)(getattr(transformers, config_cls)(**fields)).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=norm == "layer").save_pretrained(folder)
    return folder

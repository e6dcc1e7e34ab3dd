"""SSL feature extraction: the per-file loop a user would write vs serkit's ``extract_features``, per precision.

Builds base-size wav2vec 2.0 and WavLM checkpoints with random weights in code (their
transformers default configs: 12 layers, hidden 768, the group-norm CNN of
wav2vec2-base / WavLM-base; nothing is downloaded) and N files of 2-8 s of audio, then
times

* the plain loop: ``soundfile.read``, the checkpoint's feature extractor, the model at
  batch 1 in float32, the last hidden state copied to the host, file by file;
* ``extract_features`` of ``hf_ssl`` (``layer: -1``, or ``--layer`` / ``--pool``) into a
  fresh feature store, at float32, float16 and bfloat16 (half precisions only on CUDA).
  serkit pads batches of any lengths with an attention mask (group-norm checkpoints
  through a per-item masked group norm), runs only the layers up to the requested one,
  copies results to the host once per batch, and autotunes cuDNN on CUDA.

Prints seconds, x real time (audio seconds per wall second) and the ratio to the plain
fp32 loop, and the largest difference between serkit's fp32 features and the plain
loop's (the batching is exact: ~1e-5).

    python benchmarks/extraction_gpu.py --files 800                    # on a CUDA machine
    OMP_NUM_THREADS=1 python benchmarks/extraction_gpu.py --tiny --files 8   # CPU, tiny models (CI)

Goal (issue 13, on one H200): serkit >= 5x the plain loop and >= 2000x real time for the
base-size model; float16 / bfloat16 no slower than float32.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16000
MODELS = ("wav2vec2", "wavlm")


def make_corpus(folder: Path, n: int, seed: int, min_s: float, max_s: float) -> tuple[list[Path], float]:
    """``n`` WAV files of ``min_s``..``max_s`` seconds (noisy harmonic tones); returns the paths and total seconds."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths, total = [], 0.0
    for i in range(n):
        seconds = float(rng.uniform(min_s, max_s))
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = rng.uniform(90, 250)
        y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5)) * 0.1 + 0.01 * rng.standard_normal(t.size)
        path = folder / f"f{i:05d}.wav"
        sf.write(path, y.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
        total += t.size / SAMPLE_RATE
    return paths, total


def make_checkpoint(folder: Path, model_type: str, tiny: bool) -> Path:
    """A random-weight checkpoint folder: base-size (transformers' default config) or tiny."""
    from serkit.testing.tiny_hf import SSL_MODELS, save_tiny_ssl

    if tiny:
        return save_tiny_ssl(folder, model_type, norm="group")
    import torch
    import transformers

    config_cls, model_cls = SSL_MODELS[model_type]
    torch.manual_seed(0)
    getattr(transformers, model_cls)(getattr(transformers, config_cls)()).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(folder)
    return folder


def plain_loop(folder: Path, paths: list[Path], device: str) -> tuple[float, list[Any]]:
    """Per-file fp32 loop; returns seconds and the first files' features (for the exactness check)."""
    import soundfile as sf
    import torch
    import transformers

    fe = transformers.AutoFeatureExtractor.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).to(device).eval()
    kept: list[Any] = []

    def one(path: Path) -> Any:
        wav, sr = sf.read(path, dtype="float32")
        inputs = fe(wav, sampling_rate=sr, return_tensors="pt")
        with torch.inference_mode():
            out = model(inputs["input_values"].to(device)).last_hidden_state
        return out[0].cpu().numpy()

    for p in paths[:2]:  # warm-up (CUDA context, kernels)
        one(p)
    _sync(device)
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        feats = one(p)
        if i < 4:
            kept.append(feats)
    _sync(device)
    return time.perf_counter() - t0, kept


def serkit_extract(
    folder: Path, paths: list[Path], work: Path, device: str, dtype: str, args: argparse.Namespace
) -> tuple[float, list[Any]]:
    """``extract_features`` into a fresh store; returns seconds and the first files' features."""
    from serkit.builtin.extractors.hf_ssl import HfSsl
    from serkit.data.utterance import Utterance
    from serkit.features import FeatureStore, extract_features

    layer: Any = args.layer if args.layer == "weighted" else int(args.layer)
    ext = HfSsl(
        model=str(folder), device=device, dtype=dtype, layer=layer, pool=args.pool, max_padding=args.max_padding
    )
    ext.load_model()
    utts = [Utterance(f"u{i}", str(p), "neutral", "s") for i, p in enumerate(paths)]
    warm = FeatureStore(work / f"warm-{dtype}", ext)
    extract_features(utts[:2], ext, warm, batch_size=args.batch_size, num_workers=args.workers, progress=False)
    warm.close()
    store = FeatureStore(work / f"store-{dtype}", ext)
    _sync(device)
    t0 = time.perf_counter()
    res = extract_features(utts, ext, store, batch_size=args.batch_size, num_workers=args.workers, progress=False)
    _sync(device)
    seconds = time.perf_counter() - t0
    kept = [store.get(res.keys[u.id]) for u in utts[:4]]
    store.close()
    return seconds, kept


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    from serkit.builtin.extractors.hf_ssl import CPU_MAX_PADDING, CUDA_MAX_PADDING

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="audio files (2-8 s each)")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: wav2vec2, wavlm")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument("--dtypes", default="float32,float16,bfloat16", help="serkit precisions (half: CUDA only)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models (hidden 32, 2 layers): CPU / CI")
    parser.add_argument("--batch-size", type=int, default=64, help="extract_features batch size (files)")
    parser.add_argument("--workers", type=int, default=2, help="extract_features audio-loading workers")
    parser.add_argument("--layer", default="-1", help="hf_ssl layer: an index or 'weighted'")
    parser.add_argument("--pool", default="none", choices=("none", "mean", "mean_std"))
    parser.add_argument("--max-padding", type=float, default=None,
                        help=f"hf_ssl max_padding (default: {CPU_MAX_PADDING} on CPU, {CUDA_MAX_PADDING} on CUDA)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain loop (slow on CPU)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, deleted")
    args = parser.parse_args()

    import numpy as np
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dtypes = [d for d in args.dtypes.split(",") if d]
    if not device.startswith("cuda"):
        skipped = [d for d in dtypes if d != "float32"]
        dtypes = [d for d in dtypes if d == "float32"]
        if skipped:
            print(f"note: {', '.join(skipped)} need CUDA; measuring float32 only on {device}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="serkit-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        paths, audio_s = make_corpus(work / "audio", args.files, 0, args.min_seconds, args.max_seconds)
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
        print(f"torch {torch.__version__} on {name} ({torch.get_num_threads()} CPU threads); "
              f"{len(paths)} files, {audio_s:.1f} s of audio; {'tiny' if args.tiny else 'base-size'} models; "
              f"serkit batch {args.batch_size}, layer {args.layer}, pool {args.pool}\n")
        print(f"{'model':<9} {'what':<22} {'seconds':>8} {'x real time':>12} {'vs plain fp32':>14} {'max |diff|':>11}")
        for model_type in [m for m in args.models.split(",") if m]:
            folder = make_checkpoint(work / f"ckpt-{model_type}", model_type, args.tiny)
            plain_s, plain_feats = (None, []) if args.no_plain else plain_loop(folder, paths, device)
            if plain_s is not None:
                print(f"{model_type:<9} {'plain loop, fp32':<22} {plain_s:>8.2f} {audio_s / plain_s:>11.1f}x "
                      f"{1.0:>13.2f}x {'':>11}")
            for dtype in dtypes:
                seconds, feats = serkit_extract(folder, paths, work, device, dtype, args)
                ratio = f"{plain_s / seconds:>13.2f}x" if plain_s else f"{'-':>14}"
                diff = "-"
                if plain_feats and args.layer == "-1" and args.pool == "none":
                    diff = f"{max(float(np.abs(a - b).max()) for a, b in zip(plain_feats, feats, strict=True)):.1e}"
                print(f"{model_type:<9} {'serkit extract, ' + dtype:<22} {seconds:>8.2f} {audio_s / seconds:>11.1f}x "
                      f"{ratio} {diff:>11}")
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

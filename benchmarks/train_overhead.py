"""Training-loop overhead: serkit's engine vs a bare PyTorch loop on the same network and data.

Runs one (repeat, fold) of a small recipe (synthetic corpus, MFCC sequences through
``cnn_bilstm_attn``, a concat fusion and an MLP head; a random split) twice with
``serkit.run`` (the first call fills the feature cache and is not timed), and reads the
engine's own training time from the run folder (``runs/r0-f0.json``: every epoch with
data loading from the feature store, validation, model selection and the per-epoch
resumable state, then the test evaluation).

The bare loop then trains a fresh model of the same recipe (``build_model``, same seed)
on the same training and validation utterances (the run's ``splits/``), with the same
batch size and epochs: features read once into memory, padded batches from a plain
DataLoader, ``loss.backward()``, ``optimizer.step()``, a validation pass per epoch and a
test pass at the end; no checkpoints. Prints both times and their ratio (goal <= 1.10).

    OMP_NUM_THREADS=1 python benchmarks/train_overhead.py --epochs 10
    python benchmarks/train_overhead.py --device cuda        # when CUDA is present
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

RECIPE = """
name: train_overhead
seed: 0
device: {device}
protocol: {{type: random, test: 0.2, val: 0.2}}
domains:
  xa: {{dataset: {{type: synthetic, root: {root}, languages: [xa], speakers: 8, per_class: {per_class}, seed: 0}}}}
features:
  mfcc:
    extractor: {{type: mfcc, n_mfcc: 40, hop_ms: 10}}
    encoder: {{type: cnn_bilstm_attn, channels: 32, kernel_sizes: [3], lstm_hidden: 64, lstm_layers: 2,
              attention_dim: 64}}
fusion: {{type: concat}}
heads:
  default: {{type: mlp, hidden: [128], activations: [relu], dropout: 0.1}}
loss: {{main: {{type: cross_entropy}}}}
optimizer: {{type: adamw, lr: 1.0e-3}}
train: {{epochs: {epochs}, batch_size: 32, select_by: val_ua}}
"""


def _serkit_seconds(recipe_path: Path, out: Path) -> tuple[float, float]:
    """(training seconds inside the engine, whole ``serkit.run`` seconds)."""
    import serkit

    t0 = time.perf_counter()
    serkit.run(str(recipe_path), out=str(out), progress=False)
    wall = time.perf_counter() - t0
    run = json.loads((out / "runs" / "r0-f0.json").read_text())
    return float(run["seconds"]), wall


def _split_rows(run_dir: Path) -> dict[str, list[int]]:
    roles: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    with (run_dir / "splits" / "xa.csv").open() as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if row["r0-f0"]:
                roles[row["r0-f0"]].append(i)
    return roles


def _bare_loop(recipe_path: Path, run_dir: Path, device_name: str) -> float:
    """Train the recipe's network with a plain PyTorch loop; returns seconds."""
    import numpy as np
    import torch
    from torch.nn.utils.rnn import pad_sequence

    from serkit.config.recipe import load_recipe
    from serkit.engine.data import Batch, StreamInfo
    from serkit.engine.device import resolve_device, seed_everything
    from serkit.engine.model import build_model
    from serkit.engine.prepare import load_domains
    from serkit.features.driver import extract_features
    from serkit.features.store import FeatureStore
    from serkit.paths import cache_dir
    from serkit.plugins import get_plugin_manager

    recipe = load_recipe(str(recipe_path))[0]
    registry = get_plugin_manager().registry
    device = resolve_device(device_name)
    utts = load_domains(recipe)["xa"]
    ext = registry.create("extractor", recipe.features["mfcc"].extractor)
    store = FeatureStore(cache_dir() / "features", ext)
    keys = extract_features(utts, ext, store, progress=False).keys  # all cached: no compute
    labels = sorted({u.label for u in utts})
    roles = _split_rows(run_dir)

    def tensors(rows: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = [torch.from_numpy(np.asarray(store.get(keys[utts[i].id]), dtype=np.float32)) for i in rows]
        return feats, torch.tensor([labels.index(utts[i].label) for i in rows])

    t0 = time.perf_counter()
    data = {role: tensors(rows) for role, rows in roles.items()}
    seed_everything(0)
    model = build_model(
        recipe, registry, [StreamInfo("mfcc", "sequence", ext.dim)], {"xa": labels}, {"xa": "default"}, {}
    )
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=recipe.optimizer.weight_decay)

    def batches(role: str, shuffle: bool, gen: torch.Generator) -> Any:
        feats, y = data[role]
        order = torch.randperm(len(y), generator=gen) if shuffle else torch.arange(len(y))
        for s in range(0, len(y), 32):
            idx = order[s : s + 32].tolist()
            x = pad_sequence([feats[i] for i in idx], batch_first=True).to(device)
            lengths = torch.tensor([len(feats[i]) for i in idx], device=device)
            yield Batch({"mfcc": (x, lengths)}, y[idx].to(device), "xa", torch.tensor(idx))

    gen = torch.Generator().manual_seed(0)
    for _ in range(recipe.train.epochs):
        model.train()
        for b in batches("train", True, gen):
            loss = torch.nn.functional.cross_entropy(model(b)[0], b.targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for role in ("val",) * (recipe.train.epochs > 0):
                preds = [model(b)[0].argmax(1).cpu() for b in batches(role, False, gen)]
    with torch.no_grad():
        preds = [model(b)[0].argmax(1).cpu() for b in batches("test", False, gen)]
    assert preds
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--per-class", type=int, default=10, help="utterances per emotion and speaker (8 speakers, 4 emotions)"
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each side (medians)")
    parser.add_argument("--workdir", type=Path, default=None, help="corpus and runs (default: a temporary folder)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="serkit-train-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SERKIT_CACHE", str(work / "cache"))
    import torch

    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(
        RECIPE.format(device=args.device, root=work / "corpus", per_class=args.per_class, epochs=args.epochs)
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}, work {work}")
    _serkit_seconds(recipe_path, work / "warm")  # fills the feature cache (and imports)
    engine, whole, bare = [], [], []
    for i in range(args.repeats):
        e, w = _serkit_seconds(recipe_path, work / f"run{i}")
        engine.append(e)
        whole.append(w)
        bare.append(_bare_loop(recipe_path, work / f"run{i}", args.device))
        print(f"  repeat {i}: serkit engine {e:.2f} s (whole run {w:.2f} s), bare loop {bare[-1]:.2f} s")
    med = sorted(engine)[len(engine) // 2]
    med_bare = sorted(bare)[len(bare) // 2]
    med_whole = sorted(whole)[len(whole) // 2]
    print(f"serkit training {med:.2f} s, bare loop {med_bare:.2f} s: ratio {med / med_bare:.3f} (goal <= 1.10)")
    print(f"whole serkit.run (cached features, report and plots included) {med_whole:.2f} s")


if __name__ == "__main__":
    main()

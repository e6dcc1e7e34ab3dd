"""Memory and disk of a SUPERB-style probe at scale: pooled SSL layers + ``weighted_layers`` + an MLP head.

Builds a feature store of N utterances of pooled layers (``pool: mean`` of a base-size
model: 13 layers x 768, one float16 vector of 9984 values per utterance, as ``hf_ssl`` /
``whisper`` store them; random values, with the label planted in layer 8 so that the
layer weights have something to find), written directly with ``put_many`` in a child
process. Then trains through serkit's engine (:func:`serkit.engine.train.train_run`: the
store read through :class:`~serkit.engine.data.FeatureDataset` with the run-wide
:class:`~serkit.engine.data.FeatureMemory` (``--memory-gib``, the recipe default 1 GiB),
per-epoch validation, model selection, test evaluation) a ``weighted_layers`` encoder
(per-domain weights), a concat fusion and an MLP head (256). Prints the store's size on
disk, the peak RSS of the training process (``ru_maxrss``), seconds per epoch, and the
learned weight of the informative layer.

Goal (issue 14): 100,000 utterances train within 4 GiB RSS and store in < 10 GB.

    OMP_NUM_THREADS=1 python benchmarks/train_layers_memory.py --utterances 10000 --epochs 2
    python benchmarks/train_layers_memory.py --utterances 100000 --workdir /big/disk --keep
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from serkit.interfaces.base import ComponentParams

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_memory import RandomFeatures, peak_rss_mib  # the sibling benchmark's stand-in and helper

N_CLASSES = 4
#: The layer that carries the label.
INFORMATIVE = 8
WRITE_CHUNK = 256


class PooledLayers(RandomFeatures):
    """Stand-in for ``hf_ssl`` with ``layer: weighted, pool: mean``: only its name, params, dim and layers are used."""

    name: ClassVar[str] = "bench_pooled_layers"

    class Params(ComponentParams):
        layers: int = Field(13, gt=0, description="Hidden states stored per utterance.")
        width: int = Field(768, gt=0, description="Hidden size.")
        utterances: int = Field(100_000, gt=0, description="Items in the store.")
        seed: int = Field(0, description="Random seed of the arrays.")

    params: Params  # type: ignore[assignment]

    @property
    def output(self) -> Literal["vector"]:  # type: ignore[override]
        return "vector"

    @property
    def dim(self) -> int:
        return self.params.layers * self.params.width

    @property
    def n_layers(self) -> int:
        return self.params.layers


def _extractor(args: argparse.Namespace) -> PooledLayers:
    return PooledLayers(layers=args.layers, width=args.width, utterances=args.utterances, seed=args.seed)


def build_store(root: str, layers: int, width: int, utterances: int, seed: int) -> None:
    """Fill the store (in a child process); item ``i`` is ``u000000i``, label ``i % 4`` planted in one layer."""
    import numpy as np

    from serkit.features.store import FeatureStore

    ext = PooledLayers(layers=layers, width=width, utterances=utterances, seed=seed)
    store = FeatureStore(Path(root), ext, dtype="float16")
    have = set(store.keys())
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_CLASSES, width)).astype(np.float32)
    chunk: list[tuple[str, Any]] = []
    for i in range(utterances):
        key = f"u{i:07d}"
        if key in have:
            continue
        x = rng.standard_normal((layers, width), dtype=np.float32)
        x[min(INFORMATIVE, layers - 1)] += 0.5 * centres[i % N_CLASSES]
        chunk.append((key, x.reshape(-1).astype(np.float16)))
        if len(chunk) == WRITE_CHUNK:
            store.put_many(chunk)
            chunk = []
    store.put_many(chunk)
    store.close()


def train(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train through serkit's engine; returns the numbers to print."""
    import torch

    from serkit.engine.data import FeatureDataset, FeatureMemory, StreamInfo, make_loader
    from serkit.engine.model import SerModel
    from serkit.engine.train import train_run
    from serkit.features.store import FeatureStore
    from serkit.interfaces.encoder import StreamContext
    from serkit.plugins import get_registry

    torch.manual_seed(args.seed)
    registry = get_registry()
    ext = _extractor(args)
    store = FeatureStore(workdir, ext, dtype="float16")
    n = args.utterances
    keys = {"ssl": [f"u{i:07d}" for i in range(n)]}
    targets = [i % N_CLASSES for i in range(n)]
    order = list(range(n))
    n_test = n_val = max(N_CLASSES, n // 10)
    roles = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    memory = FeatureMemory(int(args.memory_gib * 2**30))
    datasets = {r: FeatureDataset(keys, {"ssl": store}, targets, rows, memory=memory) for r, rows in roles.items()}
    loaders = {
        r: {"xa": make_loader(ds, "xa", batch_size=args.batch_size, shuffle=r == "train", seed=args.seed)}
        for r, ds in datasets.items()
    }
    context = StreamContext("vector", ext.n_layers, ("xa",), registry)
    encoder = registry.create("encoder", {"type": "weighted_layers", "per_domain": True}).build_stream(ext.dim, context)
    fusion = registry.create("fusion", {"type": "concat"}).build({"ssl": int(encoder.out_dim)}, ["xa"])
    head = registry.create("head", {"type": "mlp", "hidden": [256], "activations": ["relu"], "dropout": 0.1})
    model = SerModel(
        [StreamInfo("ssl", "vector", ext.dim)],
        {"ssl": encoder},
        fusion,
        {"xa": head.build(int(fusion.out_dim), N_CLASSES)},
        {"xa": "xa"},
        {"xa": [str(c) for c in range(N_CLASSES)]},
    )
    losses = torch.nn.ModuleDict(
        {"xa": registry.create("loss", {"type": "cross_entropy"}).build(int(fusion.out_dim), N_CLASSES)}
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rss_before = peak_rss_mib()[0]
    t0 = time.perf_counter()
    outcome = train_run(
        model, losses, None, {}, optimizer, loaders["train"], loaders["val"], loaders["test"],
        epochs=args.epochs, select_by="val_ua", grad_clip=None, patience=None,
        device=torch.device("cpu"), seed=args.seed,
    )
    seconds = time.perf_counter() - t0
    store.close()
    weights = outcome.encoders["ssl"]["layer_weights"]["xa"]
    return {
        "rss_before": rss_before,
        "rss": peak_rss_mib()[0],
        "seconds": seconds,
        "memory_mib": memory.bytes / 2**20,
        "cached_items": len(memory.items),
        "test_ua": outcome.test["xa"]["ua"],
        "weights": weights,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=100_000)
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--memory-gib", type=float, default=1.0, help="data.feature_memory_gib (recipe default 1).")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="Where the store is built (default: a temporary folder, deleted at the end).")
    parser.add_argument("--keep", action="store_true", help="Keep the store (reused by the next run).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    need = args.utterances * args.layers * args.width * 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="serkit-bench-layers-"))
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    print(f"store: {args.utterances:,} x {args.layers} x {args.width} float16 = {need / 1e9:.2f} GB of arrays "
          f"in {workdir} ({free / 2**30:.1f} GiB free)")
    if need > 0.9 * free:
        sys.exit(f"not enough disk space in {workdir}: need ~{need / 2**30:.1f} GiB; use --workdir or scale down")
    try:
        t0 = time.perf_counter()
        # spawn: the writer's memory never counts as the training process's
        proc = multiprocessing.get_context("spawn").Process(
            target=build_store, args=(str(workdir), args.layers, args.width, args.utterances, args.seed)
        )
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            sys.exit(f"building the store failed (exit code {proc.exitcode})")
        build_s = time.perf_counter() - t0
        stats = train(args, workdir)
        from serkit.features.store import FeatureStore

        name = FeatureStore(workdir, _extractor(args), dtype="float16").path.name
        size = sum(p.stat().st_size for p in workdir.glob(name + "*"))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    w = stats["weights"]
    top = max(range(len(w)), key=w.__getitem__)
    print(f"torch threads={stats['threads']} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"batch {args.batch_size}, epochs {args.epochs}, feature memory budget {args.memory_gib:g} GiB\n")
    rows = [
        ("store on disk", f"{size / 1e9:.3f} GB ({size / args.utterances / 1e3:.1f} kB/utt)"),
        ("store build (child process)", f"{build_s:.1f} s"),
        ("peak RSS before training", f"{stats['rss_before']:,.0f} MiB"),
        ("peak RSS (training process)", f"{stats['rss']:,.0f} MiB"),
        ("features held in memory", f"{stats['memory_mib']:,.0f} MiB ({stats['cached_items']:,} items)"),
        ("training (eval incl.)", f"{stats['seconds']:.1f} s ({stats['seconds'] / args.epochs:.1f} s/epoch)"),
        ("test UA", f"{stats['test_ua']:.3f}"),
        ("top layer weight", f"layer {top}: {w[top]:.3f} (planted: {min(INFORMATIVE, args.layers - 1)}; "
                             f"uniform {1 / len(w):.3f})"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    ok_rss = stats["rss"] < 4096
    ok_disk = size < 10e9
    print(f"\ngoal: peak RSS < 4096 MiB: {'ok' if ok_rss else 'ABOVE GOAL'}; store < 10 GB: "
          f"{'ok' if ok_disk else 'ABOVE GOAL'} (at {args.utterances:,} utterances)")


if __name__ == "__main__":
    main()

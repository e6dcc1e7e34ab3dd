"""Training memory: one epoch over an IEMOCAP-sized sequence store with lazy reads.

Builds a synthetic feature store (random float16 arrays written directly with
``put_many``; default 5531 utterances x ~500 frames x 768 dims, the size of IEMOCAP's
wav2vec2 features: ~4 GiB on disk), then trains the ``cnn_bilstm_attn`` encoder and an
``mlp`` head for one epoch through :class:`serkit.engine.data.FeatureDataset` and
:func:`serkit.engine.data.make_loader`, which read items from the store one by one.
Prints the peak resident memory (``ru_maxrss``) and samples/s.
Goal: peak RSS < 2 GiB, i.e. far below the store's size.

The store is built in a separate process, so the peak RSS measured here is the
training's. Scale down with ``--utterances/--frames/--dim``:

    OMP_NUM_THREADS=1 python benchmarks/train_memory.py --utterances 200 --frames 100 --dim 64
    python benchmarks/train_memory.py --workdir /big/disk     # the full size (~4 GiB of disk)

``--ddp N`` runs the same epoch with N DistributedDataParallel processes (gloo, CPU),
started with ``torch.multiprocessing`` (spawn) on this machine, as ``serkit run --nproc
N`` trains: every global batch of ``--batch-size`` is split between the ranks, and each
rank reads only its items from the (shared) store. Prints the peak RSS of every rank,
their total, and the global samples/s:

    OMP_NUM_THREADS=1 python benchmarks/train_memory.py --utterances 200 --frames 100 --dim 64 --ddp 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from serkit.interfaces.base import ComponentParams
from serkit.interfaces.extractor import Extractor

N_CLASSES = 4
#: Items per put_many transaction while building the store.
WRITE_CHUNK = 64


class RandomFeatures(Extractor):
    """Stand-in extractor of the benchmark store: only its name, params and dim are used."""

    name: ClassVar[str] = "bench_random"

    class Params(ComponentParams):
        dim: int = Field(768, gt=0, description="Feature dimension.")
        frames: int = Field(500, gt=0, description="Mean frames per utterance.")
        utterances: int = Field(5531, gt=0, description="Items in the store.")
        seed: int = Field(0, description="Random seed of the arrays.")

    @property
    def output(self) -> Literal["sequence"]:
        return "sequence"

    @property
    def sample_rate(self) -> int:
        return 16000

    @property
    def dim(self) -> int:
        return self.params.dim  # type: ignore[attr-defined]

    def extract(self, wav: Any) -> Any:
        raise NotImplementedError("the benchmark store is filled directly with put_many")


def lengths(n: int, frames: int, seed: int) -> list[int]:
    """Utterance lengths: uniform in [0.5, 1.5] x frames (IEMOCAP's spread is similar)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(max(1, frames // 2), max(2, frames * 3 // 2) + 1, size=n)]


def build_store(root: str, utterances: int, frames: int, dim: int, seed: int) -> None:
    """Fill the store (run in a child process); items are ``u00000``, ``u00001``, ..."""
    import numpy as np

    from serkit.features.store import FeatureStore

    extractor = RandomFeatures(dim=dim, frames=frames, utterances=utterances, seed=seed)
    store = FeatureStore(Path(root), extractor, dtype="float16")
    have = set(store.keys())
    rng = np.random.default_rng(seed)
    lens = lengths(utterances, frames, seed)
    chunk: list[tuple[str, Any]] = []
    for i, n in enumerate(lens):
        key = f"u{i:05d}"
        if key in have:
            continue
        chunk.append((key, rng.standard_normal((n, dim), dtype=np.float32).astype(np.float16)))
        if len(chunk) == WRITE_CHUNK:
            store.put_many(chunk)
            chunk = []
    store.put_many(chunk)
    store.close()


def peak_rss_mib() -> tuple[float, float]:
    """Peak RSS of this process and of its finished children, MiB (Linux reports KiB)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utterances", type=int, default=5531)
    parser.add_argument("--frames", type=int, default=500, help="Mean frames per utterance.")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes.")
    parser.add_argument("--max-batches", type=int, default=None, help="Stop the epoch early.")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="Where the store is built (default: a temporary folder, deleted at the end).")
    parser.add_argument("--keep", action="store_true", help="Keep the store (reused by the next run).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ddp", type=int, default=1, metavar="N",
                        help="Train with N DistributedDataParallel processes (gloo) instead of one.")
    args = parser.parse_args()
    if args.ddp < 1:
        parser.error("--ddp: expected a number of processes >= 1")

    need = args.utterances * args.frames * args.dim * 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="serkit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    print(f"store: {args.utterances} x ~{args.frames} x {args.dim} float16 = ~{need / 2**30:.2f} GiB "
          f"in {workdir} ({free / 2**30:.1f} GiB free)")
    if need > 0.9 * free:
        sys.exit(f"not enough disk space in {workdir}: need ~{need / 2**30:.1f} GiB; use --workdir or scale down")
    if need > 2**30:
        print("warning: a multi-GiB store takes minutes to write; --keep reuses it next time")
    try:
        run(args, workdir)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path) -> None:
    t0 = time.perf_counter()
    # spawn: the child's memory (random arrays, write buffers) never counts as ours
    proc = multiprocessing.get_context("spawn").Process(
        target=build_store, args=(str(workdir), args.utterances, args.frames, args.dim, args.seed)
    )
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        sys.exit(f"building the store failed (exit code {proc.exitcode})")
    build_s = time.perf_counter() - t0
    if args.ddp > 1:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.SimpleQueue()
        port = free_port()
        ranks = [
            ctx.Process(target=train_rank, args=(args, workdir, r, args.ddp, port, queue)) for r in range(args.ddp)
        ]
        for p in ranks:
            p.start()
        for p in ranks:
            p.join()
        if any(p.exitcode != 0 for p in ranks):
            sys.exit(f"a training process failed (exit codes {[p.exitcode for p in ranks]})")
        stats = sorted((queue.get() for _ in ranks), key=lambda st: st["rank"])
    else:
        stats = [train_rank(args, workdir, 0, 1, 0, None)]
    report(args, workdir, build_s, stats)


def free_port() -> int:
    """A free TCP port on localhost for the ranks' rendezvous."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_rank(args: argparse.Namespace, workdir: Path, rank: int, world: int, port: int, queue: Any) -> dict[str, Any]:
    """One epoch on this rank's share of every batch; returns (and queues) its numbers."""
    import torch

    from serkit.builtin.encoders.cnn_bilstm_attn import CnnBiLstmAttnEncoder
    from serkit.builtin.heads.mlp import MlpHead
    from serkit.engine.data import FeatureDataset, make_loader
    from serkit.features.store import FeatureStore

    if world > 1:
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(args.seed)
    extractor = RandomFeatures(dim=args.dim, frames=args.frames, utterances=args.utterances, seed=args.seed)
    store = FeatureStore(workdir, extractor, dtype="float16")
    keys = [f"u{i:05d}" for i in range(args.utterances)]
    targets = [i % N_CLASSES for i in range(args.utterances)]
    dataset = FeatureDataset({"x": keys}, {"x": store}, targets, list(range(args.utterances)))
    loader = make_loader(dataset, "bench", batch_size=args.batch_size, shuffle=True, seed=args.seed,
                         num_workers=args.workers, rank=rank, world_size=world)

    class Step(torch.nn.Module):
        """Encoder + head + the batch's loss, weighted by the rank's share of the batch."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = CnnBiLstmAttnEncoder().build(args.dim)
            self.head = MlpHead().build(self.encoder.out_dim, N_CLASSES)

        def forward(self, batch: Any) -> torch.Tensor:
            x, lens = batch.streams["x"]
            logits = self.head(self.encoder(x, lens))
            return torch.nn.functional.cross_entropy(logits, batch.targets) * batch.weight

    step = Step()
    optimizer = torch.optim.AdamW(step.parameters(), lr=1e-3)
    n_params = sum(p.numel() for p in step.parameters())
    model = torch.nn.parallel.DistributedDataParallel(step) if world > 1 else step
    rss_before, _ = peak_rss_mib()

    model.train()
    seen = 0
    loss_sum = 0.0
    t1 = time.perf_counter()
    for i, batch in enumerate(loader):
        if args.max_batches is not None and i >= args.max_batches:
            break
        loss = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = int(batch.targets.shape[0]) if batch.weight > 0 else 0  # a weight-0 stand-in item is not a sample
        seen += n
        loss_sum += loss.item() / batch.weight * n if n else 0.0
    train_s = time.perf_counter() - t1
    store.close()
    own, children = peak_rss_mib()
    stats = {
        "rank": rank, "rss_before": rss_before, "rss": own, "children": children, "seen": seen,
        "loss_sum": loss_sum, "seconds": train_s, "params": n_params, "threads": torch.get_num_threads(),
    }
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    if queue is not None:
        queue.put(stats)
    return stats


def report(args: argparse.Namespace, workdir: Path, build_s: float, stats: list[dict[str, Any]]) -> None:
    from serkit.features.store import FeatureStore

    extractor = RandomFeatures(dim=args.dim, frames=args.frames, utterances=args.utterances, seed=args.seed)
    name = FeatureStore(workdir, extractor, dtype="float16").path.name
    size = sum(p.stat().st_size for p in workdir.glob(name + "*"))
    first = stats[0]
    seen = sum(st["seen"] for st in stats)
    train_s = max(st["seconds"] for st in stats)
    print(f"torch threads={first['threads']} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
          f"model {first['params'] / 1e6:.2f} M params, batch {args.batch_size}, workers {args.workers}, "
          f"processes {len(stats)}\n")
    rows = [
        ("store on disk", f"{size / 2**20:,.1f} MiB"),
        ("store build (child process)", f"{build_s:.1f} s"),
        ("peak RSS before training", f"{first['rss_before']:,.0f} MiB"),
    ]
    if len(stats) == 1:
        rows.append(("peak RSS (training process)", f"{first['rss']:,.0f} MiB"))
    else:
        rows += [(f"peak RSS (rank {st['rank']})", f"{st['rss']:,.0f} MiB") for st in stats]
        rows.append(("peak RSS (all ranks)", f"{sum(st['rss'] for st in stats):,.0f} MiB"))
    rows += [
        ("peak RSS (loader workers)", f"{max(st['children'] for st in stats):,.0f} MiB" if args.workers else "-"),
        ("samples trained", f"{seen}"),
        ("mean loss", f"{sum(st['loss_sum'] for st in stats) / max(seen, 1):.3f}"),
        ("samples/s", f"{seen / train_s:.1f}" if train_s > 0 else "-"),
    ]
    width = max(len(r[0]) for r in rows)
    for name_, value in rows:
        print(f"{name_:<{width}}  {value:>14}")
    worst = max(max(st["rss"], st["children"]) for st in stats)
    verdict = "ok" if worst < 2048 else "ABOVE GOAL"
    print(f"\ngoal: peak RSS < 2048 MiB per process: {verdict}")


if __name__ == "__main__":
    main()

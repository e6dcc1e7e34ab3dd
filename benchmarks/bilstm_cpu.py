"""Forward and backward time of serkit's BiLSTM paths, and one cnn_bilstm_attn training step.

Part 1 reproduces the measurement behind the padded path: ``nn.LSTM(32, 64,
num_layers=2, bidirectional=True)``, batch 32, on packed input (``pack_padded_sequence``)
and through :func:`serkit.nn.bilstm.run_bilstm` with ``impl="padded"`` (exact: each
direction starts at each sequence's own end), for ragged lengths up to ``T``.

Part 2 times one training step (forward, loss, backward) of the EmoDB-size
``cnn_bilstm_attn`` (MFCC settings: 40-d input, 32 channels, kernel 3, 2-layer BiLSTM,
hidden 64, attention 256; batch 32, lengths up to ``T``) with each implementation, and
prints backward / forward (goal: <= 3 with the padded path).

    OMP_NUM_THREADS=1 python benchmarks/bilstm_cpu.py --lengths 300 900 --threads 1
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from serkit.nn.bilstm import run_bilstm
from serkit.nn.cnn_bilstm_attn import CnnBiLstmAttn
from serkit.nn.masking import lengths_to_mask


def _ragged_lengths(batch: int, max_len: int, gen: torch.Generator) -> torch.Tensor:
    """Lengths spread over ``[max_len / 3, max_len]``, the longest exactly ``max_len``."""
    lengths = torch.randint(max_len // 3, max_len + 1, (batch,), generator=gen)
    lengths[0] = max_len
    return lengths


def _timed(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[float, float]:
    """Median forward and backward seconds of ``fn`` (which returns a scalar loss)."""
    fwd, bwd = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loss = fn()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    return sorted(fwd)[len(fwd) // 2], sorted(bwd)[len(bwd) // 2]


def bench_lstm(max_len: int, batch: int, repeats: int, skip_packed_over: int) -> None:
    gen = torch.Generator().manual_seed(0)
    lstm = nn.LSTM(32, 64, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(batch, max_len, 32, generator=gen, requires_grad=True)
    lengths = _ragged_lengths(batch, max_len, gen)
    mask = lengths_to_mask(lengths, max_len)
    for impl in ("packed", "padded"):
        if impl == "packed" and max_len > skip_packed_over:
            print(f"  lstm  T={max_len:5d}  {impl:7s}  skipped (--skip-packed-over {skip_packed_over})")
            continue
        reps = 1 if impl == "packed" and max_len > 600 else repeats
        fwd, bwd = _timed(lambda impl=impl: run_bilstm(lstm, x, lengths, mask, impl)[0].sum(), reps)
        print(f"  lstm  T={max_len:5d}  {impl:7s}  forward {fwd:7.3f} s  backward {bwd:7.3f} s  ratio {bwd / fwd:5.2f}")


def bench_step(max_len: int, batch: int, repeats: int, skip_packed_over: int) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, max_len, 40, generator=gen)
    lengths = _ragged_lengths(batch, max_len, gen)
    labels = torch.randint(0, 7, (batch,), generator=gen)
    for impl in ("packed", "padded"):
        if impl == "packed" and max_len > skip_packed_over:
            print(f"  step  T={max_len:5d}  {impl:7s}  skipped")
            continue
        torch.manual_seed(0)
        enc = CnnBiLstmAttn(40, channels=32, kernel_sizes=(3,), lstm_hidden=64, lstm_layers=2, lstm_impl=impl)
        head = nn.Linear(enc.out_dim, 7)

        def step(enc: nn.Module = enc, head: nn.Module = head) -> torch.Tensor:
            return nn.functional.cross_entropy(head(enc(x, lengths)), labels)

        reps = 1 if impl == "packed" and max_len > 600 else repeats
        fwd, bwd = _timed(step, reps)
        print(f"  step  T={max_len:5d}  {impl:7s}  forward {fwd:7.3f} s  backward {bwd:7.3f} s  ratio {bwd / fwd:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[300, 900], help="max sequence lengths T")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timings per row (median; packed T>600: 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--skip-packed-over", type=int, default=10_000, help="skip the packed path above this T")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}, ragged lengths")
    for max_len in args.lengths:
        bench_lstm(max_len, args.batch, args.repeats, args.skip_packed_over)
    for max_len in args.lengths:
        bench_step(max_len, args.batch, args.repeats, args.skip_packed_over)


if __name__ == "__main__":
    main()

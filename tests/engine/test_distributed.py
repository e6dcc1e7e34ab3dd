"""Distributed training (DDP on gloo, 2 CPU processes): sharding, equivalence with one process, CLI.

Tolerance. Every global batch is split between the ranks and each rank's mean loss is
weighted by its share, so DistributedDataParallel's gradient average *is* the gradient of
the whole batch's mean loss: with dropout off, a 2-process run follows the single-process
run up to float rounding (sums taken in another order, e.g. ~1e-7 relative per step). We
therefore compare weights and losses at 1e-4 (relative; a few epochs of Adam cannot
amplify 1e-7 that far on these tiny problems) and predictions (confusion matrices, UA,
WA) exactly.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from serkit.data.sampler import BalancedBatchSampler, DistributedBatchSampler
from serkit.engine.data import FeatureDataset, make_loader
from serkit.engine.distributed import SINGLE, DistContext, init_distributed, launch
from serkit.errors import DatasetError, SerkitError
from serkit.testing.cli import run_cli

# A toy two-domain problem trained with train_run, imported here (one process) and run
# under torchrun (two processes). Domain "a" has 3 classes, "b" 2; with batch 8, b's 33
# training items end in a batch of 1, so rank 1's share of it is empty (weight-0 stand-in).
WORKER = r'''
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from serkit.config.recipe import validate_recipe_data
from serkit.engine.data import FeatureDataset, StreamInfo, make_loader
from serkit.engine.distributed import SINGLE, cleanup, init_distributed
from serkit.engine.model import build_model
from serkit.engine.train import train_run
from serkit.plugins import get_registry

SIZES = {"a": (41, 12, 12), "b": (33, 10, 10)}  # train, val, test
LABELS = {"a": ["angry", "happy", "sad"], "b": ["angry", "sad"]}
DIM = 6


class ArrayStore:
    """In-memory stand-in for a FeatureStore: key -> vector."""

    def __init__(self, arrays):
        self.arrays = arrays

    def get(self, key):
        return self.arrays[key].copy()


def data():
    rng = np.random.default_rng(7)
    arrays, out = {}, {}
    for d, sizes in SIZES.items():
        n = sum(sizes)
        targets = [i % len(LABELS[d]) for i in range(n)]
        centres = rng.normal(size=(len(LABELS[d]), DIM)) * 1.5
        keys = []
        for i, t in enumerate(targets):
            keys.append(f"{d}{i}")
            arrays[f"{d}{i}"] = (centres[t] + rng.normal(size=DIM)).astype(np.float32)
        order = rng.permutation(n).tolist()
        tr, va = sizes[0], sizes[0] + sizes[1]
        out[d] = (keys, targets, order[:tr], order[tr:va], order[va:])
    return ArrayStore(arrays), out


def train(dist=SINGLE, *, balanced=False, dropout=0.0, epochs=4, state_file=None, resume=False, crash_at=None):
    reg = get_registry()
    recipe = validate_recipe_data(
        {
            "name": "toy",
            "domains": {d: {"dataset": {"type": "synthetic", "languages": ["xa"]}} for d in SIZES},
            "features": {"v": {"extractor": {"type": "ge2e"}}},
            "heads": {"default": {"type": "mlp", "hidden": [16], "activations": ["relu"], "dropout": dropout}},
        }
    )
    torch.manual_seed(0)
    model = build_model(recipe, reg, [StreamInfo("v", "vector", DIM)], LABELS)
    dim = int(model.fusion.out_dim)
    ce = reg.create("loss", {"type": "cross_entropy"})
    main = torch.nn.ModuleDict({d: ce.build(dim, len(LABELS[d])) for d in SIZES})
    aux = None
    if balanced:
        spec = {"type": "ge2e_contrastive", "min_per_class": 2}
        aux = torch.nn.ModuleDict({d: reg.create("loss", spec).build(dim, len(LABELS[d])) for d in SIZES})
    params = list(model.parameters()) + (list(aux.parameters()) if aux is not None else [])
    opt = reg.create("optimizer", {"type": "adamw", "lr": 0.01}).build([{"params": params}])
    store, parts = data()

    def loader(d, which, shuffle):
        keys, targets, *idx = parts[d]
        ds = FeatureDataset({"v": keys}, {"v": store}, targets, idx[which])
        bal = 2 if balanced and which == 0 else None
        return make_loader(ds, d, batch_size=8, shuffle=shuffle, seed=3, balanced_per_class=bal,
                           rank=dist.rank, world_size=dist.world_size)

    def on_epoch(epoch, row):
        if epoch == crash_at:
            raise KeyboardInterrupt(f"crash in epoch {epoch}")

    train_l = {d: loader(d, 0, True) for d in SIZES}
    out = train_run(
        model, main, aux, {d: 0.5 for d in SIZES}, opt, train_l,
        {d: loader(d, 1, False) for d in SIZES}, {d: loader(d, 2, False) for d in SIZES},
        epochs=epochs, select_by="val_ua", grad_clip=5.0, patience=None, device=torch.device("cpu"), seed=0,
        on_epoch_end=on_epoch, dist=dist, state_file=state_file, resume=resume,
    )
    steps = {d: len(dl) for d, dl in train_l.items()}
    return out, params, steps


def summary(out):
    return {
        "weights": {k: v.flatten().tolist() for k, v in out.state_dict.items()},
        "history": out.history,
        "best_epoch": out.best_epoch,
        "val": out.val,
        "test": out.test,
        "x": out.embeddings["a"]["x"].tolist(),
        "resumed_from": out.resumed_from,
    }


if __name__ == "__main__":
    dist = init_distributed("cpu")
    result = {"world_size": dist.world_size}
    out, _, steps = train(dist)
    result["plain"], result["plain_steps"] = summary(out), steps
    out, params, steps = train(dist, balanced=True)
    flat = torch.cat([p.detach().flatten() for p in params])
    result["replicas_identical"] = all(torch.equal(flat, t) for t in dist.all_gather_object(flat))
    result["balanced_steps"], result["balanced_val"] = steps, out.val
    state = Path(sys.argv[1]).with_suffix(".last.json")
    try:
        train(dist, dropout=0.3, state_file=state, crash_at=3)
    except KeyboardInterrupt:
        pass
    result["resumed"] = summary(train(dist, dropout=0.3, state_file=state, resume=True)[0])
    result["uninterrupted"] = summary(train(dist, dropout=0.3)[0])
    if dist.is_main:
        Path(sys.argv[1]).write_text(json.dumps(result))
    cleanup(dist)
'''


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType]:
    path = tmp_path_factory.mktemp("ddp") / "toy_worker.py"
    path.write_text(WORKER)
    spec = importlib.util.spec_from_file_location("toy_worker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


class ArrayStore:
    def get(self, key: str) -> np.ndarray:
        return np.full(2, float(key), dtype=np.float32)


def _dataset(n: int, n_classes: int = 3) -> FeatureDataset:
    return FeatureDataset({"v": [str(i) for i in range(n)]}, {"v": ArrayStore()}, [i % n_classes for i in range(n)],
                          list(range(n)))  # type: ignore[dict-item]


def _batches(dl: torch.utils.data.DataLoader) -> list[tuple[list[int], float]]:
    return [(b.indices.tolist(), b.weight) for b in dl]


def test_split_batches_partition_every_single_process_batch_with_gradient_weights() -> None:
    ds = _dataset(17)
    single = _batches(make_loader(ds, "d", batch_size=4, shuffle=True, seed=5))
    ranks = [_batches(make_loader(ds, "d", batch_size=4, shuffle=True, seed=5, rank=r, world_size=3)) for r in range(3)]
    assert all(len(r) == len(single) == 5 for r in ranks)  # the same steps on every rank
    for k, (items, weight) in enumerate(single):
        assert weight == 1.0
        shares = [ranks[r][k] for r in range(3)]
        real = [s for s in shares if s[1] > 0]
        assert sorted(i for s in real for i in s[0]) == sorted(items)  # disjoint, complete
        # DDP averages the ranks' gradients of weight_r * mean_r: every item counts 1 / N, as in one process
        assert all(w / (3 * len(ix)) == pytest.approx(1 / len(items)) for ix, w in real)
    # the last batch holds 1 item: ranks 1 and 2 train on a stand-in of it with weight 0
    assert [ranks[r][4] for r in range(3)] == [(single[4][0], 3.0), (single[4][0], 0.0), (single[4][0], 0.0)]


def test_evaluation_loaders_split_the_set_by_position() -> None:
    ds = _dataset(11)
    loaders = [make_loader(ds, "d", batch_size=4, shuffle=False, rank=r, world_size=2) for r in range(2)]
    parts = [[i for b in dl for i in b.indices.tolist()] for dl in loaders]
    assert parts == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]


def test_balanced_batches_are_dealt_whole_and_evenly() -> None:
    labels = [i % 3 for i in range(30)]
    inner = BalancedBatchSampler(labels, classes_per_batch=2, samples_per_class=2, seed=1)  # 8 batches
    inner.set_epoch(4)
    every = [list(b) for b in inner]
    shares = []
    for r in range(3):
        s = DistributedBatchSampler(BalancedBatchSampler(labels, 2, 2, seed=1), r, 3)
        s.set_epoch(4)  # forwarded: the same batches as ``inner``
        shares.append(list(s))
        assert len(s) == len(shares[-1]) == 3  # ceil(8 / 3) on every rank
    # rank r takes batches r, r + 3, ... of the sequence padded with its first batch
    assert [shares[r][k] for k in range(3) for r in range(3)] == [*every, every[0]]
    with pytest.raises(DatasetError, match=r"^DistributedBatchSampler: rank must be an int in 0\.\.1; got 2$"):
        DistributedBatchSampler(inner, 2, 2)


def test_make_loader_rejects_a_rank_outside_the_world() -> None:
    with pytest.raises(ValueError, match=r"^make_loader: rank 2 of world_size 2 is out of range$"):
        make_loader(_dataset(4), "d", batch_size=2, shuffle=True, rank=2, world_size=2)


def test_single_process_context_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_distributed("cpu") is SINGLE
    assert SINGLE.is_main and not SINGLE.enabled
    assert SINGLE.broadcast_object({"a": 1}) == {"a": 1}
    assert SINGLE.all_gather_object(3) == [3]
    assert SINGLE.sum_floats([1, 2.5]) == [1.0, 2.5]
    with SINGLE.main_first():
        pass
    assert DistContext(1, 2).shard == (1, 2) and not DistContext(1, 2).is_main
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SerkitError, match=r"^environment: WORLD_SIZE is set but RANK is not; start distributed runs"):
        init_distributed("cpu")
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(SerkitError, match=r"^environment RANK=5: expected 0\.\.1 \(WORLD_SIZE=2\)$"):
        init_distributed("cpu")
    with pytest.raises(SerkitError, match=r"^--nproc: this process already runs under torchrun"):
        launch(2, ["run", "x.yaml"])
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(SerkitError, match=r"^environment WORLD_SIZE='two': expected an integer \(set by torchrun\)$"):
        init_distributed("cpu")


def test_run_nproc_starts_torchrun_with_the_same_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import serkit.engine.distributed as distributed

    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    calls: list[tuple[int, list[str]]] = []
    devices: list[str | None] = []

    def fake_launch(nproc: int, args: list[str], *, device: str | None = None) -> int:
        calls.append((nproc, list(args)))
        devices.append(device)  # the recipe's device: launch checks the GPUs before starting any rank
        return 3 if "--resume" in args else 0

    monkeypatch.setattr(distributed, "launch", fake_launch)
    args = ["--no-plugin", "foo", "run", str(recipe), "--set", "train.epochs=2", "--unset", "domains.xb"]
    assert run_cli([*args, "--out", "o", "--quiet", "--nproc", "2"]) == 0
    assert calls[-1] == (2, [*args, "--out", "o", "--quiet"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "recipe.yaml").write_text(RECIPE)
    assert run_cli(["run", "--resume", str(run_dir), "--nproc", "4"]) == 3  # the ranks' exit code
    assert calls[-1] == (4, ["run", "--resume", str(run_dir)])
    assert run_cli(["run", str(recipe), "--nproc", "0"]) == 2  # click: not in the range x>=1
    assert devices == ["cpu", "cpu"]  # the recipe says device: cpu


def _close(a: list[float], b: list[float], rtol: float = 1e-4) -> bool:
    return bool(np.allclose(a, b, rtol=rtol, atol=1e-6))


def test_two_gloo_processes_train_like_one(worker: tuple[Path, ModuleType], tmp_path: Path) -> None:
    path, module = worker
    out = tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(path), str(out)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads(out.read_text())
    assert ddp["world_size"] == 2
    single = module.summary(module.train()[0])
    plain = ddp["plain"]
    # the same steps per epoch as one process (every batch is split, none is dropped)
    assert ddp["plain_steps"] == {"a": math.ceil(41 / 8), "b": math.ceil(33 / 8)}
    for k, w in single["weights"].items():
        assert _close(plain["weights"][k], w), k
    for row_ddp, row_one in zip(plain["history"], single["history"], strict=True):
        assert row_ddp.keys() == row_one.keys()
        assert _close(list(row_ddp.values()), list(row_one.values())), (row_ddp, row_one)
    assert plain["best_epoch"] == single["best_epoch"]
    for which in ("val", "test"):
        for d, m in single[which].items():
            assert plain[which][d]["confusion"] == m["confusion"]
            assert (plain[which][d]["ua"], plain[which][d]["wa"], plain[which][d]["n"]) == (m["ua"], m["wa"], m["n"])
    assert _close(np.ravel(plain["x"]).tolist(), np.ravel(single["x"]).tolist())  # gathered in utterance order
    assert single["test"]["a"]["ua"] > 0.6  # the toy problem is learnt (chance 1/3)
    # balanced + contrastive loss: whole batches (a: 3 classes x 2, b: 2 x 2) per rank, ceil(batches / 2)
    # steps each, and the replicas (model and the losses' own parameters) stay equal
    assert ddp["balanced_steps"] == {"a": math.ceil(math.ceil(41 / 6) / 2), "b": math.ceil(math.ceil(33 / 4) / 2)}
    assert ddp["replicas_identical"]
    assert ddp["balanced_val"]["a"]["n"] == 12 and ddp["balanced_val"]["b"]["n"] == 10
    # a distributed run interrupted after epoch 2 and resumed equals the uninterrupted one (dropout on)
    assert ddp["resumed"]["resumed_from"] == 2
    assert ddp["resumed"]["weights"] == ddp["uninterrupted"]["weights"]
    assert ddp["resumed"]["history"] == ddp["uninterrupted"]["history"]


RECIPE = """\
name: ddp_cli
seed: 0
device: cpu  # gloo on every machine: the comparison with one process must not depend on visible GPUs
protocol: {type: speaker, k: 3, folds: [0]}
domains:
  xa: {dataset: {type: synthetic, languages: [xa], speakers: 6, per_class: 6, seed: 1}}
  xb: {dataset: {type: synthetic, languages: [xb], speakers: 6, per_class: 6, emotions: [angry, fear, sad], seed: 2}}
features:
  mfcc: {extractor: {type: mfcc, n_mfcc: 20, hop_ms: 20}, encoder: {type: mean_pool, stats: true}}
heads:
  default: {type: mlp, hidden: [32], activations: [relu], dropout: 0.0}
train: {epochs: 8, batch_size: 16}
data: {extract_workers: 0, speaker_norm: true}
"""


def _files(root: Path) -> set[str]:
    """Relative paths; event-log names (which hold a time stamp and a pid) by their folder."""
    return {
        str(p.parent.relative_to(root) / "<events>") if ".tfevents." in p.name else str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.slow
def test_serkit_run_nproc_2_matches_a_single_process_run(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_cli(["run", str(recipe), "--out", str(one), "--quiet"]) == 0  # also fills the feature store
    proc = subprocess.run(
        [sys.executable, "-m", "serkit", "run", str(recipe), "--out", str(two), "--quiet", "--nproc", "2"],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((two / "environment.json").read_text())["world_size"] == 2
    assert _files(two) == _files(one)  # one run folder, written by rank 0 only
    a, b = (json.loads((p / "results.json").read_text()) for p in (one, two))
    for d, m in a["domains"].items():
        assert b["domains"][d]["confusion"] == m["confusion"]
        assert (b["domains"][d]["ua"]["mean"], b["domains"][d]["wa"]["mean"]) == (m["ua"]["mean"], m["wa"]["mean"])
    assert a["domains"]["xa"]["ua"]["mean"] > 0.4  # learnt (chance 0.25)
    ra, rb = a["runs"][0], b["runs"][0]
    assert rb["best_epoch"] == ra["best_epoch"]
    for row_a, row_b in zip(ra["history"], rb["history"], strict=True):
        assert _close(list(row_b.values()), list(row_a.values())), (row_a, row_b)


def test_session_synchronises_its_cleanup_only_after_a_clean_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    import serkit.engine.distributed as mod

    calls: list[bool] = []
    ctx = DistContext(0, 2, 0, "gloo", owns_group=True)
    monkeypatch.setattr(mod, "init_distributed", lambda device="auto": ctx)
    monkeypatch.setattr(mod, "cleanup", lambda c, *, synchronize=True: calls.append(synchronize))
    with mod.distributed_session("cpu") as got:
        assert got is ctx
    with pytest.raises(KeyError), mod.distributed_session("cpu"):
        raise KeyError("a rank failed")  # the other ranks may never reach a barrier
    assert calls == [True, False]

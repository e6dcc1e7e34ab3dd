"""Epoch-level resume: the training state file format, and train_run continuing after a crash."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from serkit.engine.checkpoint import (
    TRAIN_STATE_FORMAT,
    delete_train_state,
    load_train_state,
    rng_state,
    save_train_state,
    set_rng_state,
)
from serkit.engine.train import RunOutcome, train_run
from serkit.errors import ModelError

LABELS = {"a": ["angry", "happy", "sad"], "b": ["angry", "sad"]}
SIZES = {"a": (30, 9, 9), "b": (25, 8, 8)}  # train, val, test
DIM = 6


class ArrayStore:
    """In-memory stand-in for a FeatureStore: key -> vector."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def get(self, key: str) -> np.ndarray:
        return self.arrays[key].copy()


class Crash(Exception):
    pass


def train(
    state_file: Path | None = None,
    *,
    resume: bool = False,
    crash_at: int | None = None,
    patience: int | None = None,
    epochs: int = 5,
    seen: list[int] | None = None,
    select_by: str = "val_loss",
) -> RunOutcome:
    """A toy 2-domain run with everything that carries state across epochs: dropout (torch
    RNG), a shuffled loader (its generator), a class-balanced loader (epoch-seeded sampler)
    with the contrastive loss (its own parameters), AdamW moments, best-so-far selection."""
    from serkit.config.recipe import validate_recipe_data
    from serkit.engine.data import FeatureDataset, StreamInfo, make_loader
    from serkit.engine.model import build_model
    from serkit.plugins import get_registry

    reg = get_registry()
    recipe = validate_recipe_data(
        {
            "name": "toy",
            "domains": {d: {"dataset": {"type": "synthetic"}} for d in LABELS},
            "features": {"v": {"extractor": {"type": "ge2e"}}},
            "heads": {"default": {"type": "mlp", "hidden": [16], "activations": ["relu"], "dropout": 0.3}},
        }
    )
    torch.manual_seed(0)
    model = build_model(recipe, reg, [StreamInfo("v", "vector", DIM)], LABELS)
    dim = int(model.fusion.out_dim)
    ce = reg.create("loss", {"type": "cross_entropy"})
    ge2e = reg.create("loss", {"type": "ge2e_contrastive", "min_per_class": 5})  # balanced batches of 5
    main = torch.nn.ModuleDict({d: ce.build(dim, len(labs)) for d, labs in LABELS.items()})
    aux = torch.nn.ModuleDict({d: ge2e.build(dim, len(labs)) for d, labs in LABELS.items()})
    opt = reg.create("optimizer", {"type": "adamw", "lr": 0.01}).build(
        [{"params": [*model.parameters(), *aux.parameters()]}]
    )
    rng = np.random.default_rng(1)
    arrays: dict[str, np.ndarray] = {}
    loaders: dict[str, dict[str, Any]] = {"train": {}, "val": {}, "test": {}}
    for d, sizes in SIZES.items():
        n = sum(sizes)
        targets = [i % len(LABELS[d]) for i in range(n)]
        centres = rng.normal(size=(len(LABELS[d]), DIM))
        keys = [f"{d}{i}" for i in range(n)]
        for k, t in zip(keys, targets, strict=True):
            arrays[k] = (centres[t] + rng.normal(size=DIM)).astype(np.float32)
        cut = np.cumsum(sizes)[:-1]
        for which, idx in zip(("train", "val", "test"), np.split(rng.permutation(n), cut), strict=True):
            ds = FeatureDataset({"v": keys}, {"v": ArrayStore(arrays)}, targets, idx.tolist())  # type: ignore[dict-item]
            balanced = 5 if (d == "a" and which == "train") else None
            loaders[which][d] = make_loader(ds, d, batch_size=10, shuffle=which == "train", seed=2,
                                            balanced_per_class=balanced)

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        if seen is not None:
            seen.append(epoch)
        if epoch == crash_at:
            raise Crash(epoch)

    return train_run(
        model, main, aux, {"a": 0.1, "b": 0.1}, opt, loaders["train"], loaders["val"], loaders["test"],
        epochs=epochs, select_by=select_by, grad_clip=1.0, patience=patience, device=torch.device("cpu"), seed=4,
        on_epoch_end=on_epoch, state_file=state_file, resume=resume,
    )


def assert_same(a: RunOutcome, b: RunOutcome) -> None:
    assert a.history == b.history
    assert (a.best_epoch, a.val, a.test) == (b.best_epoch, b.val, b.test)
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)


@pytest.fixture(scope="module")
def uninterrupted() -> RunOutcome:
    return train()


def test_train_state_round_trips_nested_values_as_json_and_safetensors(tmp_path: Path) -> None:
    w = torch.randn(3, 2)
    state = {
        "weights": {"a": w, "tied": w, "row": w[1]},  # shared memory is stored as copies
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"betas": (0.9, 0.99)}]},
        "numpy": np.arange(4, dtype=np.uint32),
        "floats": [math.inf, -math.inf, 0.1],
        "flags": (True, None, "x"),
    }
    path = tmp_path / "r0-f0.last.json"
    save_train_state(path, state, tag="e0001")
    save_train_state(path, state, tag="e0002")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r0-f0.last.e0002.safetensors", "r0-f0.last.json"]
    head = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))
    assert head["format"] == TRAIN_STATE_FORMAT and head["tensors"] == "r0-f0.last.e0002.safetensors"
    back = load_train_state(path)
    assert torch.equal(back["weights"]["tied"], w) and torch.equal(back["weights"]["row"], w[1])
    assert back["optimizer"]["state"][0]["step"].item() == 3.0  # int keys and tuples survive
    assert back["optimizer"]["param_groups"] == [{"betas": (0.9, 0.99)}]
    assert back["numpy"].dtype == np.uint32 and back["numpy"].tolist() == [0, 1, 2, 3]
    assert back["floats"] == [math.inf, -math.inf, 0.1] and back["flags"] == (True, None, "x")
    delete_train_state(path)
    assert list(tmp_path.iterdir()) == []


def test_rng_state_survives_a_round_trip(tmp_path: Path) -> None:
    import random

    save_train_state(tmp_path / "s.json", rng_state(), tag="x")
    expected = (random.random(), np.random.rand(), torch.rand(2).tolist())
    set_rng_state(load_train_state(tmp_path / "s.json"))
    assert (random.random(), np.random.rand(), torch.rand(2).tolist()) == expected


def test_broken_train_states_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with pytest.raises(ModelError, match=r"s\.json: training state not found$"):
        load_train_state(path)
    save_train_state(path, {"x": torch.ones(3)}, tag="e1")
    blob = tmp_path / "s.e1.safetensors"
    blob.write_bytes(blob.read_bytes()[:-4] + b"\x00\x00\x80\x7f")
    with pytest.raises(ModelError, match=r"s\.e1\.safetensors: checksum mismatch; the training state is corrupt$"):
        load_train_state(path)
    path.write_text('{"format": "other"}')
    with pytest.raises(ModelError, match=r"s\.json: not a serkit training state \(format 'other', expected "
                       r"'serkit-train-state-1'\)$"):
        load_train_state(path)


def test_resume_after_a_crash_equals_the_uninterrupted_run(tmp_path: Path, uninterrupted: RunOutcome) -> None:
    state = tmp_path / "r0-f0.last.json"
    with pytest.raises(Crash):
        train(state, crash_at=3)  # epochs 1 and 2 finished and saved
    assert load_train_state(state)["epoch"] == 2
    seen: list[int] = []
    resumed = train(state, resume=True, seen=seen)
    assert seen == [3, 4, 5] and resumed.resumed_from == 2
    assert_same(resumed, uninterrupted)
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["r0-f0.last.e0005.safetensors"]


def test_resume_after_early_stopping_trains_no_further(tmp_path: Path) -> None:
    state = tmp_path / "r0-f0.last.json"
    first: list[int] = []
    done = train(state, patience=1, epochs=30, seen=first, select_by="val_ua")
    assert len(first) < 30 and load_train_state(state)["stopped"]
    again: list[int] = []
    assert_same(train(state, resume=True, patience=1, epochs=30, seen=again, select_by="val_ua"), done)
    assert again == []


def test_a_corrupt_state_is_reported_and_the_run_starts_afresh(tmp_path: Path, uninterrupted: RunOutcome) -> None:
    state = tmp_path / "r0-f0.last.json"
    with pytest.raises(Crash):
        train(state, crash_at=2)
    blob = tmp_path / "r0-f0.last.e0001.safetensors"
    blob.write_bytes(blob.read_bytes()[:-8])
    seen: list[int] = []
    with pytest.warns(UserWarning, match=r"r0-f0\.last\.e0001\.safetensors: checksum mismatch; the training state "
                      r"is corrupt; this run starts again from epoch 1$"):
        again = train(state, resume=True, seen=seen)
    assert seen == [1, 2, 3, 4, 5] and again.resumed_from == 0
    assert_same(again, uninterrupted)

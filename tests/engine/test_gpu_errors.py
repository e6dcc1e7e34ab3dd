"""GPU-clean errors: more processes than GPUs is a SerkitError naming both numbers, never a CUDA traceback."""

from __future__ import annotations

import pytest
import torch

from serkit.engine import distributed
from serkit.errors import SerkitError


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_nproc_2_on_one_gpu_is_refused_before_anything_starts(one_gpu: None) -> None:
    want = (
        "--nproc 2: one process per GPU needs 2 GPUs, but this machine shows 1; use --nproc 1, or device: cpu to "
        "run 2 processes on the CPU (gloo)"
    )
    with pytest.raises(SerkitError) as err:
        distributed.launch(2, ["run", "r.yaml"], device="auto")
    assert str(err.value) == want
    with pytest.raises(SerkitError, match="needs 2 GPUs, but this machine shows 1"):
        distributed.launch(2, ["run", "r.yaml"], device="cuda")


def test_cpu_runs_and_enough_gpus_pass(one_gpu: None) -> None:
    distributed.check_gpus(2, "cpu")
    distributed.check_gpus(1, "auto")


def test_a_torchrun_rank_without_a_gpu_says_so(one_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: pytest.fail("must not touch CUDA"))
    with pytest.raises(SerkitError, match="needs 2 GPUs, but this machine shows 1"):
        distributed.init_distributed("auto")

from __future__ import annotations

import math

import pytest

from serkit.metrics import MetricError, mean_std, summarise_runs


def test_mean_and_sample_std() -> None:
    # mean 0.8; deviations -0.1, 0, 0.1 -> sample variance 0.02 / 2 = 0.01
    out = mean_std([0.7, 0.8, 0.9])
    assert out["mean"] == pytest.approx(0.8)
    assert out["std"] == pytest.approx(0.1)
    assert out["values"] == [0.7, 0.8, 0.9]


def test_two_values() -> None:
    # sample std of (1, 3): sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2)
    assert mean_std([1, 3])["std"] == pytest.approx(math.sqrt(2))


def test_single_value_has_zero_std() -> None:
    assert mean_std([0.5]) == {"mean": 0.5, "std": 0.0, "values": [0.5]}


def test_errors() -> None:
    with pytest.raises(MetricError, match=r"^mean_std needs at least one value; got none$"):
        mean_std([])
    with pytest.raises(MetricError, match=r"^mean_std needs finite values; got nan$"):
        mean_std([0.1, float("nan")])


def test_summarise_runs_keeps_shared_numeric_keys() -> None:
    runs = [
        {"ua": 0.6, "wa": 0.7, "n": 10, "confusion": [[1]], "ok": True, "only_here": 1.0},
        {"ua": 0.8, "wa": 0.9, "n": 10, "confusion": [[1]], "ok": True},
    ]
    out = summarise_runs(runs)
    assert list(out) == ["ua", "wa", "n"]
    assert out["ua"]["mean"] == pytest.approx(0.7)
    assert out["ua"]["std"] == pytest.approx(math.sqrt(0.02))
    assert out["n"] == {"mean": 10.0, "std": 0.0, "values": [10.0, 10.0]}
    with pytest.raises(MetricError, match="at least one run"):
        summarise_runs([])

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from serkit.errors import SerkitError
from serkit.metrics import (
    MetricError,
    classification_metrics,
    confusion,
    macro_f1,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)

Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 0, 2]


def test_hand_computed_example() -> None:
    assert weighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert unweighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert confusion(Y_TRUE, Y_PRED, 3).tolist() == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    # F1: class 0: tp 2, fp 1, fn 1 -> 4/6; class 1: tp 1, fp 1, fn 1 -> 2/4; class 2: 1
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((4 / 6 + 2 / 4 + 1) / 3)


def test_classification_metrics_dict() -> None:
    m = classification_metrics(np.array(Y_TRUE), torch.tensor(Y_PRED), 4)
    assert set(m) == {"ua", "wa", "macro_f1", "n", "confusion"}
    assert m["n"] == 6
    assert m["wa"] == pytest.approx(4 / 6)
    assert m["ua"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["confusion"] == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert all(type(v) is int for row in m["confusion"] for v in row)


def test_class_never_predicted() -> None:
    # class 1 is never predicted: recall 0 counts in UA
    y_true, y_pred = [0, 0, 1, 1], [0, 0, 0, 0]
    assert weighted_accuracy(y_true, y_pred) == 0.5
    assert unweighted_accuracy(y_true, y_pred) == pytest.approx((1 + 0) / 2)
    # F1 class 0: 2*2 / (4 + 2 + 0) = 2/3; class 1: 0
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 0) / 2)


def test_class_absent_from_y_true() -> None:
    # class 2 is predicted once but never true: no recall, so UA averages classes 0 and 1
    y_true, y_pred = [0, 0, 1, 1], [0, 2, 1, 1]
    recall = per_class_recall(y_true, y_pred, 4)
    assert recall[:2].tolist() == [0.5, 1.0]
    assert np.isnan(recall[2]) and np.isnan(recall[3])
    assert unweighted_accuracy(y_true, y_pred, 4) == pytest.approx(0.75)
    # F1 over classes 0, 1, 2 (3 is in neither): 2/3, 1, 0
    assert macro_f1(y_true, y_pred, 4) == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_perfect_and_single_class() -> None:
    assert classification_metrics([1, 1], [1, 1], 2)["ua"] == 1.0
    assert macro_f1([1, 1], [1, 1], 2) == 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda c: st.lists(
            st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1, max_size=40
        )
    )
)
def test_agrees_with_scikit_learn(pairs: list[tuple[int, int]]) -> None:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
    )

    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(accuracy_score(y_true, y_pred))
    assert macro_f1(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    np.testing.assert_array_equal(
        confusion(y_true, y_pred, 5), confusion_matrix(y_true, y_pred, labels=range(5))
    )
    # balanced accuracy = mean recall over the classes of y_true (it warns when y_pred has
    # a class y_true lacks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y_true, y_pred)
    assert unweighted_accuracy(y_true, y_pred, 5) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "message"),
    [
        ([], [], 3, "y_true is empty; metrics need at least one sample"),
        ([0, 1], [0], 3, "y_true and y_pred must have the same length; got 2 and 1"),
        ([[0, 1]], [[0, 1]], 3, "y_true must be 1-D class ids; got shape (1, 2)"),
        ([0, 3], [0, 1], 3, "class id 3 is out of range for n_classes=3"),
        ([0, -1], [0, 1], 3, "y_true has negative class id -1"),
        ([0, 1], [0.5, 1.0], 3, "y_pred must hold integer class ids; got non-integer values"),
        (["a"], ["b"], 3, "y_true must hold integer class ids; got dtype <U1"),
        ([True], [False], 3, "y_true must hold integer class ids; got dtype bool"),
        ([0], [0], 0, "n_classes must be a positive int; got 0"),
    ],
)
def test_errors(y_true: object, y_pred: object, n_classes: int, message: str) -> None:
    with pytest.raises(MetricError) as info:
        classification_metrics(y_true, y_pred, n_classes)
    assert str(info.value) == message
    assert isinstance(info.value, SerkitError) and isinstance(info.value, ValueError)


def test_float_ids_that_are_integers_are_accepted() -> None:
    assert weighted_accuracy(np.array([0.0, 1.0]), np.array([0, 0])) == 0.5

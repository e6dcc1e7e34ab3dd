from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from serkit.data.splits import random_split, speaker_folds, speaker_split
from serkit.errors import DatasetError


def corpus(n_speakers: int = 6, per: int = 10, labels: tuple[str, ...] = ("a", "b", "c", "d")):
    spk, lab = [], []
    for s in range(n_speakers):
        for i in range(per):
            spk.append(f"s{s}")
            lab.append(labels[i % len(labels)])
    return spk, lab


def test_random_split_is_disjoint_complete_stratified_and_seeded() -> None:
    _, labels = corpus(per=25)  # 150 utterances, ~37 per label
    s = random_split(labels, test=0.2, val=0.2, seed=3)
    tr, va, te = set(s.train), set(s.val), set(s.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert tr | va | te == set(range(len(labels)))
    per_label = Counter(labels)
    test_counts = Counter(labels[i] for i in s.test)
    for lab, n in per_label.items():
        assert test_counts[lab] == round(n * 0.2)
    val_counts = Counter(labels[i] for i in s.val)
    for lab, n in per_label.items():
        assert val_counts[lab] == round((n - round(n * 0.2)) * 0.2)
    assert random_split(labels, seed=3) == s
    assert random_split(labels, seed=4) != s


def test_random_split_keeps_a_training_item_for_tiny_classes() -> None:
    labels = ["a"] * 10 + ["b"] * 2
    s = random_split(labels, test=0.2, val=0.2, seed=0)
    assert any(labels[i] == "b" for i in s.train)


def test_speaker_folds_partition_speakers_and_balance() -> None:
    spk, _ = corpus(n_speakers=10)
    folds = speaker_folds(spk, 5, seed=1)
    assert len(folds) == 5
    flat = [s for f in folds for s in f]
    assert sorted(flat) == sorted(set(spk)) and len(flat) == len(set(flat))
    assert all(len(f) == 2 for f in folds)
    assert speaker_folds(spk, 5, seed=1) == folds
    loso = speaker_folds(spk, "all")
    assert len(loso) == 10 and all(len(f) == 1 for f in loso)


def test_speaker_folds_errors() -> None:
    with pytest.raises(DatasetError) as info:
        speaker_folds(["x", "x"], 2)
    assert str(info.value) == "speaker-independent folds need at least 2 speakers; found 1 (x)"
    with pytest.raises(DatasetError) as info:
        speaker_folds(["a", "b", "c"], 5)
    assert str(info.value) == "k=5 speaker folds but only 3 speakers; use k <= 3 or k: all"


def test_speaker_split_never_shares_a_speaker() -> None:
    spk, labels = corpus(n_speakers=8)
    folds = speaker_folds(spk, 4, seed=0)
    seen_test: set[str] = set()
    for f, test_spk in enumerate(folds):
        s = speaker_split(labels, spk, test_spk, val_speakers=0.2, seed=f)
        sets = [{spk[i] for i in part} for part in (s.train, s.val, s.test)]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        assert sets[2] == set(test_spk)
        assert len(sets[1]) >= 1
        assert set(s.train) | set(s.val) | set(s.test) == set(range(len(spk)))
        seen_test |= sets[2]
    assert seen_test == set(spk)


def one_emotion_corpus(n_speakers: int = 16, per: int = 5) -> tuple[list[str], list[str]]:
    """Speakers who each show one emotion (labels a-d in turn), as in spontaneous corpora."""
    spk = [f"s{s:02d}" for s in range(n_speakers) for _ in range(per)]
    return spk, ["abcd"[int(s[1:]) % 4] for s in spk]


def test_validation_speakers_show_every_label_when_speakers_show_one_emotion() -> None:
    spk, labels = one_emotion_corpus()
    plain_misses = 0
    for seed in range(20):
        s = speaker_split(labels, spk, ["s00", "s01", "s02", "s03"], val_speakers=0.34, seed=seed)
        assert {labels[i] for i in s.val} == set("abcd")  # 4 of the 12 training speakers
        assert {labels[i] for i in s.train} == set("abcd")
        assert len({spk[i] for i in s.val}) == 4
        order = np.random.default_rng(seed).permutation(12)[:4]  # what a plain random draw takes
        plain_misses += len({"abcd"[(4 + int(j)) % 4] for j in order}) < 4
    assert plain_misses >= 10  # the plain draw would have missed a label in most splits


def test_validation_speakers_of_an_acted_corpus_are_a_plain_random_draw() -> None:
    spk, labels = corpus(n_speakers=10)  # everyone acts every label
    for seed in range(5):
        s = speaker_split(labels, spk, ["s0", "s1"], val_speakers=0.25, seed=seed)
        train_spk = [f"s{i}" for i in range(2, 10)]
        expected = {train_spk[j] for j in np.random.default_rng(seed).permutation(8)[:2]}
        assert {spk[i] for i in s.val} == expected


def test_a_label_only_one_training_speaker_shows_stays_in_training() -> None:
    spk = ["t"] * 4 + ["u"] * 4 + ["v"] * 4 + ["w"] * 4
    labels = ["a"] * 4 + ["b"] * 4 + ["a"] * 4 + ["a"] * 2 + ["b"] * 2
    for seed in range(10):
        s = speaker_split(labels, spk, ["t"], val_speakers=0.5, seed=seed)
        assert "u" not in {spk[i] for i in s.val} or "w" not in {spk[i] for i in s.val}
        assert {labels[i] for i in s.train} == {"a", "b"}
        assert {labels[i] for i in s.val} == {"a", "b"}


def test_speaker_split_with_one_training_speaker_uses_its_utterances_for_val() -> None:
    spk, labels = corpus(n_speakers=2)
    s = speaker_split(labels, spk, ["s0"], seed=0)
    assert {spk[i] for i in s.test} == {"s0"}
    assert {spk[i] for i in s.train} == {spk[i] for i in s.val} == {"s1"}

"""Train/val/test splits: the paper's random split and speaker-independent folds.

All functions work on index lists of one domain's utterances and are deterministic
for a given seed, so two people running the same recipe get the same splits (they are
also written to the run folder).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from serkit.errors import DatasetError

__all__ = [
    "Split",
    "few_shot",
    "holdout_split",
    "labels_by_speaker",
    "predefined_splits",
    "random_split",
    "speaker_folds",
    "speaker_split",
]


@dataclass(frozen=True)
class Split:
    """Indices (into a domain's utterance list) of the three sets of one run."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    def role_of(self) -> dict[int, str]:
        """Index -> ``"train"`` / ``"val"`` / ``"test"``."""
        out = dict.fromkeys(self.train, "train")
        out.update(dict.fromkeys(self.val, "val"))
        out.update(dict.fromkeys(self.test, "test"))
        return out


def _stratified_take(
    indices: Sequence[int], labels: Sequence[str], fraction: float, rng: np.random.Generator
) -> tuple[list[int], list[int]]:
    """Split ``indices`` into (taken, rest), taking ``fraction`` of each label's items.

    Every label with at least 2 items keeps at least one item on each side.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        by_label[labels[i]].append(i)
    taken: list[int] = []
    rest: list[int] = []
    for label in sorted(by_label):
        items = np.array(by_label[label])
        items = items[rng.permutation(len(items))]
        n = len(items)
        k = round(n * fraction)
        if n >= 2:
            k = min(max(k, 1), n - 1)
        else:
            k = 0
        taken.extend(int(x) for x in items[:k])
        rest.extend(int(x) for x in items[k:])
    return sorted(taken), sorted(rest)


def random_split(labels: Sequence[str], *, test: float = 0.2, val: float = 0.2, seed: int = 0) -> Split:
    """The paper's split: stratified ``test`` fraction, then ``val`` of the rest.

    Speakers are ignored: test speakers are also training speakers.
    """
    rng = np.random.default_rng(seed)
    all_idx = list(range(len(labels)))
    test_idx, rest = _stratified_take(all_idx, labels, test, rng)
    val_idx, train_idx = _stratified_take(rest, labels, val, rng)
    return Split(tuple(train_idx), tuple(val_idx), tuple(test_idx))


def speaker_folds(speakers: Sequence[str], k: int | str, seed: int = 0) -> list[list[str]]:
    """Assign speakers to ``k`` folds (``"all"``: one speaker per fold).

    Speakers are shuffled with ``seed``, then assigned largest-first to the fold with
    the fewest utterances so far, which balances fold sizes.

    Raises:
        DatasetError: fewer than 2 speakers, ``k`` not an integer >= 2 or ``"all"``, or
            more folds than speakers.
    """
    counts = Counter(speakers)
    names = sorted(counts)
    if len(names) < 2:
        hint = " (a folder dataset needs speaker_regex to tell speakers apart)" if names == ["unknown"] else ""
        raise DatasetError(
            f"speaker-independent folds need at least 2 speakers; found {len(names)} ({', '.join(names)}){hint}"
        )
    if k != "all" and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2):
        raise DatasetError(f"k must be an integer >= 2 or 'all', got {k!r}")
    n_folds = len(names) if k == "all" else int(k)
    if n_folds > len(names):
        raise DatasetError(f"k={n_folds} speaker folds but only {len(names)} speakers; use k <= {len(names)} or k: all")
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    order.sort(key=lambda s: -counts[s])  # stable: ties keep the shuffled order
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    sizes = [0] * n_folds
    for spk in order:
        j = min(range(n_folds), key=lambda f: (sizes[f], f))
        folds[j].append(spk)
        sizes[j] += counts[spk]
    return [sorted(f) for f in folds]


def speaker_split(
    labels: Sequence[str],
    speakers: Sequence[str],
    test_speakers: Sequence[str],
    *,
    val_speakers: float = 0.2,
    seed: int = 0,
) -> Split:
    """Test = utterances of ``test_speakers``; val = a fraction of the other speakers.

    The validation speakers are drawn at random, but so that validation shows every
    label that two or more training speakers show and training keeps every label,
    where the speakers allow it (:func:`_val_speakers`): otherwise, in corpora whose
    speakers show one or two emotions, validation UA would ignore whole classes.

    At least one training speaker goes to validation when there are two or more; with
    a single training speaker, validation falls back to a stratified 20% of its
    utterances (and the split is still speaker-independent between train and test).
    """
    test_set = set(test_speakers)
    train_spk = sorted({s for s in speakers if s not in test_set})
    if not train_spk:
        raise DatasetError("speaker split: every speaker is a test speaker; nothing left to train on")
    rng = np.random.default_rng(seed)
    test_idx = [i for i, s in enumerate(speakers) if s in test_set]
    rest = [i for i, s in enumerate(speakers) if s not in test_set]
    if len(train_spk) >= 2:
        n_val = min(max(1, round(len(train_spk) * val_speakers)), len(train_spk) - 1)
        shown = labels_by_speaker((speakers[i], labels[i]) for i in rest)
        chosen = set(_val_speakers(train_spk, shown, n_val, rng))
        val_idx = [i for i in rest if speakers[i] in chosen]
        train_idx = [i for i in rest if speakers[i] not in chosen]
    else:
        val_idx, train_idx = _stratified_take(rest, labels, 0.2, rng)
    return Split(tuple(sorted(train_idx)), tuple(sorted(val_idx)), tuple(sorted(test_idx)))


def labels_by_speaker(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """speaker -> the labels of its utterances, from ``(speaker, label)`` pairs."""
    by_speaker: dict[str, set[str]] = {}
    for spk, lab in pairs:
        by_speaker.setdefault(spk, set()).add(lab)
    return by_speaker


#: Random draws of validation speakers tried before the greedy choice (:func:`_val_speakers`).
VAL_DRAWS = 1000


def _val_speakers(names: list[str], shown: dict[str, set[str]], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` of the training speakers ``names`` for validation.

    ``shown``: speaker -> the labels they show. A draw is *fine* when training keeps every
    label and validation shows every label that two or more training speakers show. The
    first fine draw of up to :data:`VAL_DRAWS` random draws is taken (a uniform choice
    among fine sets; in acted corpora the first draw, as without the condition). Where
    none is fine, speakers are taken in the first draw's order: first those who add a
    label validation lacks, then any, passing over a speaker whose taking would leave
    training without a label while others remain.
    """
    holders: Counter[str] = Counter(lab for s in names for lab in shown[s])
    wanted = {lab for lab, c in holders.items() if c >= 2}

    def fine(chosen: list[str]) -> bool:
        left = holders - Counter(lab for s in chosen for lab in shown[s])
        seen = set().union(*(shown[s] for s in chosen))
        return wanted <= seen and all(left[lab] for lab in holders)

    first = [names[i] for i in rng.permutation(len(names))]
    order = first
    for _ in range(VAL_DRAWS):
        if fine(order[:n]):
            return order[:n]
        order = [names[i] for i in rng.permutation(len(names))]
    return _greedy_val_speakers(first, shown, n, wanted, holders)


def _greedy_val_speakers(
    order: list[str], shown: dict[str, set[str]], n: int, wanted: set[str], holders: Counter[str]
) -> list[str]:
    """:func:`_val_speakers`' fallback: ``n`` speakers taken in ``order`` (``holders``: label ->
    how many of them show it)."""
    chosen: list[str] = []
    left = holders.copy()

    def keeps_training(s: str) -> bool:
        return all(left[lab] > 1 for lab in shown[s])

    def take(s: str) -> None:
        chosen.append(s)
        left.subtract(shown[s])

    for s in order:  # speakers who add a label that validation still lacks
        seen = set().union(*(shown[c] for c in chosen))
        if len(chosen) < n and shown[s] & (wanted - seen) and keeps_training(s):
            take(s)
    for strict in (True, False):  # then any, training's labels first
        for s in order:
            if len(chosen) < n and s not in chosen and (keeps_training(s) or not strict):
                take(s)
    return chosen


def holdout_split(labels: Sequence[str], *, val: float = 0.2, seed: int = 0) -> Split:
    """All utterances for training except a stratified ``val`` fraction; no test set.

    Used for the training domains of cross-corpus protocols.
    """
    rng = np.random.default_rng(seed)
    val_idx, train_idx = _stratified_take(list(range(len(labels))), labels, val, rng)
    return Split(tuple(train_idx), tuple(val_idx), ())


_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "eval": "test",
}


def predefined_splits(
    labels: Sequence[str],
    meta: Sequence[dict[str, object]],
    *,
    column: str = "auto",
    val: float = 0.2,
    seed: int = 0,
) -> list[tuple[str, Split]]:
    """Splits read from the data: a ``split`` column or cross-validation over a ``fold`` column.

    Returns:
        ``(name, split)`` pairs: one (``"split"``) for a split column, one per fold value
        (``"fold=<value>"``, in sorted order) for a fold column.

    Raises:
        DatasetError: the column is missing on some utterances, or holds unknown split names.
    """
    if column == "auto":
        column = "fold" if meta and all("fold" in m for m in meta) else "split"
    missing = [i for i, m in enumerate(meta) if column not in m or m[column] in (None, "")]
    if missing:
        raise DatasetError(
            f"protocol predefined: {len(missing)} utterance(s) have no {column!r} value "
            f"(e.g. position {missing[0]}); the manifest needs a '{column}' column on every row"
        )
    rng = np.random.default_rng(seed)
    if column == "fold":
        values = sorted({str(m["fold"]) for m in meta}, key=lambda v: (len(v), v))
        if len(values) < 2:
            raise DatasetError(f"protocol predefined: the fold column has one value ({values[0]}); need 2 or more")
        out = []
        for v in values:
            test_idx = [i for i, m in enumerate(meta) if str(m["fold"]) == v]
            rest = [i for i, m in enumerate(meta) if str(m["fold"]) != v]
            val_idx, train_idx = _stratified_take(rest, labels, val, rng)
            out.append((f"fold={v}", Split(tuple(train_idx), tuple(val_idx), tuple(sorted(test_idx)))))
        return out
    roles: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    bad = sorted({str(m["split"]) for m in meta if str(m["split"]).lower() not in _SPLIT_NAMES})
    if bad:
        raise DatasetError(
            f"protocol predefined: unknown split value(s) {bad}; expected train, val (valid, dev) or test"
        )
    for i, m in enumerate(meta):
        roles[_SPLIT_NAMES[str(m["split"]).lower()]].append(i)
    if not roles["test"] or not roles["train"]:
        raise DatasetError("protocol predefined: the split column needs both 'train' and 'test' rows")
    if not roles["val"]:
        roles["val"], roles["train"] = _stratified_take(roles["train"], labels, val, rng)
    return [("split", Split(tuple(sorted(roles["train"])), tuple(sorted(roles["val"])), tuple(sorted(roles["test"]))))]


def few_shot(indices: Sequence[int], labels: Sequence[str], k: int, seed: int = 0) -> tuple[int, ...]:
    """At most ``k`` of ``indices`` per label, drawn with ``seed`` (all of a label when fewer).

    Used by a domain's ``shots: K``: different seeds (repeats) draw different shots.
    """
    if k < 1:
        raise DatasetError(f"shots must be at least 1, got {k}")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        by_label[labels[i]].append(i)
    chosen: list[int] = []
    for label in sorted(by_label):
        items = np.array(by_label[label])
        chosen.extend(int(x) for x in items[rng.permutation(len(items))[:k]])
    return tuple(sorted(chosen))

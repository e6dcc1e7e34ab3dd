"""Is a difference between two variants real? Paired differences of runs that share a split.

Two run folders of the same recipe family (e.g. two variants of a sweep) evaluate the same
splits when they share the protocol, the seed and the data: their runs with the same
``(repeat, fold)`` then saw the same train / val / test utterances. For each pair of runs
and domain, :func:`difference` compares a metric (UA by default):

* **paired** (the default when possible): the per-run differences ``d_i = A_i - B_i`` of
  the runs sharing ``(repeat, fold)``; their mean, a 95 % confidence interval
  ``mean +- t_{0.975, n-1} * sd / sqrt(n)`` and the two-sided p-value of the **paired
  t-test** (:func:`scipy.stats.ttest_rel`). Why this test: on small corpora most of the
  spread between runs comes from the split (which speakers are tested), and pairing
  removes it, which no unpaired comparison of means can do; the t-test on the
  differences is the standard test for that and its interval is in the metric's units.
  Caveats (written under every table): with few runs (fewer than :data:`FEW_RUNS`) it has
  little power, so a non-significant difference is not evidence of no difference; the
  folds' training sets overlap, so the runs are not independent and the test is somewhat
  optimistic (Nadeau and Bengio, 2003); nothing is corrected for multiple comparisons.
* **unpaired** (the fallback, labelled as such): when the runs cannot be paired (another
  protocol, seed or data, or fewer than 2 shared ``(repeat, fold)``), the difference of
  the means with a Welch interval (Welch-Satterthwaite degrees of freedom) and the
  p-value of Welch's t-test (:func:`scipy.stats.ttest_ind` with ``equal_var=False``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from serkit.errors import SerkitError

__all__ = ["FEW_RUNS", "METRICS", "Difference", "difference", "differences", "differences_csv", "differences_markdown"]

#: Below this many runs (pairs), a table row says that the test has little power.
FEW_RUNS = 5
#: Metrics of ``results.json`` that can be compared (per run: ``runs[i]["test"][domain][metric]``).
METRICS = ("ua", "wa", "macro_f1")
_METRIC_NAME = {"ua": "UA", "wa": "WA", "macro_f1": "macro-F1"}
#: ``(mean, ci_low, ci_high, p)`` of a comparison.
_Stats = tuple[float, float | None, float | None, float | None]


@dataclass(frozen=True)
class Difference:
    """``A - B`` for one metric and domain.

    Attributes:
        a, b: the two runs' names (``A - B``).
        domain: the domain compared.
        metric: ``ua``, ``wa`` or ``macro_f1``.
        kind: ``paired`` or ``unpaired``.
        test: ``paired t-test`` or ``Welch t-test``.
        n_a, n_b: runs of A and B used (equal to ``n_pairs`` when paired).
        n_pairs: runs paired by ``(repeat, fold)`` (0 when unpaired).
        mean: mean difference (paired: mean of the per-run differences; unpaired:
            difference of the means).
        ci_low, ci_high: the confidence interval of ``mean`` (None when undefined: fewer
            than 2 runs on a side).
        p: two-sided p-value (None when undefined: too few runs, or all differences equal).
        confidence: the interval's level (0.95).
        note: why the runs were not paired, or that there are few runs; "" otherwise.
    """

    a: str
    b: str
    domain: str
    metric: str
    kind: Literal["paired", "unpaired"]
    test: str
    n_a: int
    n_b: int
    n_pairs: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    p: float | None
    confidence: float
    note: str

    def significant(self, alpha: float) -> bool:
        """Whether ``p < alpha``."""
        return self.p is not None and self.p < alpha

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_run(results: dict[str, Any], domain: str, metric: str) -> dict[tuple[int, int], float]:
    out: dict[tuple[int, int], float] = {}
    for r in results.get("runs", []):
        m = (r.get("test") or {}).get(domain)
        if m is not None and metric in m:
            out[(int(r["repeat"]), int(r["fold"]))] = float(m[metric])
    return out


def _why_unpairable(a: dict[str, Any], b: dict[str, Any], domain: str) -> str | None:
    """Why runs of ``a`` and ``b`` with the same (repeat, fold) did not see the same split, if so."""
    if a.get("protocol_params") != b.get("protocol_params"):
        return "different protocols"
    if a.get("seed") != b.get("seed"):
        return "different seeds"
    fa = ((a.get("provenance") or {}).get("data") or {}).get(domain)
    fb = ((b.get("provenance") or {}).get("data") or {}).get(domain)
    if fa is not None and fb is not None and fa.get("labelled") != fb.get("labelled"):
        return "different data"
    return None


def _paired(x: Sequence[float], y: Sequence[float], confidence: float) -> _Stats:
    from scipy import stats

    diffs = [u - v for u, v in zip(x, y, strict=True)]
    n = len(diffs)
    mean = math.fsum(diffs) / n
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0.0:
        return mean, mean, mean, None
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    p = float(stats.ttest_rel(x, y).pvalue)
    return mean, mean - half, mean + half, p


def _welch(x: Sequence[float], y: Sequence[float], confidence: float) -> _Stats:
    from scipy import stats

    na, nb = len(x), len(y)
    mean = math.fsum(x) / na - math.fsum(y) / nb
    if na < 2 or nb < 2:
        return mean, None, None, None
    va = float(stats.tvar(x)) / na
    vb = float(stats.tvar(y)) / nb
    se = math.sqrt(va + vb)
    if se == 0.0:
        return mean, mean, mean, None
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
    return mean, mean - half, mean + half, p


def difference(
    a: tuple[str, dict[str, Any]],
    b: tuple[str, dict[str, Any]],
    domain: str,
    metric: str = "ua",
    confidence: float = 0.95,
) -> Difference | None:
    """``A - B`` on ``domain`` (None when a side has no run of it); see the module docstring.

    Args:
        a, b: ``(name, results.json mapping)``.
        domain: the domain compared.
        metric: one of :data:`METRICS`.
        confidence: level of the interval, in (0, 1).

    Raises:
        SerkitError: an unknown metric or a confidence outside (0, 1).
    """
    if metric not in METRICS:
        raise SerkitError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if not 0.0 < confidence < 1.0:
        raise SerkitError(f"confidence must be in (0, 1); got {confidence!r}")
    ra, rb = _per_run(a[1], domain, metric), _per_run(b[1], domain, metric)
    if not ra or not rb:
        return None
    why = _why_unpairable(a[1], b[1], domain)
    shared = sorted(set(ra) & set(rb))
    if why is None and len(shared) >= 2:
        x, y = [ra[k] for k in shared], [rb[k] for k in shared]
        mean, lo, hi, p = _paired(x, y, confidence)
        notes = []
        left = len(ra) + len(rb) - 2 * len(shared)
        if left:
            notes.append(f"{left} run(s) without a partner left out")
        if len(shared) < FEW_RUNS:
            notes.append(f"few runs ({len(shared)}): low power")
        if p is None:
            notes.append("all differences equal: no test")
        return Difference(
            a[0], b[0], domain, metric, "paired", "paired t-test", len(shared), len(shared), len(shared),
            mean, lo, hi, p, confidence, "; ".join(notes),
        )
    x, y = list(ra.values()), list(rb.values())
    mean, lo, hi, p = _welch(x, y, confidence)
    reason = why or f"{len(shared)} shared (repeat, fold)"
    notes = [f"not paired: {reason}"]
    if min(len(x), len(y)) < 2:
        notes.append("needs 2 runs on each side for an interval")
    elif min(len(x), len(y)) < FEW_RUNS:
        notes.append(f"few runs ({len(x)} and {len(y)}): low power")
    return Difference(
        a[0], b[0], domain, metric, "unpaired", "Welch t-test", len(x), len(y), 0,
        mean, lo, hi, p, confidence, "; ".join(notes),
    )


def differences(
    runs: Sequence[tuple[str, dict[str, Any]]],
    metric: str = "ua",
    against: str | None = None,
    confidence: float = 0.95,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[Difference]:
    """Every pair of runs (``A`` before ``B`` in ``runs``, ``A - B``) on each domain both have.

    With ``against``, only each other run minus that one; with ``pairs``, only those
    ``(A, B)`` names.

    Raises:
        SerkitError: ``against`` or a name of ``pairs`` names no run of ``runs``.
    """
    names = [n for n, _ in runs]
    by_name = dict(runs)
    for name in [against, *(n for p in pairs or () for n in p)]:
        if name is not None and name not in by_name:
            raise SerkitError(f"{name!r}: not one of the runs compared ({', '.join(names)})")
    domains: list[str] = []
    for _, res in runs:
        domains += [d for d in res.get("domains", {}) if d not in domains]
    if pairs is not None:
        chosen = [((a, by_name[a]), (b, by_name[b])) for a, b in pairs]
    elif against is not None:
        chosen = [(r, (against, by_name[against])) for r in runs if r[0] != against]
    else:
        chosen = [(runs[i], runs[j]) for i in range(len(runs)) for j in range(i + 1, len(runs))]
    out = []
    for ra, rb in chosen:
        for d in domains:
            diff = difference(ra, rb, d, metric, confidence)
            if diff is not None:
                out.append(diff)
    return out


def _num(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "-"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def differences_markdown(diffs: Sequence[Difference], alpha: float = 0.05) -> str:
    """A ``## Differences`` section: one row per pair and domain, significant rows marked.

    Empty string when there is nothing to compare.
    """
    if not diffs:
        return ""
    metric = _METRIC_NAME.get(diffs[0].metric, diffs[0].metric)
    level = round(100 * diffs[0].confidence)
    lines = [
        f"## Differences ({metric}, A − B)",
        "",
        f"| A − B | domain | runs | mean Δ{metric} | {level} % CI | p | test | significant (α = {alpha:g}) | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in diffs:
        runs = f"{d.n_pairs} pairs" if d.kind == "paired" else f"{d.n_a} / {d.n_b}"
        ci = "-" if d.ci_low is None else f"[{_num(d.ci_low)}, {_num(d.ci_high)}]"
        sig = "**yes**" if d.significant(alpha) else "no"
        lines.append(
            f"| {d.a} − {d.b} | {d.domain} | {runs} | {_num(d.mean)} | {ci} | {_p(d.p)} | "
            f"{d.test}{'' if d.kind == 'paired' else ' (unpaired)'} | {sig} | {d.note or ''} |"
        )
    lines += [
        "",
        "Paired: the runs of A and B that share (repeat, fold), hence the same split, are differenced run by run "
        "and a paired t-test is applied to the differences (pairing removes the split-to-split spread). Unpaired: "
        "the runs cannot be paired (another protocol, seed or data), so the means are compared with Welch's "
        f"t-test. With fewer than {FEW_RUNS} runs a test has little power: 'no' is not evidence of no difference. "
        "The folds' training sets overlap, so the runs are not independent and p-values are somewhat optimistic; "
        "no correction for multiple comparisons.",
    ]
    return "\n".join(lines) + "\n"


def differences_csv(diffs: Sequence[Difference], alpha: float = 0.05) -> str:
    """The same as CSV, one row per difference, with a ``significant`` column (p < alpha)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["a", "b", "domain", "metric", "kind", "test", "n_a", "n_b", "n_pairs", "mean", "ci_low", "ci_high", "p"]
    w.writerow([*cols, "significant", "note"])
    for d in diffs:
        row = d.to_dict()
        w.writerow([*("" if row[c] is None else row[c] for c in cols), d.significant(alpha), d.note])
    return buf.getvalue()

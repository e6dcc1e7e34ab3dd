"""``serkit.features.admin`` and ``serkit cache ...``: list, verify/repair, prune, export."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from serkit.cli.cache_cmd import cache, human_bytes
from serkit.errors import CacheError, SerkitError
from serkit.features.admin import (
    default_root,
    delete_store_files,
    export_store,
    find_store,
    list_stores,
    select_prunable,
    verify_store,
)
from serkit.features.store import FeatureStore

DAY = 86400.0


@pytest.fixture
def stores(tmp_path: Path, frame_stats_cls: type) -> dict[str, FeatureStore]:
    """Two stores in tmp_path/features: 'seq' (5 items (L, 3)) and 'vec' (float16, 3 items (3,))."""
    root = tmp_path / "features"
    rng = np.random.default_rng(0)
    seq = FeatureStore(root, frame_stats_cls())
    seq.put_many([(f"k{i}", rng.standard_normal((i + 2, 3)).astype(np.float32)) for i in range(5)])
    vec = FeatureStore(root, frame_stats_cls(kind="vector", frame=200), dtype="float16")
    vec.put_many([(f"v{i}", rng.standard_normal(3).astype(np.float32)) for i in range(3)])
    seq.close()
    vec.close()
    return {"seq": seq, "vec": vec}


def _corrupt(path: Path, key: str) -> None:
    """Flip the first byte of an item's BLOB behind the store's back."""
    conn = sqlite3.connect(path)
    (data,) = conn.execute("SELECT data FROM features WHERE key = ?", (key,)).fetchone()
    bad = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
    conn.execute("UPDATE features SET data = ? WHERE key = ?", (bad, key))
    conn.commit()
    conn.close()


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    for p in [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]:
        if p.exists():
            os.utime(p, (t, t))


# ------------------------------------------------------------------ list
def test_list_stores_describes_each_store(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    listing = list_stores(tmp_path / "features")
    assert listing.problems == []
    by_fp = {s.fingerprint: s for s in listing.stores}
    seq, vec = by_fp[stores["seq"].fingerprint], by_fp[stores["vec"].fingerprint]
    assert (seq.extractor, seq.output, seq.dim) == ("frame_stats", "sequence", 3)
    assert (seq.items, seq.dtypes) == (5, ("float32",))
    assert (vec.output, vec.items, vec.dtypes, vec.store_dtype) == ("vector", 3, ("float16",), "float16")
    assert seq.params == {"frame": 400, "kind": "sequence"}
    assert seq.path == stores["seq"].path and seq.name == stores["seq"].path.stem
    assert seq.size_bytes >= seq.path.stat().st_size > 0
    assert abs(seq.modified - time.time()) < 60
    assert seq.short_params() == 'frame=400, kind="sequence"'
    assert seq.short_params(10) == "frame=4..."


def test_listing_does_not_touch_the_store(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    path = stores["seq"].path
    _age(path, 10)
    before = path.stat().st_mtime
    list_stores(tmp_path / "features")
    verify_store(path)
    assert path.stat().st_mtime == before
    assert find_store(tmp_path / "features", stores["seq"].fingerprint).modified == pytest.approx(before)


def test_non_store_files_are_reported_not_raised(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    (root / "junk.sqlite").write_text("not a database")
    (root / "notes.txt").write_text("hello")
    other = sqlite3.connect(root / "other.sqlite")
    other.execute("CREATE TABLE t (x)")
    other.close()
    listing = list_stores(root)
    assert len(listing.stores) == 2
    problems = {p.path.name: p.message for p in listing.problems}
    assert problems["notes.txt"] == "not a store file: stores end in .sqlite (ignored)"
    assert problems["junk.sqlite"] == (
        f"not a readable feature store (file is not a database); the store file is damaged; 'serkit cache verify "
        f"--root {root} --store junk --repair' keeps its readable items (the next run recomputes the rest), "
        f"'serkit cache prune --root {root} --store junk --yes' deletes the store"
    )
    assert problems["other.sqlite"].startswith("not a serkit feature store (no such table: meta")


def test_missing_root_is_empty_and_default_root(tmp_path: Path, session_cache: Path) -> None:
    assert list_stores(tmp_path / "nowhere").stores == []
    assert default_root() == session_cache / "features"


def test_find_store_selectors(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    seq = stores["seq"]
    assert find_store(root, seq.fingerprint).path == seq.path
    assert find_store(root, seq.fingerprint[:6]).path == seq.path
    assert find_store(root, seq.path.name).path == seq.path
    assert find_store(root, seq.path.stem).path == seq.path
    assert find_store(root, str(seq.path)).path == seq.path
    with pytest.raises(CacheError, match=r"store 'frame_stats' is ambiguous in .*: it matches frame_stats-"):
        find_store(root, "frame_stats")
    with pytest.raises(CacheError, match=r"no feature store matches 'mfcc' in .*features \(stores: frame_stats-"):
        find_store(root, "mfcc")


# ------------------------------------------------------------------ verify
def test_verify_finds_and_repairs_a_corrupt_item(
    stores: dict[str, FeatureStore], tmp_path: Path, frame_stats_cls: type
) -> None:
    seq = stores["seq"]
    report = verify_store(seq.path)
    assert (report.checked, report.corrupt, report.ok) == (5, [], True)
    _corrupt(seq.path, "k2")
    with pytest.raises(CacheError, match="checksum mismatch"):
        seq.get("k2")
    report = verify_store(seq.path)
    assert [c.key for c in report.corrupt] == ["k2"]
    assert report.corrupt[0].reason.startswith("checksum mismatch (stored ")
    assert report.repaired == 0 and not report.ok
    fixed = verify_store(seq.path, repair=True)
    assert (fixed.repaired, fixed.ok) == (1, True)
    reopened = FeatureStore(tmp_path / "features", frame_stats_cls())
    assert reopened.keys() == ["k0", "k1", "k3", "k4"]
    assert reopened.missing(["k2", "k3"]) == ["k2"]  # the next extraction recomputes it
    reopened.close()
    assert verify_store(seq.path).corrupt == []


def test_verify_checks_shape_against_the_meta(stores: dict[str, FeatureStore]) -> None:
    path = stores["seq"].path
    conn = sqlite3.connect(path)
    conn.execute("UPDATE features SET shape = '[3, 2]' WHERE key = 'k0'")  # 6 values, wrong dim
    conn.execute("UPDATE features SET shape = '[9, 3]' WHERE key = 'k1'")  # too many values
    conn.commit()
    conn.close()
    reasons = {c.key: c.reason for c in verify_store(path).corrupt}
    assert reasons == {
        "k0": "shape [3, 2] does not match the store's sequence output (L, 3) with L >= 1",
        "k1": "36 bytes do not hold a float32 array of shape [9, 3]",
    }


# ------------------------------------------------------------------ prune
def test_select_prunable_by_age_and_name(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    seq, vec = stores["seq"], stores["vec"]
    _age(seq.path, 40)
    assert [s.path for s in select_prunable(root, older_than_days=30)] == [seq.path]
    assert select_prunable(root, older_than_days=50) == []
    assert [s.path for s in select_prunable(root, store=vec.fingerprint)] == [vec.path]
    assert select_prunable(root, store=vec.fingerprint, older_than_days=30) == []
    with pytest.raises(SerkitError, match=r"cache prune: give --older-than DAYS or --store NAME \(or both\)"):
        select_prunable(root)
    freed = delete_store_files(seq.path)
    assert freed > 0
    assert sorted(p.name for p in root.iterdir()) == sorted(
        p.name for p in root.iterdir() if p.name.startswith(vec.path.name)
    )
    assert [s.path for s in list_stores(root).stores] == [vec.path]


# ------------------------------------------------------------------ export
def test_export_npz_round_trip(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    vec = stores["vec"]
    out = tmp_path / "exp" / "vec.npz"
    result = export_store(tmp_path / "features", vec.fingerprint, "npz", out)
    assert (result.items, result.path) == (3, out)
    with np.load(out) as z:
        assert sorted(z.files) == ["v0", "v1", "v2"]
        for k in z.files:
            assert z[k].dtype == np.float32
            np.testing.assert_array_equal(z[k], vec.get(k))
    assert [p.name for p in out.parent.iterdir()] == ["vec.npz"]  # no temp files left
    with pytest.raises(SerkitError, match=r"vec.npz already exists; remove it, choose another --out or pass --force"):
        export_store(tmp_path / "features", vec.fingerprint, "npz", out)
    assert export_store(tmp_path / "features", vec.fingerprint, "npz", out, overwrite=True).items == 3


def test_export_npy_folder_with_index(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    seq = stores["seq"]
    out = tmp_path / "seq_npy"
    export_store(tmp_path / "features", seq.fingerprint, "npy", out)
    rows = (out / "index.csv").read_text().splitlines()
    assert rows[0] == "key,shape"
    assert rows[1:] == [f"k{i},{i + 2}x3" for i in range(5)]
    for i in range(5):
        np.testing.assert_array_equal(np.load(out / f"k{i}.npy"), seq.get(f"k{i}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features", "seq_npy"]


def test_export_refuses_corrupt_items_and_writes_nothing(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    seq = stores["seq"]
    _corrupt(seq.path, "k4")
    out = tmp_path / "seq.npz"
    with pytest.raises(CacheError, match=r"item k4 is corrupt \(checksum mismatch.*cache verify --store"):
        export_store(tmp_path / "features", seq.fingerprint, "npz", out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]


def test_export_hdf5_without_h5py(
    stores: dict[str, FeatureStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(SerkitError, match=r"needs h5py.*pip install h5py"):
        export_store(tmp_path / "features", stores["seq"].fingerprint, "hdf5", tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


def test_export_hdf5_round_trip(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    seq = stores["seq"]
    out = tmp_path / "seq.h5"
    export_store(tmp_path / "features", seq.fingerprint, "hdf5", out)
    with h5py.File(out, "r") as f:
        assert f.attrs["fingerprint"] == seq.fingerprint
        np.testing.assert_array_equal(f["k3"][()], seq.get("k3"))


# ------------------------------------------------------------------ CLI
def test_cli_ls_table_and_json(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    (root / "junk.sqlite").write_text("garbage")
    runner = CliRunner()
    res = runner.invoke(cache, ["ls", "--root", str(root), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert sorted(s["items"] for s in data["stores"]) == [3, 5]
    assert [p["path"] for p in data["problems"]] == [str(root / "junk.sqlite")]
    res = runner.invoke(cache, ["ls", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert stores["seq"].fingerprint in res.output and "2 store(s)" in res.output
    assert "junk.sqlite" in res.output and "not a readable feature store" in res.output
    wide = runner.invoke(cache, ["ls", "--root", str(root)], env={"COLUMNS": "200"})
    assert wide.exit_code == 0, wide.output
    assert "┃ fingerprint" in wide.output and stores["vec"].fingerprint in wide.output
    assert 'frame=200, kind="vector"' in wide.output
    res = runner.invoke(cache, ["ls", "--root", str(tmp_path / "empty")])
    assert res.exit_code == 0 and "no feature stores in" in res.output


def test_cli_verify_and_repair(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    seq = stores["seq"]
    runner = CliRunner()
    res = runner.invoke(cache, ["verify", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert res.output.count("all sound") == 2
    _corrupt(seq.path, "k1")
    res = runner.invoke(cache, ["verify", "--root", str(root)])
    assert res.exit_code == 1
    assert f"{seq.path}: 5 item(s) checked, 1 corrupt" in res.output
    assert "  k1: checksum mismatch" in res.output and "--repair" in res.output
    res = runner.invoke(cache, ["verify", "--root", str(root), "--store", seq.fingerprint, "--repair"])
    assert res.exit_code == 0, res.output
    assert "deleted 1 corrupt item(s); the next run recomputes them" in res.output
    res = runner.invoke(cache, ["verify", "--root", str(root), "--store", seq.fingerprint])
    assert res.exit_code == 0 and "4 item(s) checked, all sound" in res.output


def test_cli_verify_reports_unreadable_store_file(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    (root / "broken-0123456789abcdef.sqlite").write_bytes(b"\x00" * 200)
    res = CliRunner().invoke(cache, ["verify", "--root", str(root)])
    assert res.exit_code == 1
    assert f"{root / 'broken-0123456789abcdef.sqlite'}: not a readable feature store (file is not a database); the " \
        "store file is damaged; " in res.output
    assert (
        f"'serkit cache verify --root {root} --store broken-0123456789abcdef --repair' keeps its readable items "
        f"(the next run recomputes the rest), 'serkit cache prune --root {root} --store broken-0123456789abcdef "
        "--yes' deletes the store" in res.output
    )


def test_cli_prune(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    seq, vec = stores["seq"], stores["vec"]
    _age(seq.path, 40)
    runner = CliRunner()
    res = runner.invoke(cache, ["prune", "--root", str(root), "--older-than", "30", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would delete 1 store(s)" in res.output and seq.path.name in res.output
    assert seq.path.exists()
    res = runner.invoke(cache, ["prune", "--root", str(root), "--older-than", "30"], input="n\n")
    assert res.exit_code == 0 and "nothing deleted" in res.output and seq.path.exists()
    res = runner.invoke(cache, ["prune", "--root", str(root), "--older-than", "30"], input="y\n")
    assert res.exit_code == 0 and "deleted 1 store(s), freed" in res.output
    assert not seq.path.exists() and vec.path.exists()
    res = runner.invoke(cache, ["prune", "--root", str(root), "--store", vec.fingerprint, "--yes"])
    assert res.exit_code == 0 and not vec.path.exists()
    assert list(root.iterdir()) == []
    res = runner.invoke(cache, ["prune", "--root", str(root)])
    assert res.exit_code == 2 and "give --older-than DAYS, --store NAME or --hash-index (or several)" in res.output


def test_cli_export_and_errors(stores: dict[str, FeatureStore], tmp_path: Path) -> None:
    root = tmp_path / "features"
    out = tmp_path / "seq.npz"
    runner = CliRunner()
    args = ["export", "--root", str(root), "--store", stores["seq"].fingerprint, "--format", "npz"]
    res = runner.invoke(cache, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"exported 5 item(s) to {out} (npz)" in res.output
    with np.load(out) as z:
        np.testing.assert_array_equal(z["k0"], stores["seq"].get("k0"))
    res = runner.invoke(cache, ["export", "--root", str(root), "--store", "nope", "--format", "npz", "--out", "x"])
    assert isinstance(res.exception, CacheError)
    assert "no feature store matches 'nope'" in str(res.exception)


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 1536, 5 * 1024**3)] == ["512 B", "1.5 KiB", "5.0 GiB"]

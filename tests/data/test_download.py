"""``serkit data download``: pinned checksums, refusals, and safe, atomic, resumable unpacking.

Archives are built in the tests and served by a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serkit.builtin.datasets.ravdess import RavdessDataset
from serkit.cli.main import main
from serkit.data.download import (
    CATALOGUE,
    MARKER,
    DownloadRefused,
    RemoteFile,
    Source,
    UnsafeArchiveError,
    download,
    safe_extract,
    source_for,
)
from serkit.errors import DatasetError
from serkit.plugins import get_registry


# ------------------------------------------------------------------ helpers
@dataclass
class Server:
    url: str
    folder: Path
    requests: list[str] = field(default_factory=list)

    def put(self, name: str, payload: bytes) -> tuple[str, str]:
        """Serve ``payload`` as ``name``; returns its URL and SHA-256."""
        (self.folder / name).write_bytes(payload)
        return f"{self.url}/{name}", hashlib.sha256(payload).hexdigest()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            seen.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", folder, seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def wav_bytes(seconds: float = 0.2, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    x = 0.1 * np.random.default_rng(0).standard_normal(round(seconds * rate))
    sf.write(buf, x.astype("float32"), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


RAVDESS_FILES = {
    "RAVDESS/Actor_01/03-01-05-01-01-01-01.wav": wav_bytes(),
    "RAVDESS/Actor_01/03-01-01-01-01-01-01.wav": wav_bytes(),
    "RAVDESS/Actor_02/03-01-04-02-02-01-02.wav": wav_bytes(),
}


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def zip_symlink(name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.create_system = 3  # unix
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


def make_tar(members: list[tuple[str, str, bytes | str]], mode: str = "w:gz") -> bytes:
    """``(name, kind, data)``: kind file (data bytes), dir, sym/hard (data = link target), chr, fifo."""
    buf = io.BytesIO()
    types = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE}
    types["fifo"] = tarfile.FIFOTYPE
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                info.mode = 0o644
                tf.addfile(info, io.BytesIO(payload))
                continue
            info.type = types[kind]
            if kind in ("sym", "hard"):
                info.linkname = str(payload)
            tf.addfile(info)
    return buf.getvalue()


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (relative, POSIX, sorted), links not followed."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# ------------------------------------------------------------------ downloading
def test_download_verifies_unpacks_writes_marker_and_skips_the_second_time(server: Server, tmp_path: Path) -> None:
    url, sha = server.put("speech.zip", make_zip(RAVDESS_FILES))
    source = Source(dataset="ravdess", licence="CC BY-NC-SA 4.0", files=(RemoteFile(url, sha),))
    dest = tmp_path / "corpora"
    messages: list[str] = []

    result = download(source, dest, progressbar=False, log=messages.append)

    folder = dest / "ravdess"
    assert result.folder == folder and result.skipped is False
    assert result.root == (folder / "RAVDESS").resolve()  # the single top-level folder
    for name, payload in RAVDESS_FILES.items():
        assert (folder / name).read_bytes() == payload
    marker = json.loads((folder / MARKER).read_text())
    assert marker == {
        "dataset": "ravdess",
        "files": [{"url": url, "name": "speech.zip", "sha256": sha}],
        "root": "RAVDESS",
    }
    assert not (dest / ".downloads" / "speech.zip").exists()  # archive removed after unpacking
    assert not list(dest.glob(".ravdess.partial-*"))
    assert server.requests == ["/speech.zip"]
    assert messages[0] == f"downloading {url} ..."
    # the unpacked corpus is what the dataset reads
    ids = [u.id for u in RavdessDataset(root=str(result.root)).utterances()]
    assert ids == ["03-01-01-01-01-01-01", "03-01-05-01-01-01-01", "03-01-04-02-02-01-02"]

    again = download(source, dest, progressbar=False, log=messages.append)
    assert again.skipped is True and again.root == result.root
    assert server.requests == ["/speech.zip"]  # nothing fetched again
    assert messages[-1] == f"ravdess is already downloaded and unpacked in {folder}"


def test_wrong_checksum_names_both_hashes_and_unpacks_nothing(server: Server, tmp_path: Path) -> None:
    url, sha = server.put("speech.zip", make_zip(RAVDESS_FILES))
    pinned = "ab" * 32
    source = Source(dataset="ravdess", files=(RemoteFile(url, pinned),))
    dest = tmp_path / "corpora"
    with pytest.raises(DatasetError) as err:
        download(source, dest, progressbar=False)
    assert str(err.value) == (
        f"ravdess: checksum mismatch for {url}: expected sha256 {pinned}, got {sha}; the download was deleted "
        "and nothing was unpacked (a changed or corrupted file, or a wrong pin)"
    )
    assert not (dest / "ravdess").exists()
    assert not list(dest.glob(".ravdess.partial-*"))
    assert not list((dest / ".downloads").glob("*"))


def test_unpinned_entry_is_refused_with_the_manual_steps(server: Server, tmp_path: Path) -> None:
    url, sha = server.put("speech.zip", make_zip(RAVDESS_FILES))
    source = Source(
        dataset="ravdess",
        homepage="https://example.org/ravdess",
        how_to_get="download it and unpack it",
        files=(RemoteFile(url),),
    )
    dest = tmp_path / "corpora"
    with pytest.raises(DownloadRefused) as err:
        download(source, dest, progressbar=False)
    assert str(err.value) == (
        "ravdess: refusing to download without a pinned SHA-256 checksum (serkit pins only checksums it has "
        f"verified):\n  {url}\n"
        "manual steps:\n"
        "  1. download the file(s) above (homepage: https://example.org/ravdess)\n"
        "  2. compute the checksum: sha256sum speech.zip\n"
        "  3. rerun with --sha256 <that checksum> so that serkit verifies and unpacks the download, "
        f"or unpack it yourself under {dest} and pass the unpacked folder as root\n"
        "how to get it: download it and unpack it"
    )
    assert server.requests == [] and not dest.exists()

    # the user's own pin is verified, then used
    with pytest.raises(DatasetError, match=f"expected sha256 {'cd' * 32}, got {sha}"):
        download(source, dest, sha256="cd" * 32, progressbar=False)
    result = download(source, dest, sha256=sha.upper(), progressbar=False)
    assert (result.root / "Actor_02/03-01-04-02-02-01-02.wav").is_file()
    # rerunning without the pin finds the finished download
    assert download(source, dest, progressbar=False).skipped is True

    with pytest.raises(DatasetError, match=r"^--sha256 'xyz': expected 64 hexadecimal digits"):
        download(source, tmp_path / "other", sha256="xyz")


def test_builtin_sources_refuse_until_pinned_and_licensed_ones_point_to_the_homepage(tmp_path: Path) -> None:
    ravdess = source_for("ravdess")
    assert ravdess.files[0].url == "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip"
    assert ravdess.licence == RavdessDataset.licence and ravdess.how_to_get == RavdessDataset.how_to_get
    with pytest.raises(DownloadRefused, match="refusing to download without a pinned SHA-256") as err:
        download(ravdess, tmp_path / "c")
    assert ravdess.files[0].url in str(err.value) and "manual steps:" in str(err.value)

    iemocap = source_for("iemocap")
    with pytest.raises(DownloadRefused) as err:
        download(iemocap, tmp_path / "c")
    assert str(err.value) == (
        "iemocap cannot be downloaded automatically (licence: research licence from USC SAIL (release form "
        "required; no redistribution)); request access at https://sail.usc.edu/iemocap/\n"
        f"how to get it: {iemocap.how_to_get}"
    )
    for name in ("savee", "emovo", "shemo", "aesdd"):
        with pytest.raises(DownloadRefused, match=f"request access at {source_for(name).homepage}"):
            download(source_for(name), tmp_path / "c")

    with pytest.raises(DownloadRefused, match=r"^cremad: serkit has no direct download"):
        download(source_for("cremad"), tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_catalogue_is_consistent() -> None:
    registry = get_registry()
    for name, entry in CATALOGUE.items():
        assert ("dataset", name) in registry, name
        source = source_for(name)
        assert source.homepage and source.licence and source.how_to_get, name
        if entry.access == "request":
            assert not entry.files, name
        for f in entry.files:
            assert f.url.startswith(("https://", "http://")), name
            assert f.sha256 is None or len(f.sha256) == 64, name


def test_leftovers_are_cleaned_and_foreign_folders_kept(server: Server, tmp_path: Path) -> None:
    url, sha = server.put("speech.zip", make_zip(RAVDESS_FILES))
    source = Source(dataset="ravdess", files=(RemoteFile(url, sha),), root="RAVDESS/Actor_01")
    dest = tmp_path / "corpora"
    (dest / ".ravdess.partial-old").mkdir(parents=True)  # an interrupted run
    (dest / ".ravdess.partial-old" / "half.wav").write_bytes(b"half")
    result = download(source, dest, progressbar=False, keep_archives=True)
    assert result.root == (dest / "ravdess/RAVDESS/Actor_01").resolve()
    assert not (dest / ".ravdess.partial-old").exists()
    assert (dest / ".downloads" / "speech.zip").is_file()

    mine = tmp_path / "mine"
    (mine / "ravdess").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        download(source, mine, progressbar=False)
    assert str(err.value) == (
        f"{mine / 'ravdess'} exists but was not made by a finished `serkit data download` (no {MARKER}); "
        "remove it or choose another --dest"
    )

    bad_root = Source(dataset="ravdess", files=(RemoteFile(url, sha),), root="wav")
    with pytest.raises(
        DatasetError, match=r"the archive has no folder 'wav' to use as root; its top level holds: RAVDESS"
    ):
        download(bad_root, tmp_path / "third", progressbar=False)
    assert not (tmp_path / "third" / "ravdess").exists()


# ------------------------------------------------------------------ safe extraction
def _refusal(archive: Path, member: str, reason: str) -> str:
    return f"{archive}: refusing to extract member {member!r}: {reason}; nothing was extracted"


@pytest.mark.parametrize(
    ("payload", "member", "reason"),
    [
        (make_zip({"ok.txt": b"1", "../evil.txt": b"x"}), "../evil.txt", "'..' component leaves the destination"),
        (
            make_zip({"ok.txt": b"1", "a/../../evil.txt": b"x"}),
            "a/../../evil.txt",
            "'..' component leaves the destination",
        ),
        (make_zip({"ok.txt": b"1", "/tmp/evil.txt": b"x"}), "/tmp/evil.txt", "absolute path"),
        (make_zip({"ok.txt": b"1", "..\\evil.txt": b"x"}), "..\\evil.txt", "'..' component leaves the destination"),
        (zip_symlink("link", "../outside"), "link", "symbolic link to '../outside' leaves the destination"),
        (
            make_tar([("ok.txt", "file", b"1"), ("d/link", "sym", "../../outside")]),
            "d/link",
            "symbolic link to '../../outside' leaves the destination",
        ),
        (
            make_tar([("ok.txt", "file", b"1"), ("link", "sym", "/etc/passwd")]),
            "link",
            "symbolic link to '/etc/passwd' leaves the destination",
        ),
        (
            make_tar([("ok.txt", "file", b"1"), ("hard", "hard", "../outside")]),
            "hard",
            "hard link to '../outside' leaves the destination",
        ),
        (
            make_tar([("ok.txt", "file", b"1"), ("../evil.txt", "file", b"x")]),
            "../evil.txt",
            "'..' component leaves the destination",
        ),
        (make_tar([("ok.txt", "file", b"1"), ("/abs.txt", "file", b"x")]), "/abs.txt", "absolute path"),
        (make_tar([("ok.txt", "file", b"1"), ("dev/null", "chr", b"")]), "dev/null", "device file"),
        (make_tar([("ok.txt", "file", b"1"), ("pipe", "fifo", b"")], mode="w"), "pipe", "FIFO (named pipe)"),
    ],
    ids=[
        "zip-dotdot",
        "zip-nested-dotdot",
        "zip-absolute",
        "zip-backslash-dotdot",
        "zip-symlink-out",
        "tar-symlink-out",
        "tar-symlink-absolute",
        "tar-hardlink-out",
        "tar-dotdot",
        "tar-absolute",
        "tar-device",
        "tar-fifo",
    ],
)
def test_unsafe_archives_are_refused_before_writing(tmp_path: Path, payload: bytes, member: str, reason: str) -> None:
    archive = tmp_path / "evil.bin"
    archive.write_bytes(payload)
    dest = tmp_path / "box" / "dest"
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest)
    assert str(err.value) == _refusal(archive, member, reason)
    assert tree(tmp_path / "box") == ["dest"]  # nothing written, inside or outside


def test_symlink_chains_cannot_escape(tmp_path: Path) -> None:
    # each link stays inside on its own; together sub/l2 -> sub/l1/.. -> <dest>/.. escapes
    chain = [("sub/l2", "sym", "l1/.."), ("sub/l1", "sym", "..")]
    archive = tmp_path / "chain.tar.gz"
    archive.write_bytes(make_tar([*chain, ("sub/l2/evil.txt", "file", b"x")]))
    with pytest.raises(UnsafeArchiveError, match=r"'sub/l2/evil\.txt': its path goes through a link leaving"):
        safe_extract(archive, tmp_path / "box" / "dest")
    assert not (tmp_path / "box" / "evil.txt").exists()

    archive.write_bytes(make_tar(chain))
    with pytest.raises(UnsafeArchiveError, match="'sub/l2': symbolic link resolves outside the destination"):
        safe_extract(archive, tmp_path / "box2" / "dest")


def test_unsafe_archive_through_download_leaves_nothing(server: Server, tmp_path: Path) -> None:
    url, sha = server.put("evil.zip", make_zip({"RAVDESS/ok.wav": b"1", "../../evil.txt": b"x"}))
    dest = tmp_path / "corpora"
    with pytest.raises(UnsafeArchiveError, match=r"refusing to extract member '\.\./\.\./evil\.txt'"):
        download(Source(dataset="ravdess", files=(RemoteFile(url, sha),)), dest, progressbar=False)
    assert not (dest / "ravdess").exists() and not list(dest.glob(".ravdess.partial-*"))
    assert not (tmp_path / "evil.txt").exists() and not (dest / "evil.txt").exists()


def test_tar_with_inside_links_is_unpacked(tmp_path: Path) -> None:
    archive = tmp_path / "good.tar.bz2"
    archive.write_bytes(
        make_tar(
            [
                ("corpus", "dir", b""),
                ("corpus/wav/a.wav", "file", b"AAA"),
                ("corpus/latest", "sym", "wav"),
                ("corpus/copy.wav", "hard", "corpus/wav/a.wav"),
                ("./corpus/wav/b.wav", "file", b"BB"),
            ],
            mode="w:bz2",
        )
    )
    dest = tmp_path / "dest"
    written = safe_extract(archive, dest)
    assert written == ["corpus/wav/a.wav", "corpus/latest", "corpus/copy.wav", "corpus/wav/b.wav"]
    assert (dest / "corpus/latest").is_symlink() and (dest / "corpus/latest/a.wav").read_bytes() == b"AAA"
    copy = dest / "corpus/copy.wav"
    assert copy.read_bytes() == b"AAA" and not copy.is_symlink()
    assert (dest / "corpus/wav/b.wav").read_bytes() == b"BB"


def test_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"plain text")
    with pytest.raises(DatasetError, match=r"x\.zip: not a zip or tar archive$"):
        safe_extract(path, tmp_path / "d")


# ------------------------------------------------------------------ the command
def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["data", "download", *args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_refusals_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main(capsys, "iemocap", "--dest", str(tmp_path / "c"))
    assert code == 2
    assert "licence: research licence from USC SAIL" in out  # shown before anything else
    assert "request access at https://sail.usc.edu/iemocap/" in err

    code, out, err = _main(capsys, "ravdess", "--dest", str(tmp_path / "c"))
    assert code == 2
    assert "licence: CC BY-NC-SA 4.0" in out
    assert "manual steps:" in err and "Audio_Speech_Actors_01-24.zip" in err
    assert not (tmp_path / "c").exists()

    code, _, err = _main(capsys, "ravdes", "--dest", str(tmp_path / "c"))
    assert code == 2 and "unknown dataset type 'ravdes'" in err and "did you mean 'ravdess'?" in err


def test_cli_download_with_user_pin_prints_the_root(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, sha = server.put("Audio_Speech_Actors_01-24.zip", make_zip(RAVDESS_FILES))
    entry = CATALOGUE["ravdess"]
    patched = dict(CATALOGUE)
    patched["ravdess"] = type(entry)(files=(RemoteFile(url),), notes=entry.notes)
    monkeypatch.setattr("serkit.data.download.CATALOGUE", patched)
    code, out, err = _main(capsys, "ravdess", "--dest", str(tmp_path / "c"), "--sha256", sha, "--no-progress")
    assert code == 0, err
    root = (tmp_path / "c" / "ravdess" / "RAVDESS").resolve()
    assert f"root: {root}\n" in out
    assert f'in a recipe: dataset: {{type: ravdess, root: "{root}"}}' in out

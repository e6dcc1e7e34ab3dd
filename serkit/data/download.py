"""``serkit data download``: fetch a public corpus, verify its checksum, unpack it safely.

Every downloadable corpus is a :class:`Source`: its archive URL(s), the SHA-256 of each
archive, the folder inside the archives to use as ``root``, and the homepage, licence and
how-to-get text of its dataset class. Three rules:

* **No unverified download.** An archive without a pinned SHA-256 is never fetched: the
  user gets the URL and the manual steps, or pins the checksum themselves with
  ``--sha256``. serkit ships no checksum it could not verify, so every built-in entry has
  ``sha256=None`` until a maintainer pins it.
* **Licensed corpora are not fetched.** Their source says where to request access.
* **Safe unpacking.** :func:`safe_extract` refuses absolute paths, ``..`` components,
  links leaving the destination and device files *before* writing anything, writes
  through no link that leaves it, and works the same on every Python version. Archives are
  unpacked into a temporary folder that is renamed into place with a marker file when
  complete, so an interrupted run leaves nothing half-made and a finished one is skipped.

Downloads go through :func:`pooch.retrieve` (resumable: a verified archive already in
``<dest>/.downloads`` is not fetched again).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from serkit.errors import DatasetError
from serkit.registry import Registry

__all__ = [
    "CATALOGUE",
    "MARKER",
    "CatalogueEntry",
    "DownloadRefused",
    "DownloadResult",
    "RemoteFile",
    "Source",
    "UnsafeArchiveError",
    "download",
    "safe_extract",
    "source_for",
]

#: Written into a finished extraction folder; its presence means "complete, skip".
MARKER = ".serkit-download.json"
#: Where archives are downloaded, under the destination folder.
DOWNLOADS = ".downloads"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DownloadRefused(DatasetError):
    """The corpus cannot be downloaded automatically; the message says what to do instead."""


class UnsafeArchiveError(DatasetError):
    """An archive member would be written outside the destination, or is a device file."""


# ------------------------------------------------------------------ the sources
@dataclass(frozen=True)
class RemoteFile:
    """One file to download.

    Attributes:
        url: where to get it (http, https or ftp).
        sha256: lower-case hex SHA-256 of the file, or ``None`` when nobody has pinned it
            (the download is then refused unless the user pins it).
        filename: the local name; default: the last segment of the URL's path.
    """

    url: str
    sha256: str | None = None
    filename: str | None = None

    @property
    def name(self) -> str:
        """The local file name."""
        if self.filename:
            return self.filename
        name = unquote(urlparse(self.url).path.rstrip("/").rsplit("/", 1)[-1])
        return name or "download"


@dataclass(frozen=True)
class Source:
    """Where and how to get one corpus.

    Attributes:
        dataset: registered dataset name (the folder created under ``--dest``).
        homepage, licence, how_to_get, citation: from the dataset class.
        files: the archives (zip or tar, possibly compressed) to download and unpack
            into one folder; empty when there is no direct download.
        root: folder inside the unpacked files to use as the dataset's ``root``
            (POSIX, relative); ``None``: the single top-level folder when the archives
            hold exactly one, else the unpacked folder itself.
        access: ``"public"`` (anyone may download) or ``"request"`` (licensed: access
            must be requested from the homepage; never downloaded).
        notes: shown with the source (other archives, caveats).
    """

    dataset: str
    homepage: str = ""
    licence: str = ""
    how_to_get: str = ""
    citation: str = ""
    files: tuple[RemoteFile, ...] = ()
    root: str | None = None
    access: Literal["public", "request"] = "public"
    notes: str = ""

    def describe(self) -> str:
        """Licence, homepage, citation and notes, one per line (shown before a download)."""
        lines = [f"dataset: {self.dataset}"]
        if self.licence:
            lines.append(f"licence: {self.licence}")
        if self.homepage:
            lines.append(f"homepage: {self.homepage}")
        if self.citation:
            lines.append(f"cite: {self.citation}")
        for f in self.files:
            lines.append(f"file: {f.url} (sha256 {f.sha256 or 'not pinned'})")
        if self.notes:
            lines.append(f"note: {self.notes}")
        return "\n".join(lines)


@dataclass(frozen=True)
class CatalogueEntry:
    """What serkit knows about a corpus's download beyond its dataset class."""

    files: tuple[RemoteFile, ...] = ()
    root: str | None = None
    access: Literal["public", "request"] = "public"
    notes: str = ""


_ZENODO_NOTE = (
    "Zenodo publishes an MD5 per file on the record page, not a SHA-256: after downloading "
    "by hand, check the MD5 there, then pin the file's SHA-256 with --sha256."
)

#: Download facts per built-in dataset name. URLs are the ones documented by the corpora's
#: publishers; no SHA-256 is pinned because none could be verified when this was written.
CATALOGUE: dict[str, CatalogueEntry] = {
    "ravdess": CatalogueEntry(
        files=(RemoteFile("https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip"),),
        notes="speech only (Actor_01/ ... Actor_24/); the song audio is Audio_Song_Actors_01-24.zip "
        "in the same Zenodo record. " + _ZENODO_NOTE,
    ),
    "cafe": CatalogueEntry(
        files=(RemoteFile("https://zenodo.org/records/1478765/files/CaFE_48k.zip"),),
        notes="the 48 kHz WAV release; the 192 kHz AIFF release is split in several zips on the same record. "
        + _ZENODO_NOTE,
    ),
    "subesco": CatalogueEntry(
        files=(RemoteFile("https://zenodo.org/records/4526477/files/SUBESCO.zip"),),
        notes="about 1.7 GB. " + _ZENODO_NOTE,
    ),
    "emodb": CatalogueEntry(
        files=(RemoteFile("http://emodb.bilderbar.info/download/download.zip"),),
        notes="the archive holds wav/ next to the label folders; the dataset reads wav/ itself.",
    ),
    "cremad": CatalogueEntry(
        notes="the audio is stored with git-lfs in the GitHub repository; there is no single archive.",
    ),
    "tess": CatalogueEntry(
        notes="the files are listed one by one in the University of Toronto Dataverse; there is no single "
        "archive URL serkit can pin.",
    ),
    "iemocap": CatalogueEntry(access="request"),
    "savee": CatalogueEntry(access="request"),
    "emovo": CatalogueEntry(access="request"),
    "shemo": CatalogueEntry(access="request"),
    "aesdd": CatalogueEntry(access="request"),
}


def source_for(
    name: str,
    registry: Registry | None = None,
    catalogue: dict[str, CatalogueEntry] | None = None,
) -> Source:
    """The :class:`Source` of the registered dataset ``name``.

    Homepage, licence, how-to-get and citation come from the dataset class; files, root
    and access from ``catalogue`` (default :data:`CATALOGUE`). A dataset without a
    catalogue entry (plugins, ``folder``, ``manifest``) gets a source without files.

    Raises:
        RecipeError: ``name`` is not a registered dataset (the message lists them).
    """
    if registry is None:
        from serkit.plugins import get_registry

        registry = get_registry()
    cls = registry.get("dataset", name)
    entry = (CATALOGUE if catalogue is None else catalogue).get(name, CatalogueEntry())
    return Source(
        dataset=name,
        homepage=cls.homepage,
        licence=cls.licence,
        how_to_get=cls.how_to_get,
        citation=cls.citation,
        files=entry.files,
        root=entry.root,
        access=entry.access,
        notes=entry.notes,
    )


# ------------------------------------------------------------------ downloading
@dataclass(frozen=True)
class DownloadResult:
    """Where a downloaded corpus ended up.

    Attributes:
        folder: the unpacked folder (``<dest>/<dataset>``).
        root: the folder to pass as the dataset's ``root``.
        skipped: the corpus was already downloaded and unpacked (marker present).
        archives: local paths of the downloaded archives (deleted unless kept).
    """

    folder: Path
    root: Path
    skipped: bool
    archives: list[Path] = field(default_factory=list)


def _pins(source: Source, sha256: str | None) -> list[tuple[RemoteFile, str | None]]:
    if sha256 is None:
        return [(f, f.sha256) for f in source.files]
    user = sha256.strip().lower().removeprefix("sha256:")
    if not _HEX64.match(user):
        raise DatasetError(f"--sha256 {sha256!r}: expected 64 hexadecimal digits (a SHA-256 checksum)")
    if len(source.files) != 1:
        raise DatasetError(
            f"{source.dataset}: --sha256 pins one file but the source lists {len(source.files)} "
            f"({', '.join(f.name for f in source.files)}); pin them in the source instead"
        )
    return [(source.files[0], user)]


def _refuse_request(source: Source) -> DownloadRefused:
    return DownloadRefused(
        f"{source.dataset} cannot be downloaded automatically (licence: {source.licence or 'see the homepage'}); "
        f"request access at {source.homepage or '(no homepage listed)'}\n"
        f"how to get it: {source.how_to_get or '(not documented)'}"
    )


def _refuse_unpinned(source: Source, dest: Path, unpinned: list[RemoteFile]) -> DownloadRefused:
    urls = "\n".join(f"  {f.url}" for f in unpinned)
    names = " ".join(f.name for f in unpinned)
    return DownloadRefused(
        f"{source.dataset}: refusing to download without a pinned SHA-256 checksum "
        f"(serkit pins only checksums it has verified):\n{urls}\n"
        "manual steps:\n"
        f"  1. download the file(s) above (homepage: {source.homepage or 'none listed'})\n"
        f"  2. compute the checksum: sha256sum {names}\n"
        f"  3. rerun with --sha256 <that checksum> so that serkit verifies and unpacks the download, "
        f"or unpack it yourself under {dest} and pass the unpacked folder as root\n"
        f"how to get it: {source.how_to_get or '(not documented)'}"
    )


def download(
    source: Source,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    progressbar: bool = True,
    keep_archives: bool = False,
    log: Callable[[str], None] | None = None,
) -> DownloadResult:
    """Download, verify and unpack ``source`` into ``<dest>/<source.dataset>``.

    Args:
        source: what to download (:func:`source_for`, or a custom :class:`Source`).
        dest: parent folder; created if missing.
        sha256: the user's pin for a source with exactly one file (``--sha256``); it
            replaces the source's pin.
        progressbar: show pooch's download progress bar.
        keep_archives: keep the archives in ``<dest>/.downloads`` after unpacking.
        log: receives progress messages (default: none).

    Returns:
        where the corpus is and which folder to use as ``root``.

    Raises:
        DownloadRefused: the corpus is licensed (request access), has no direct download,
            or a file has no pinned checksum (the message lists the manual steps).
        DatasetError: the download failed or its checksum differs (both hashes named;
            nothing is unpacked), ``<dest>/<dataset>`` exists but was not made by a
            finished download of these files, or the archive lacks the source's root.
        UnsafeArchiveError: an archive member would escape the destination.
    """
    say = log or (lambda _msg: None)
    dest = Path(dest).expanduser()
    if source.access == "request":
        raise _refuse_request(source)
    if not source.files:
        raise DownloadRefused(
            f"{source.dataset}: serkit has no direct download for this corpus"
            f"{' (' + source.notes + ')' if source.notes else ''}\n"
            f"homepage: {source.homepage or '(none listed)'}\n"
            f"how to get it: {source.how_to_get or '(not documented)'}"
        )
    pins = _pins(source, sha256)
    for f, pin in pins:
        if pin is not None and not _HEX64.match(pin):
            raise DatasetError(
                f"{source.dataset}: the pinned sha256 of {f.url} is not 64 lowercase hex digits: {pin!r}"
            )
    folder = dest / source.dataset
    done = _finished(folder, pins)
    if done is not None:
        say(f"{source.dataset} is already downloaded and unpacked in {folder}")
        return done
    unpinned = [f for f, pin in pins if pin is None]
    if unpinned:
        raise _refuse_unpinned(source, dest, unpinned)

    wanted = [{"url": f.url, "name": f.name, "sha256": pin} for f, pin in pins]
    dest.mkdir(parents=True, exist_ok=True)
    with _lock(dest / f".{source.dataset}.lock"):
        done = _finished(folder, pins)  # another process may have finished meanwhile
        if done is not None:
            say(f"{source.dataset} is already downloaded and unpacked in {folder}")
            return done
        if _read_marker(folder) is not None:
            raise DatasetError(
                f"{folder} holds a download of other files than {', '.join(f.name for f, _ in pins)} "
                f"(see its {MARKER}); remove it or choose another --dest"
            )
        if folder.exists():
            raise DatasetError(
                f"{folder} exists but was not made by a finished `serkit data download` (no {MARKER}); "
                "remove it or choose another --dest"
            )
        for stale in dest.glob(f".{source.dataset}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)

        archives = [_fetch(source, f, str(pin), dest / DOWNLOADS, progressbar, say) for f, pin in pins]
        tmp = Path(tempfile.mkdtemp(prefix=f".{source.dataset}.partial-", dir=dest))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; the corpus folder is an ordinary one
            for archive in archives:
                say(f"unpacking {archive.name} ...")
                safe_extract(archive, tmp)
            rel_root = _root_in(tmp, source)
            from serkit.io import atomic_write_json

            atomic_write_json(tmp / MARKER, {"dataset": source.dataset, "files": wanted, "root": rel_root})
            os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if not keep_archives:
        for archive in archives:
            archive.unlink(missing_ok=True)
    root = (folder / rel_root).resolve()
    say(f"unpacked into {folder}")
    return DownloadResult(folder=folder, root=root, skipped=False, archives=archives)


def _fetch(source: Source, f: RemoteFile, pin: str, where: Path, progressbar: bool, say: Callable[[str], None]) -> Path:
    try:
        import pooch
    except ImportError:  # pragma: no cover - pooch is a dependency
        raise DatasetError("serkit data download needs pooch: pip install 'pooch>=1.7'") from None
    if progressbar:
        try:
            import tqdm  # noqa: F401 - pooch draws its progress bar with tqdm
        except ImportError:
            progressbar = False
    say(f"downloading {f.url} ...")
    try:
        path = pooch.retrieve(f.url, known_hash=f"sha256:{pin}", fname=f.name, path=where, progressbar=progressbar)
    except ValueError as err:
        got = re.search(r"but got ([0-9a-fA-F]+)", str(err))
        if got is None:
            raise DatasetError(f"{source.dataset}: cannot download {f.url}: {err}") from None
        raise DatasetError(
            f"{source.dataset}: checksum mismatch for {f.url}: expected sha256 {pin}, got {got.group(1).lower()}; "
            "the download was deleted and nothing was unpacked (a changed or corrupted file, or a wrong pin)"
        ) from None
    except Exception as err:  # requests/ftplib/OS errors: all mean "could not download"
        raise DatasetError(f"{source.dataset}: cannot download {f.url}: {type(err).__name__}: {err}") from None
    return Path(path)


def _finished(folder: Path, pins: list[tuple[RemoteFile, str | None]]) -> DownloadResult | None:
    """The result of an earlier finished download of the same files into ``folder``, if any.

    The files must match by URL and name; a checksum pinned now must equal the one the
    download was verified against.
    """
    done = _read_marker(folder)
    if done is None:
        return None
    files = done.get("files")
    if not isinstance(files, list) or len(files) != len(pins):
        return None
    for (f, pin), rec in zip(pins, files, strict=True):
        if not isinstance(rec, dict) or rec.get("url") != f.url or rec.get("name") != f.name:
            return None
        if pin is not None and rec.get("sha256") != pin:
            return None
    root = (folder / str(done.get("root", "."))).resolve()
    return DownloadResult(folder=folder, root=root, skipped=True)


def _read_marker(folder: Path) -> dict | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _root_in(tmp: Path, source: Source) -> str:
    """The root, relative to the unpacked folder (POSIX)."""
    if source.root is not None:
        parts = _member_parts(source.root)
        if parts is None or not (tmp.joinpath(*parts)).is_dir():
            names = sorted(p.name for p in tmp.iterdir())
            raise DatasetError(
                f"{source.dataset}: the archive has no folder {source.root!r} to use as root; "
                f"its top level holds: {', '.join(names) or '(nothing)'}"
            )
        return "/".join(parts) or "."
    top = [p for p in tmp.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(top) == 1 and top[0].is_dir() and not top[0].is_symlink():
        return top[0].name
    return "."


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX); no lock where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------ safe extraction
@dataclass(frozen=True)
class _Member:
    """An archive member, normalised across zip and tar."""

    name: str  # as stored in the archive
    parts: tuple[str, ...]  # safe relative path components
    type: Literal["dir", "file", "symlink", "hardlink"]
    target: str = ""  # symlink target, or hardlink member name
    mode: int = 0o644
    handle: object = None  # ZipInfo or TarInfo


def _member_parts(name: str) -> tuple[str, ...] | None:
    """Components of a relative member path; ``None`` if absolute or using ``..``."""
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        return None
    parts = tuple(p for p in n.split("/") if p not in ("", "."))
    if ".." in parts:
        return None
    return parts


def _refuse(archive: Path, name: str, reason: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: refusing to extract member {name!r}: {reason}; nothing was extracted")


def _check_name(archive: Path, name: str) -> tuple[str, ...]:
    if "\x00" in name:
        raise _refuse(archive, name, "NUL character in the name")
    n = name.replace("\\", "/")
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
        raise _refuse(archive, name, "absolute path")
    parts = _member_parts(name)
    if parts is None:
        raise _refuse(archive, name, "'..' component leaves the destination")
    return parts


def _link_stays_inside(parts: tuple[str, ...], target: str) -> bool:
    """Whether symlink ``parts`` -> ``target`` resolves, lexically, inside the destination."""
    t = target.replace("\\", "/")
    if not t or t.startswith("/") or re.match(r"^[A-Za-z]:", t):
        return False
    stack = list(parts[:-1])
    for comp in t.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not stack:
                return False
            stack.pop()
        else:
            stack.append(comp)
    return True


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[_Member]:
    out = []
    for info in zf.infolist():
        name = info.filename
        parts = _check_name(archive, name)
        mode = (info.external_attr >> 16) & 0xFFFF
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            target = zf.read(info).decode("utf-8", errors="replace")
            out.append(_Member(name, parts, "symlink", target, handle=info))
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            raise _refuse(archive, name, "device file")
        elif kind == stat.S_IFIFO:
            raise _refuse(archive, name, "FIFO (named pipe)")
        elif kind == stat.S_IFSOCK:
            raise _refuse(archive, name, "socket")
        elif info.is_dir() or kind == stat.S_IFDIR:
            out.append(_Member(name, parts, "dir", handle=info))
        else:
            out.append(_Member(name, parts, "file", mode=mode & 0o777 or 0o644, handle=info))
    return out


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[_Member]:
    out = []
    for info in tf.getmembers():
        name = info.name
        parts = _check_name(archive, name)
        if info.issym():
            out.append(_Member(name, parts, "symlink", info.linkname, handle=info))
        elif info.islnk():
            out.append(_Member(name, parts, "hardlink", info.linkname, handle=info))
        elif info.ischr() or info.isblk():
            raise _refuse(archive, name, "device file")
        elif info.isfifo():
            raise _refuse(archive, name, "FIFO (named pipe)")
        elif info.isdir():
            out.append(_Member(name, parts, "dir", handle=info))
        elif info.isreg():
            out.append(_Member(name, parts, "file", mode=info.mode & 0o777 or 0o644, handle=info))
        else:
            raise _refuse(archive, name, f"unsupported member type {info.type!r}")
    return out


def _validate(archive: Path, members: list[_Member]) -> None:
    for m in members:
        if not m.parts and m.type != "dir":
            raise _refuse(archive, m.name, "empty path")
        if m.type == "symlink" and not _link_stays_inside(m.parts, m.target):
            raise _refuse(archive, m.name, f"symbolic link to {m.target!r} leaves the destination")
        if m.type == "hardlink":
            target = _member_parts(m.target)
            if target is None or not target:
                raise _refuse(archive, m.name, f"hard link to {m.target!r} leaves the destination")


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[str]:
    """Unpack a zip or tar (plain, gz, bz2, xz) ``archive`` into the folder ``dest``.

    Every member is checked before anything is written: absolute paths, ``..``
    components, symbolic or hard links whose target leaves ``dest``, device files, FIFOs
    and sockets are refused. While writing, no path goes through a link that resolves
    outside ``dest``; links are checked again once everything is written. Hard links are
    written as copies; permissions keep only the ``rwx`` bits. When a problem shows only
    while writing (a chain of links), what was written so far stays inside ``dest``:
    :func:`download` unpacks into a temporary folder that it then deletes.

    Returns:
        the relative (POSIX) paths written, in archive order.

    Raises:
        UnsafeArchiveError: a member is unsafe (the message names it and why).
        DatasetError: the file is not a zip or tar archive, or is corrupt.
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = os.path.realpath(dest)
    written: list[str] = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = _zip_members(archive, zf)
                _validate(archive, members)
                for m in members:
                    written += _write(base, archive, m, lambda m: zf.open(m.handle))
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tf:
                members = _tar_members(archive, tf)
                _validate(archive, members)
                for m in members:
                    written += _write(base, archive, m, lambda m: tf.extractfile(m.handle))
        else:
            raise DatasetError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as err:
        raise DatasetError(f"{archive}: corrupt archive ({err})") from None
    for rel in written:
        path = os.path.join(base, *rel.split("/"))
        if os.path.islink(path) and not _inside(base, os.path.realpath(path)):
            raise UnsafeArchiveError(
                f"{archive}: refusing to extract member {rel!r}: symbolic link resolves outside the destination "
                "through other links"
            )
    return written


def _inside(base: str, path: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _ensure_dir(base: str, archive: Path, name: str, parts: tuple[str, ...]) -> str:
    """Create ``base/parts`` folder by folder, never through a link leaving ``base``."""
    cur = base
    for part in parts:
        nxt = os.path.join(cur, part)
        if os.path.islink(nxt):
            real = os.path.realpath(nxt)
            if not _inside(base, real):
                raise UnsafeArchiveError(
                    f"{archive}: refusing to extract member {name!r}: its path goes through a link leaving "
                    "the destination"
                )
            if not os.path.isdir(real):
                raise DatasetError(f"{archive}: member {name!r}: {part!r} is not a folder")
            cur = real
        elif os.path.isdir(nxt):
            cur = nxt
        elif os.path.lexists(nxt):
            raise DatasetError(f"{archive}: member {name!r}: {part!r} is a file, not a folder")
        else:
            os.mkdir(nxt)
            cur = nxt
    return cur


def _clear(path: str, archive: Path, name: str) -> None:
    """Make room for a file or link at ``path`` (a later member replaces an earlier one)."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.lexists(path):
        raise DatasetError(f"{archive}: member {name!r} would replace a folder")


def _write(base: str, archive: Path, m: _Member, open_member: Callable[[_Member], object]) -> list[str]:
    rel = "/".join(m.parts)
    if m.type == "dir":
        _ensure_dir(base, archive, m.name, m.parts)
        return []
    parent = _ensure_dir(base, archive, m.name, m.parts[:-1])
    path = os.path.join(parent, m.parts[-1])
    _clear(path, archive, m.name)
    if m.type == "symlink":
        os.symlink(m.target, path)
        if not _inside(base, os.path.realpath(path)):
            os.unlink(path)
            raise UnsafeArchiveError(
                f"{archive}: refusing to extract member {m.name!r}: symbolic link to {m.target!r} leaves the "
                "destination through other links"
            )
        return [rel]
    if m.type == "hardlink":
        target_parts = _member_parts(m.target) or ()
        source = os.path.realpath(os.path.join(base, *target_parts))
        if not _inside(base, source):
            raise _refuse(archive, m.name, f"hard link to {m.target!r} leaves the destination")
        if not os.path.isfile(source):
            raise DatasetError(f"{archive}: member {m.name!r} is a hard link to {m.target!r}, which was not extracted")
        shutil.copyfile(source, path)
        return [rel]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, (m.mode & 0o777) | 0o600)
    with os.fdopen(fd, "wb") as out:
        src = open_member(m)
        if src is None:  # pragma: no cover - tar regular files always have data
            raise DatasetError(f"{archive}: member {m.name!r} has no data")
        with src:  # type: ignore[attr-defined]
            shutil.copyfileobj(src, out, 1 << 20)  # type: ignore[arg-type]
    return [rel]

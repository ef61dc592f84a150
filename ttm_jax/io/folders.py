"""Folders the library owns: atomic commits through ``metadata.json``, checksums, and ownership.

A saved model or a training checkpoint is a folder holding our
``metadata.json`` and one payload subfolder ``payload-<16 hex digits>`` that
the metadata names, with the size and SHA-256 of every payload file and a
checksum of the metadata itself. Arrays inside the payload are written by
orbax-checkpoint (:mod:`ttm_jax.io.trees`).

**Atomic.** A save writes a new payload folder beside the old one, then
replaces ``metadata.json`` in one ``os.replace``: that rename is the commit.
A crash before it leaves the previous save intact (its metadata still names
its payload); a crash after it leaves the new one. Only then is the previous
payload deleted. Leftovers of an interrupted save (unreferenced payload
folders and temporary files, all named by us) are removed by the next save.

**Never someone else's files.** The library writes into a folder only when it
is new, empty, or holds a ``metadata.json`` of the same kind that it wrote
itself; it deletes only payload folders and temporary files it names itself,
so files a user put beside a model (a ``recs.csv``, notes) survive re-saves.
A folder holding another tool's ``metadata.json``, an unreadable one, or other
files without one is refused before any work starts (:func:`check_writable`).

**Checked on read.** Loading verifies the metadata's own checksum (a hand
edit is reported, not obeyed), the format and its version, and every payload
file's size and checksum, and names the file that fails.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "FORMAT_VERSION",
    "METADATA",
    "CheckpointError",
    "OutputPathError",
    "check_holds_only",
    "check_writable",
    "commit",
    "owned_by_save",
    "library_version",
    "read",
]

#: Version of the on-disk layout; bumped whenever old folders can no longer be read.
FORMAT_VERSION = 2
METADATA = "metadata.json"
_PAYLOAD = re.compile(r"^payload-[0-9a-f]{16}$")
_TEMP = re.compile(r"^\.(payload-[0-9a-f]{16}|metadata\.json)\.tmp-[0-9a-f]{8}$")


class CheckpointError(ValueError):
    """A saved model or checkpoint cannot be read: truncated, altered, edited, from
    another format version, or for another architecture or feature widths."""


class OutputPathError(ValueError):
    """An output location cannot be written: it holds files the library did not
    write, is a file where a folder should be (or the reverse), or is not writable."""


def library_version() -> str:
    """The installed ttm_jax version (``"unknown"`` when it is not installed)."""
    try:
        return importlib.metadata.version("ttm_jax")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source tree only
        return "unknown"


def _canonical(meta: dict) -> bytes:
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def _load_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or ``None`` if it is not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def check_writable(path: str | os.PathLike, fmt: str) -> Path:
    """Raise :class:`OutputPathError` unless a save of kind ``fmt`` may go to ``path``.

    Called before any training, so that a bad output location fails at once.
    Allowed: a path that does not exist (its parent is created), an empty
    folder, or a folder whose ``metadata.json`` is ours and of kind ``fmt``.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} is a file, not a folder; choose a folder path for the "
                              "save (a new or empty folder, or one saved here before)")
    parent = path if path.exists() else next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise OutputPathError(f"{parent} is a file, so {path} cannot be created; choose another "
                              "path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{parent} is not writable; choose a folder you can write to")
    if not path.exists():
        return path
    meta_path = path / METADATA
    if meta_path.exists():
        meta = _load_json(meta_path)
        if meta is None or meta.get("format") != fmt:
            what = ("an unreadable or non-ttm_jax metadata.json" if meta is None or
                    "format" not in meta else f"a metadata.json of format {meta['format']!r}")
            raise OutputPathError(
                f"{path} holds {what}, not a {fmt} written by ttm_jax; refusing to write there "
                "(nothing was changed). Choose a new or empty folder")
        return path
    others = [p.name for p in path.iterdir() if not _TEMP.match(p.name)]
    if others:
        raise OutputPathError(
            f"{path} is a non-empty folder ({', '.join(sorted(others)[:3])}"
            f"{', …' if len(others) > 3 else ''}) that is not a ttm_jax save; refusing to write "
            "there. Choose a new or empty folder")
    return path


def check_holds_only(root: Path, names, *, where: str, writer: str, kept: str) -> None:
    """Raise :class:`OutputPathError` unless ``root`` is absent or a folder holding nothing
    but ``names``: the subfolders ``writer`` keeps there (``kept``, for the message).
    ``where`` names the location in messages (an argument or option and its value)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise OutputPathError(f"{where} is a file; choose a folder")
    foreign = sorted(p.name for p in root.iterdir() if p.name not in names)
    if foreign:
        raise OutputPathError(
            f"{where} holds {', '.join(foreign[:3])}, which {writer} did not write (it keeps "
            f"{kept} there); choose a new or empty folder")


def owned_by_save(path: str | os.PathLike) -> bool:
    """Whether ``path`` is managed by a ttm_jax save (saved model or checkpoint): its
    ``metadata.json``, a payload folder or anything in one, or a temporary entry.

    Other writers (the command line's ``--out`` files) refuse such paths: replacing
    them would break the save beside them.
    """
    path = Path(path).absolute()
    for entry in (path, *path.parents):
        named = entry.name == METADATA or _PAYLOAD.match(entry.name) or _TEMP.match(entry.name)
        if named and entry.parent != entry:
            meta = _load_json(entry.parent / METADATA)
            if meta is not None and str(meta.get("format", "")).startswith("ttm_jax."):
                return True
    return False


def _manifest(folder: Path) -> dict[str, dict]:
    out = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = file.read_bytes()
        out[file.relative_to(folder).as_posix()] = {
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(path: str | os.PathLike, fmt: str, meta: dict,
           write_payload: Callable[[Path], None]) -> Path:
    """Save atomically to the folder ``path``: ``write_payload(folder)`` fills a new
    payload folder, then ``metadata.json`` (``meta`` plus format, versions, the
    payload's manifest and a checksum) is swapped in.

    Returns:
      The folder's absolute path.

    Raises:
      OutputPathError: as :func:`check_writable`.
    """
    path = check_writable(path, fmt)
    path.mkdir(parents=True, exist_ok=True)
    payload = f"payload-{uuid.uuid4().hex[:16]}"
    staging = path / f".{payload}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        write_payload(staging)
        files = _manifest(staging)
        os.replace(staging, path / payload)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    body = dict(meta, format=fmt, format_version=FORMAT_VERSION, library_version=library_version(),
                payload=payload, files=files)
    body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
    tmp = path / f".{METADATA}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(body, indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path / METADATA)
        _fsync_dir(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Committed: what is left of earlier saves (ours by name) can go.
    for entry in path.iterdir():
        if entry.name != payload and (_PAYLOAD.match(entry.name) or _TEMP.match(entry.name)):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_manifest(files) -> bool:
    """Whether ``files`` is the ``{name: {"bytes": int, "sha256": str}}`` that :func:`commit` writes."""
    return isinstance(files, dict) and all(
        isinstance(info, dict) and type(info.get("bytes")) is int
        and isinstance(info.get("sha256"), str)
        and not Path(name).is_absolute() and ".." not in Path(name).parts
        for name, info in files.items())


def read(path: str | os.PathLike, fmt: str, what: str) -> tuple[dict, Path]:
    """Read and verify the folder ``path`` of kind ``fmt``.

    Returns:
      ``(metadata, payload folder)``.

    Raises:
      FileNotFoundError: nothing at ``path``.
      CheckpointError: not a ``what``, an edited ``metadata.json``, another
        format version, or a missing, truncated or altered payload file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    meta_path = path / METADATA
    if not meta_path.is_file():
        raise CheckpointError(f"{path} has no {METADATA}: it is not a {what} (or its first save "
                              "never completed)")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{meta_path} is truncated or not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} holds {got or 'an unknown format'!s}, not a {what} ({fmt})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in format version {version} (ttm_jax "
            f"{meta.get('library_version', '?')}); this ttm_jax ({library_version()}) reads "
            f"format version {FORMAT_VERSION}. Load it with the ttm_jax that wrote it and "
            "re-save, or retrain")
    body = {k: v for k, v in meta.items() if k != "checksum"}
    if meta.get("checksum") != hashlib.sha256(_canonical(body)).hexdigest():
        raise CheckpointError(
            f"{meta_path} was edited after it was written (its checksum does not match its "
            "content); it is not used. Restore the original file, or save the model again")
    payload = path / str(meta.get("payload", ""))
    files = meta.get("files")
    if not _PAYLOAD.match(payload.name) or not payload.is_dir():
        raise CheckpointError(f"{payload} is missing; the {what} is incomplete")
    if not _is_manifest(files):
        raise CheckpointError(f"{meta_path} has no valid list of payload files (sizes and "
                              f"checksums); the {what} cannot be verified, so it is not used")
    on_disk = {p.relative_to(payload).as_posix() for p in payload.rglob("*") if p.is_file()}
    for name in sorted(on_disk - set(files)):
        raise CheckpointError(f"{payload / name} was not written with this {what}; the folder "
                              "was altered")
    for name, info in files.items():
        fp = payload / name
        if not fp.is_file():
            raise CheckpointError(f"{fp} is missing; the {what} is incomplete")
        data = fp.read_bytes()
        if len(data) != info["bytes"]:
            raise CheckpointError(f"{fp} is truncated or altered: {len(data)} bytes, but "
                                  f"{info['bytes']} were written")
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise CheckpointError(f"{fp} is corrupted: its SHA-256 checksum does not match the "
                                  f"one recorded in {METADATA}")
    return meta, payload

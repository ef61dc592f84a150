"""Output paths of the command line: checked before any work starts, written atomically.

A CSV goes to a new file or one the user named; an export goes to a new or empty
folder; neither may lie inside a saved model or checkpoint. Writes go through a
temporary file or folder and one rename, so an interrupted command leaves nothing
half-written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from pathlib import Path

__all__ = ["check_new_folder", "check_out_file", "write_atomic", "write_new_folder"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and one rename, so that an
    interrupted write never leaves half a file. A new file gets the umask's mode
    (``os.open`` applies it; ``mkstemp`` would give 0600); a replaced one keeps its mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.is_file():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_parent(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder."""
    from ttm_jax.io import OutputPathError

    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, so the path cannot be "
                              "created; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: {parent} is not writable; choose a folder you "
                              "can write to")


def check_out_file(path: str, option: str = "--out") -> Path:
    """Check, before any work, that a CSV may be written to ``path``: a new file, or an
    existing file the user named (it is replaced); never a folder or a file of a save."""
    from ttm_jax.io import OutputPathError, owned_by_save

    out = Path(path).absolute()
    if out.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give a file path for the CSV "
                              f"(e.g. {Path(path) / 'recs.csv'})")
    if out.exists() and not out.is_file():
        raise OutputPathError(f"{option} {path} exists and is not a regular file; choose "
                              "another path")
    if owned_by_save(out):
        raise OutputPathError(f"{option} {path} belongs to a saved model or checkpoint, which "
                              "writing it would break; choose a path outside its files")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"{option} {path} is read-only; choose another path, or make it "
                              "writable if it may be replaced")
    _check_parent(out, option)
    return out


def check_new_folder(path: str, option: str = "--out") -> Path:
    """Check, before any work, that ``path`` is a new or empty folder we may create."""
    from ttm_jax.io import OutputPathError, owned_by_save

    out = Path(path).absolute()
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{option} {path} is a file; give a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise OutputPathError(f"{option} {path} is not empty; choose a new folder (nothing was "
                              "written)")
    if owned_by_save(out):
        raise OutputPathError(f"{option} {path} lies inside a saved model or checkpoint; choose "
                              "a folder outside it")
    _check_parent(out, option)
    return out


def write_new_folder(out: Path, fill) -> None:
    """Fill a temporary folder beside ``out`` with ``fill(folder)``, then rename it to
    ``out`` (new, or empty: the rename replaces it). On any failure, the temporary
    folder and the parent folders created for it are removed: nothing is left."""
    created = [p for p in reversed(out.parents) if not p.exists()]
    for folder in created:
        folder.mkdir()
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()  # mode 0o777 less the umask
        fill(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise

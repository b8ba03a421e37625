"""Writing outputs so that a crash, a signal or a full disk leaves the previous state and no partial file.

Every output is built in a staging place next to its destination (the same file system, so that the last step is a
rename) and moved into place only when complete. A failure removes the staging place and leaves the destination as it
was: absent, or holding the previous model, export or JSON. Destinations are checked, by creating something there,
before any heavy work starts, and `OSError`s from writing (no space, read-only file system, no permission) become one
`OutputError` line naming the path.

- `check_output_dir` / `check_output_file`: is this destination usable? (Changes nothing.)
- `staged_dir(final)`: a context manager yielding a fresh folder to fill; on success it replaces `final`.
- `staged_file(final)`: the same for one file written by a library (`onnx.save(model, tmp)`).
- `write_text` / `write_bytes` / `write_json`: one file written atomically.
- `stop_on_signals(what, keeps)`: SIGINT/SIGTERM raise `RunStopped`, so the staging is removed and the command exits
  with one line and 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import OutputError, RunStopped, UserError

STAGING_MARK = ".hf-pins-staging-"
OLD_MARK = ".hf-pins-old-"

# Errors that can only mean the destination's file system refused a write (others, such as EACCES, may come from
# reading the inputs inside a staged block and are left as they are).
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file is in the way of the folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "name too long",
}


def output_error(exc: OSError, path: str | os.PathLike, flag: str = "") -> OutputError:
    """One line for an OSError met while writing `path`: what it is (no space, read-only, ...) and what was kept."""
    reason = _REASONS.get(exc.errno, exc.strerror or type(exc).__name__)
    where = f"{flag} {path}" if flag else str(path)
    return OutputError(f"cannot write {where}: {reason}; nothing was changed there")


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and not current.is_symlink():
        if current.parent == current:
            break
        current = current.parent
    return current


def check_writable(path: str | os.PathLike, flag: str = "") -> Path:
    """Raise OutputError unless `path` (a file or folder, existing or not) can be created or replaced.

    Tested by creating and removing a probe folder where the output would go: permission bits say nothing to root, a
    read-only mount or a file in the way of a parent folder do."""
    path = Path(path)
    anchor = _nearest_existing(path.parent if path.name else path)
    where = f"{flag} {path}" if flag else str(path)
    if not anchor.is_dir():
        raise OutputError(f"cannot write {where}: {anchor} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=STAGING_MARK + "probe-", dir=anchor)
        os.rmdir(probe)
    except OSError as exc:
        raise output_error(exc, path, flag) from None
    return path


def check_output_dir(path: str | os.PathLike, *, flag: str, overwrite: bool = False,
                     protect: str | os.PathLike | None = None,
                     hint: str = "pass --overwrite to replace its contents") -> Path:
    """A folder an output may be written to: absent or empty, or non-empty with `overwrite`; writable; never the
    `protect`ed input folder nor one holding it. Changes nothing."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file; expected a folder")
    if protect is not None:
        source = Path(protect).resolve()
        if out.resolve() == source:
            raise UserError(f"{flag} {out} is the input folder itself; choose another folder")
        if source.is_relative_to(out.resolve()) and out.exists():
            raise UserError(f"{flag} {out} contains the input folder {protect}; choose another folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{flag} {out} is not empty; {hint}")
    check_writable(out, flag)
    return out


def check_output_file(path: str | os.PathLike, flag: str = "") -> Path:
    """A file an output may be written to (created or replaced): not a folder, in a writable folder. Changes nothing."""
    out = Path(path)
    if out.is_dir():
        raise UserError(f"{flag} {out} is a folder; expected a file name")
    check_writable(out, flag)
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _usual_mode(path: Path, default: int) -> None:
    """mkdtemp/mkstemp create private (0700/0600) entries; what is moved into place gets the mode a plain mkdir or
    open would have given it, or the mode of the file it replaces."""
    os.chmod(path, default & ~_umask())


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (deepest last), so that a failure can remove them again."""
    created = []
    for parent in reversed([folder, *folder.parents]):
        if not parent.exists():
            parent.mkdir()
            created.append(parent)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            break


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _commit_dir(staging: Path, final: Path) -> None:
    """Move a complete staging folder to `final`; a previous `final` is kept aside until the move succeeded."""
    if final.is_dir() and any(final.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}{OLD_MARK}", dir=final.parent))
        os.rename(final, old / final.name)  # `old` is new and empty: the rename cannot clash
        try:
            os.rename(staging, final)
        except BaseException:
            os.rename(old / final.name, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, final)  # replaces an empty folder atomically
    _fsync_dir(final.parent)


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike, flag: str = "") -> Iterator[Path]:
    """Yield an empty staging folder next to `final`; when the block succeeds it becomes `final` (replacing what was
    there), when it fails (exception, signal, full disk) it is removed and `final` is untouched.

    Callers check `final` first (`check_output_dir`): replacing a non-empty folder is for `--overwrite` only."""
    final = Path(final)
    try:
        created = _make_parents(final.parent)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}{STAGING_MARK}", dir=final.parent))
        _usual_mode(staging, 0o777)
    except OSError as exc:
        raise output_error(exc, final, flag) from None
    try:
        yield staging
        _commit_dir(staging, final)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
            raise output_error(exc, final, flag) from exc
        raise


@contextlib.contextmanager
def staged_file(final: str | os.PathLike, flag: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `final` for a library to write; on success it replaces `final` atomically."""
    final = Path(final)
    try:
        created = _make_parents(final.parent)
        fd, name = tempfile.mkstemp(prefix=f".{final.name}{STAGING_MARK}", dir=final.parent)
        os.close(fd)
        tmp = Path(name)
        if final.is_file():
            os.chmod(tmp, final.stat().st_mode & 0o7777)
        else:
            _usual_mode(tmp, 0o666)
    except OSError as exc:
        raise output_error(exc, final, flag) from None
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRORS:
            raise output_error(exc, final, flag) from exc
        raise


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (it may write fewer); raises OSError(ENOSPC) when the disk is full."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_bytes(path: str | os.PathLike, data: bytes, flag: str = "") -> Path:
    """Write `data` to `path` atomically: all of it or, on any failure, the previous file (or none) and no temp file."""
    with staged_file(path, flag) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, flag: str = "") -> Path:
    return write_bytes(path, text.encode("utf-8"), flag)


def write_json(path: str | os.PathLike, obj: Any, flag: str = "", **dumps) -> Path:
    """`obj` as indented JSON (one trailing newline), written atomically; `dumps` go to json.dumps."""
    return write_text(path, json.dumps(obj, **{"indent": 2, **dumps}) + "\n", flag)


class _Signalled(BaseException):
    """Raised by the signal handler. A BaseException, like KeyboardInterrupt, so that the libraries' broad
    `except Exception` blocks around imports and file reads let it through to `stop_on_signals`."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class SignalGuard:
    """What `stop_on_signals` yields: `check()` raises if a signal arrived, for a last look before committing."""

    def __init__(self):
        self.signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise _Signalled(self.signum)


@contextlib.contextmanager
def stop_on_signals(what: str, keeps: str) -> Iterator[SignalGuard]:
    """Turn the first SIGINT/SIGTERM inside the block into `RunStopped` ("SIGTERM during export; ..."), after
    `finally` blocks and staged writes inside it have cleaned up, so the command prints one line and exits with
    128 + the signal number. Further signals are ignored while it unwinds.

    The handler raises where the program is. A library may turn that into another exception (pybind11 makes an
    ImportError of it during an import) or swallow it: any exception after a signal is reported as the stop, and the
    guard's `check()` before a commit catches a swallowed one. `keeps` says what the user still has, e.g. "nothing
    was written to out/". Outside the main thread signals cannot be handled and the block runs as is."""
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return

    def handler(signum, frame):
        if guard.signum is not None:
            return
        guard.signum = signum
        raise _Signalled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    except BaseException:
        if guard.signum is None:
            raise
        raise RunStopped(f"{signal.Signals(guard.signum).name} during {what}; {keeps}", guard.signum) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

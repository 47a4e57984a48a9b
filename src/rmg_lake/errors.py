"""Errors a researcher can act on: each names the file, the field and what to do next.

Everything rmg-lake raises on purpose is a `LakeError`. What the operating system, the
Dropbox SDK, `requests`, DuckDB, polars or deltalake raise becomes one here, at one boundary
(`converted`, `boundary`): the message says what went wrong and the hint what to do, and
`retryable` says whether the same command may work later (a full disk, a dropped link).
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

__all__ = ["ConfigError", "LakeError", "LakeUnusable", "SourceError", "UnsupportedPlatform",
           "boundary", "converted", "dropbox_not_found", "guarded", "passing", "shown"]

P = ParamSpec("P")
R = TypeVar("R")

# Control characters (C0, DEL, C1) and the marks that reorder text on screen.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """`text` safe to print on a terminal: control characters and bidi marks, which a file
    name may hold, become `\\xNN` / `\\uNNNN` instead of acting on the screen."""
    return _UNSHOWABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


class LakeError(Exception):
    """Base of every error rmg-lake raises on purpose.

    `file` and `field` say where the problem is; `hint` says what to do about it.
    """

    def __init__(
        self, message: str, *, file: str | None = None, field: str | None = None,
        hint: str | None = None, retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.field = field
        self.hint = hint
        self.retryable = retryable  # the same command may work later, unchanged

    def __str__(self) -> str:
        where = ": ".join(shown(part) for part in (self.file, self.field) if part)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class SourceError(LakeError):
    """The sync folder (or other source) cannot be read."""


class LakeUnusable(LakeError):
    """The lake folder cannot be used: missing, unwritable, or of a newer layout."""


class ConfigError(LakeError):
    """`rmg-lake.toml` is missing a value or holds a wrong one."""


class UnsupportedPlatform(LakeError):
    """rmg-lake does not run on this operating system (it runs on Linux and macOS; on
    Windows, in WSL2)."""


_AGAIN = "then run the same command again"
_PLACE = "check the path, or choose another place"
# errno → what it means for a researcher's file or folder, what to do, and whether the
# same command may work later as it is
_ERRNO: dict[int, tuple[str, str, bool]] = {
    errno.ENOENT: ("no such file or folder", _PLACE, False),
    errno.ENOTDIR: ("a file stands where a folder is wanted", _PLACE, False),
    errno.EISDIR: ("is a folder, not a file", "give a file", False),
    errno.EACCES: ("permission denied", "check who may read and write it, or choose "
                   "another place", False),
    errno.EPERM: ("not permitted here", _PLACE, False),
    errno.EROFS: ("the disk is read-only", "choose a place you can write to", False),
    errno.ENOSPC: ("the disk is full", f"free some space, {_AGAIN}", True),
    errno.EDQUOT: ("over the disk quota", f"free some space, {_AGAIN}", True),
    errno.EFBIG: ("the file is too large for that disk", "choose another disk", False),
    errno.EEXIST: ("already exists", "choose a new name", False),
    errno.ENOTEMPTY: ("the folder is not empty", "choose an empty or new folder", False),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path", False),
    errno.ELOOP: ("too many symbolic links", "check the links on the path", False),
    errno.ENXIO: ("no device answers there", "give a regular file or folder", False),
    errno.EBUSY: ("in use by another program", f"close it there, {_AGAIN}", True),
    errno.EIO: ("the disk could not read or write it", f"check the disk or the network "
                f"drive, {_AGAIN}", True),
    errno.EMFILE: ("too many files are open", f"close other programs, {_AGAIN}", True),
    errno.ENFILE: ("too many files are open", f"close other programs, {_AGAIN}", True),
    errno.ETIMEDOUT: ("the network drive did not answer", f"check the connection, {_AGAIN}",
                      True),
    errno.ESTALE: ("the network drive lost it", f"check the connection, {_AGAIN}", True),
    errno.ECONNRESET: ("the connection was cut", f"check the connection, {_AGAIN}", True),
    errno.ECONNREFUSED: ("the connection was refused", f"check the connection, {_AGAIN}",
                         True),
    errno.ENETUNREACH: ("the network cannot be reached", f"check the connection, {_AGAIN}",
                        True),
    errno.EHOSTUNREACH: ("the host cannot be reached", f"check the connection, {_AGAIN}",
                         True),
    errno.EAGAIN: ("busy just now", _AGAIN, True),
}
_ERRNO_OF: dict[type[OSError], int] = {  # raised without a number, as some libraries do
    FileNotFoundError: errno.ENOENT, NotADirectoryError: errno.ENOTDIR,
    IsADirectoryError: errno.EISDIR, PermissionError: errno.EACCES,
    FileExistsError: errno.EEXIST, TimeoutError: errno.ETIMEDOUT,
}
_OFFLINE = ("cannot reach Dropbox", "check the internet connection, then run again")


def converted(error: BaseException, *, file: str | Path | None = None,
              kind: type[LakeError] | None = None, doing: str | None = None,
              ) -> LakeError | None:
    """`error` (from the OS, the Dropbox SDK, `requests`, DuckDB or polars) as a researcher's
    error about `file` (the OS's own file name first), of `kind`, saying it could not be
    `doing` ("write the report"); None when it is none of theirs (a bug: let it be seen)."""
    if isinstance(error, LakeError):
        return error
    found = _converted(error, str(file) if file is not None else None, kind)
    if found is not None and doing:
        found.message = f"cannot {doing}: {found.message}"
        found.args = (found.message,)
    return found


def _converted(error: BaseException, where: str | None,
               kind: type[LakeError] | None) -> LakeError | None:
    made = kind or LakeError
    if isinstance(error, OSError) and not error.errno and where and "://" in where:
        return _delta(error, where, made)  # an object store's failure, as deltalake says it
    if isinstance(error, OSError) and not _from_the_network(error):
        number = error.errno or _ERRNO_OF.get(type(error), 0)
        message, hint, again = _ERRNO.get(number, (
            f"cannot use it ({error.strerror or type(error).__name__})", _PLACE, False))
        named = error.filename if isinstance(error.filename, str) else where
        return made(message, file=named, hint=hint, retryable=again)
    module = type(error).__module__.split(".")[0]
    if module == "tenacity" and (last := getattr(error, "last_attempt", None)) is not None:
        return _converted(last.exception() or error, where, kind)
    if module == "dropbox":
        return _dropbox(error, where, kind or SourceError)
    if module in ("requests", "urllib3") or isinstance(error, OSError):
        return (kind or SourceError)(_OFFLINE[0], file=where, hint=_OFFLINE[1],
                                     retryable=True)
    if module in ("duckdb", "_duckdb", "polars"):
        return _data_files(error, where, made)
    if module == "_internal" and "DeltaError" in {t.__name__ for t in type(error).__mro__}:
        return _delta(error, where, made)
    return None


def _data_files(error: BaseException, where: str | None,
                kind: type[LakeError]) -> LakeError | None:
    """DuckDB's or polars' failure to read or write a file, by the system's words in it
    (their own text is not repeated: it may quote data); None for any other (a bug)."""
    text = str(error)
    for number, (message, hint, again) in _ERRNO.items():
        if os.strerror(number) in text:
            return kind(f"the data files could not be read or written: {message}",
                        file=where, hint=hint, retryable=again)
    if type(error).__name__ == "IOException" or "os error" in text:
        return kind("the data files could not be read or written", file=where,
                    hint=f"check the disk, {_AGAIN}", retryable=True)
    return None


def _delta(error: BaseException, where: str | None, kind: type[LakeError]) -> LakeError:
    """deltalake's (delta-rs) errors, by type; a file's failure in the system's words, any
    other as the table or the object store out of reach (their text is not repeated)."""
    name = type(error).__name__
    if name == "SchemaMismatchError":
        return kind("the Delta table's columns cannot take the frame's", file=where,
                    hint="publish into a new folder")
    if name == "DeltaProtocolError":
        return kind("the Delta table uses features deltalake cannot write", file=where,
                    hint="publish into a new folder")
    if name == "CommitFailedError":
        return kind("another program wrote the Delta table at the same time", file=where,
                    hint=f"let it finish, {_AGAIN}", retryable=True)
    return _data_files(error, where, kind) or kind(
        "the Delta table could not be read or written", file=where,
        hint="check the address, the storage options and the connection, then run the "
             "same command again", retryable=True)


@contextmanager
def boundary(*, file: str | Path | None = None, kind: type[LakeError] | None = None,
             doing: str | None = None) -> Iterator[None]:
    """Around a public operation: what `converted` knows becomes a `LakeError` (`kind`)
    about `file`; anything else passes as it is."""
    try:
        yield
    except LakeError:
        raise
    except Exception as error:  # (converted decides; the rest is re-raised)
        mine = converted(error, file=file, kind=kind, doing=doing)
        if mine is None:
            raise
        raise mine from error


def passing(error: BaseException) -> bool:
    """Whether `error` is a passing state of the computer (a full disk, too many open files,
    a network drive gone) rather than a fault of the file being read: then it is not to be
    called damage, but said as it is (the boundary words it)."""
    mine = converted(error)
    return mine is not None and mine.retryable


def guarded(function: Callable[P, R]) -> Callable[P, R]:
    """`function` behind the `boundary`: a public operation of the library."""
    @functools.wraps(function)
    def behind(*args: P.args, **kwargs: P.kwargs) -> R:
        with boundary():
            return function(*args, **kwargs)
    return behind


def _from_the_network(error: OSError) -> bool:
    """`requests` errors are OSErrors too, but about a link, not a file."""
    return type(error).__module__.split(".")[0] in ("requests", "urllib3")


def _dropbox(error: BaseException, where: str | None, kind: type[LakeError]) -> LakeError:
    """The Dropbox SDK's typed errors, by type and tag (never by the text)."""
    name, found = type(error).__name__, getattr(error, "error", None)
    if name in ("AuthError", "BadInputError"):
        return kind("Dropbox refused the credentials", file=where,
                    hint="run `rmg-lake auth` again (or check DROPBOX_APP_KEY and "
                         "DROPBOX_REFRESH_TOKEN)")
    if name == "RateLimitError":
        return kind("Dropbox asks rmg-lake to slow down", file=where,
                    hint="wait a few minutes, then run the same command again", retryable=True)
    if name in ("InternalServerError", "HttpError"):
        return kind("Dropbox could not answer just now", file=where,
                    hint="run the same command again later", retryable=True)
    if name == "ApiError" and found is not None:
        if _tagged(found, "not_found"):
            return kind("no such file or folder in Dropbox", file=where,
                        hint="check the dropbox: path")
        if _tagged(found, "too_many_write_operations"):
            return kind("Dropbox asks rmg-lake to slow down", file=where,
                        hint="wait a few minutes, then run the same command again",
                        retryable=True)
        if _tagged(found, "insufficient_space"):
            return kind("the Dropbox account is full", file=where,
                        hint="free space in Dropbox, then run the same command again",
                        retryable=True)
        return kind(f"Dropbox refused it ({found})", file=where)
    return kind(f"Dropbox refused it ({name})", file=where)


def dropbox_not_found(error: BaseException | None) -> bool:
    """Whether a Dropbox SDK error says the path is not there (by its tags)."""
    found = getattr(error, "error", None)
    return found is not None and _tagged(found, "not_found")


def _tagged(union: object, tag: str) -> bool:
    """Whether the SDK's error union, or one nested in it (`path`, `path_lookup`, a
    write failure's `reason`), is `tag`."""
    for _ in range(4):  # unions nest a few deep: DeleteError → LookupError → not_found
        if getattr(union, f"is_{tag}", lambda: False)():
            return True
        inner = next((getattr(union, f"get_{name}")() for name in ("path", "path_lookup",
                                                                     "reason")
                      if getattr(union, f"is_{name}", lambda: False)()), None)
        if inner is None and hasattr(union, "reason"):
            inner = union.reason
        if inner is None:
            return False
        union = inner
    return False

"""Reading the new files of an ingest: each read whole, checked against the contract and
kept where its content says, by a pool of threads, handed back in order.

Keeping is idempotent (a file is named by its content's hash), so the files are kept as
they are read; what each *is* in the batch (new, duplicate, …) is decided afterwards, in
order, by the ingest (`rmg_lake.store.ingest`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from rmg_lake.contract import InvalidObservation, validate_file
from rmg_lake.sources import (
    FileDeferred,
    FileGone,
    FileRefused,
    Source,
    SourceFile,
    printable,
    utf8,
)
from rmg_lake.store.events import Rows, event_rows
from rmg_lake.store.raw import Kept, RawStore, sha256

__all__ = ["Got", "Large", "Read", "Valid", "is_observation", "read_all"]

_CHUNK = 256  # files a thread is given at a time (fewer when there are few files)


@dataclass(frozen=True, slots=True)
class Large:
    """A file over the size limit, already kept a piece at a time."""

    stored: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Valid:
    """What deciding needs of a valid observation."""

    observation_id: str
    day: date
    extra_keys: tuple[str, ...]  # keys the contract does not know, kept in raw
    rows: Rows  # the rows its event makes (see rmg_lake.store.events)


@dataclass(frozen=True, slots=True)
class Read:
    """A file read, checked against the contract and kept."""

    digest: str
    size: int
    kept: Kept
    valid: Valid | None = None  # an observation file that holds to the contract
    invalid: InvalidObservation | None = None  # one that does not


Got = Read | Large | FileGone | FileDeferred | FileRefused


def read_all(source: Source, store: RawStore, files: deque[SourceFile], *, workers: int,
             max_size: int) -> Generator[tuple[SourceFile, Got], None, None]:
    """Each of `files` with what became of it, in order, read `workers` at a time, at
    most a few chunks ahead of the caller; `files` is emptied as they are read (a first
    import does not hold its whole listing to the end). Reads not yet started are
    dropped when the caller stops.

    From a local folder (two threads), each thread is given a chunk of files at a time:
    handing them over one by one costs more than reading them (each hand-over waits for
    Python's lock, which the threads validating files hold).
    """
    # (a source read by many threads waits on the network: there, one file at a time)
    chunk = max(1, min(_CHUNK, len(files) // (4 * workers))) if workers <= 2 else 1
    waiting: deque[tuple[list[SourceFile], Future[list[Got | _Failed]]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        while files:
            part = [files.popleft() for _ in range(min(chunk, len(files)))]
            waiting.append((part, pool.submit(_read_each, source, store, max_size, part)))
            if len(waiting) > 2 * workers:
                yield from _hand_over(*waiting.popleft())
        while waiting:
            yield from _hand_over(*waiting.popleft())
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass(frozen=True, slots=True)
class _Failed:
    error: Exception


def _read_each(source: Source, store: RawStore, max_size: int,
               files: list[SourceFile]) -> list[Got | _Failed]:
    """The chunk's files read, up to the first that fails (if one does)."""
    got: list[Got | _Failed] = []
    for file in files:
        try:
            got.append(_read(source, store, max_size, file))
        except Exception as err:  # (raised when its file is reached)
            got.append(_Failed(err))
            break
    return got


def _hand_over(files: list[SourceFile], future: Future[list[Got | _Failed]],
               ) -> Iterator[tuple[SourceFile, Got]]:
    """The chunk's files in order; a read that failed raises where its file comes, as if
    the files were read one by one (the files before it are taken)."""
    for file, got in zip(files, future.result(), strict=False):
        if isinstance(got, _Failed):
            raise got.error
        yield file, got


def _read(source: Source, store: RawStore, max_size: int, file: SourceFile) -> Got:
    try:
        if file.size > max_size:
            folder = "quarantine" if is_observation(file) else "attachments"
            return Large(*store.put_stream(folder, printable(file.path), source.chunks(file)))
        return _check_and_keep(file, source.read(file), store)
    except (FileGone, FileDeferred, FileRefused) as err:
        return err


def _check_and_keep(file: SourceFile, data: bytes, store: RawStore) -> Read:
    """Validate an observation file and keep any file where its content says."""
    digest, path = sha256(data), printable(file.path)
    if not is_observation(file):
        return Read(digest, len(data), store.put_attachment(path, digest, data))
    try:
        if not utf8(file.path.rsplit("/", 1)[-1]):
            raise InvalidObservation("the file name is not UTF-8 text", file=path,
                                     field="(file name)", hint="rename it on the tablet")
        valid = validate_file(path, data)
    except InvalidObservation as err:
        return Read(digest, len(data), store.put_quarantine(path, digest, data), invalid=err)
    observation = valid.observation
    return Read(digest, len(data), store.put_raw(observation.day, digest, data),
                valid=Valid(str(observation.observation_id), observation.day,
                            valid.extra_keys, event_rows(digest, observation)))


def is_observation(file: SourceFile) -> bool:
    """Whether a file is meant to be an observation: a .json one, unless it is evidence."""
    return file.path.lower().endswith(".json") and not file.evidence

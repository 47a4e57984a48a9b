"""Checking a lake against its log: every file an entry names is there, whole.

`verify` re-hashes every raw, quarantined, attachment and events file the log names,
checks the log's numbering and each entry's own accounting, and lists *orphans*: stored
files no entry names (a run that died before its commit leaves them; they are harmless,
and the next ingest of the same bytes reuses them). It also finds files and folders
other users may read (the lake is private: 0600 and 0700). Problems are everything but
orphans; `remove_orphans` deletes orphans, never anything a committed entry names, and
`make_private` takes the others' access away.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import ValidationError

from rmg_lake._internal.files import open_to_others, restrict_to_user
from rmg_lake._internal.progress import Track
from rmg_lake.errors import LakeUnusable
from rmg_lake.store.log import Batch, Correction, Log, LogEntry, Rollback, read_entry
from rmg_lake.store.raw import file_sha256

__all__ = ["Finding", "Verified", "make_private", "remove_orphans", "verify"]

STORED = ("raw", "quarantine", "attachments", "events", "records", "corrections")

Kind = Literal["log", "missing", "damaged", "orphan", "mode"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    file: str  # relative to the lake
    detail: str


@dataclass(frozen=True, slots=True)
class Verified:
    batches: int  # log entries read
    checked: int  # stored files re-hashed
    findings: tuple[Finding, ...]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.kind != "orphan"]

    @property
    def orphans(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "orphan"]

    @property
    def ok(self) -> bool:
        """No problems (orphans are allowed: they are reported, not wrong)."""
        return not self.problems


def _read_log(lake: Path, findings: list[Finding]) -> list[LogEntry]:
    batches = []
    for number, path in enumerate(Log(lake).paths(), start=1):
        name = f"_log/{path.name}"
        if path.name != f"{number:06d}.json":
            findings.append(Finding("log", name, f"expected _log/{number:06d}.json here"))
        try:
            batch = read_entry(path.read_bytes(), lake)
        except ValidationError as exc:
            problems = exc.error_count()
            findings.append(Finding("log", name, f"unreadable entry ({problems} problem"
                                                 f"{'' if problems == 1 else 's'})"))
            continue
        if f"{batch.batch:06d}.json" != path.name:
            findings.append(Finding("log", name, f"the entry says it is batch {batch.batch}"))
        if isinstance(batch, Rollback) and not 1 <= batch.target < batch.batch:
            findings.append(Finding("log", name, f"it rolls back batch {batch.target}, "
                                                 "which does not come before it"))
        if isinstance(batch, Batch) and (outcomes := _outcomes(batch)) is not None \
                and batch.counts != Batch.tally(outcomes, len(batch.deferred)):
            findings.append(Finding("log", name, "its counts do not add up to its files"))
        batches.append(batch)
    return batches


def _outcomes(batch: Batch) -> list[str] | None:
    """Its files' outcomes; None if its records file cannot be read (hashing it says how)."""
    try:
        return batch.frame(["outcome"])["outcome"].to_list()
    except LakeUnusable:
        return None


def _named(batches: list[LogEntry]) -> tuple[dict[str, str], bool]:
    """Every file the log names (path → sha256), and whether an ingest's records file
    cannot be read (then that file and its events stand for it: what it kept is known
    again once that file is)."""
    named: dict[str, str] = {}
    blind = False
    for batch in batches:
        if not isinstance(batch, Batch | Correction):
            continue
        try:
            named |= batch.named()
        except LakeUnusable:
            assert isinstance(batch, Batch) and batch.records is not None
            named |= {path: PurePosixPath(path).stem
                      for path in [*batch.events.values(), batch.records]}
            blind = True
    return named, blind


def _digests(lake: Path, names: list[str], workers: int,
             ) -> Iterator[tuple[str, str | None]]:
    """(name, sha256 or None if missing), hashed `workers` at a time, a chunk at a time."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(names), 1024):
            chunk = names[start:start + 1024]
            yield from zip(chunk, pool.map(file_sha256, (lake / n for n in chunk)), strict=True)


def verify(lake: Path, *, track: Track | None = None, workers: int = 4) -> Verified:
    """Check the lake at `lake` against its log (reads only; changes nothing)."""
    findings: list[Finding] = []
    batches = _read_log(lake, findings)
    named, blind = _named(batches)
    stored = sorted(named)
    digests: Iterable[tuple[str, str | None]] = _digests(lake, stored, workers)
    if track is not None:
        digests = track(digests, len(stored), "Verifying")
    for name, digest in digests:
        if digest is None:
            findings.append(Finding("missing", name, "named by the log, not on disk"))
        elif digest != named[name]:
            findings.append(Finding("damaged", name, "its bytes differ from the log's sha256"))
    # what an ingest whose records cannot be read kept is not known: nothing is an orphan
    for part in STORED if not blind else ():
        for path in sorted((lake / part).rglob("*")):
            name = path.relative_to(lake).as_posix()
            if path.is_file() and name not in named:
                findings.append(Finding("orphan", name, "no log entry names it"))
    findings += _open_to_others(lake)
    return Verified(len(batches), len(stored), tuple(findings))


def _loose(lake: Path) -> Iterator[Path]:
    """Every file and folder in the lake that other users may use (mode beyond 0700)."""
    for folder, dirs, files in os.walk(lake):
        for name in (*dirs, *files):
            path = Path(folder, name)
            if not path.is_symlink() and open_to_others(path.lstat().st_mode):
                yield path
    if open_to_others(lake.stat().st_mode):
        yield lake


def _open_to_others(lake: Path) -> list[Finding]:
    """One finding per top-level file or folder holding anything open to other users."""
    found: dict[str, list[Path]] = {}
    for path in _loose(lake):
        top = path.relative_to(lake).parts[0] if path != lake else "."
        found.setdefault(top, []).append(path)
    return [Finding("mode", top, f"{len(paths):,} "
                                 f"{'file or folder' if len(paths) == 1 else 'files or folders'}"
                                 " other users may read, "
                                 f"e.g. {paths[0].relative_to(lake).as_posix() or '.'} "
                                 f"(mode {stat.S_IMODE(paths[0].lstat().st_mode):o}); "
                                 "`rmg-lake verify --repair` makes them private")
            for top, paths in sorted(found.items())]


def make_private(lake: Path) -> int:
    """Take other users' access away from every file and folder of the lake; how many."""
    changed = 0
    for path in list(_loose(lake)):
        restrict_to_user(path)
        changed += 1
    return changed


def remove_orphans(lake: Path, verified: Verified) -> int:
    """Delete the orphans `verified` found (nothing else); how many were deleted."""
    for finding in verified.orphans:
        (lake / finding.file).unlink(missing_ok=True)
    return len(verified.orphans)

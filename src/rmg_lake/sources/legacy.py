"""The 2014 pilot's files as a source: each file kept as it is, each round a contract file.

Listing reads every file under the path (the pilot's data is small) and lists, for each:

    Knitting_wip.json                                       the file itself: evidence, kept
                                                            byte for byte as an attachment
    Knitting_wip.json/round 1/wip_knitting_t_obs01_20140114T143600.json   a round, as
                                                            the contract file it would be

A round the contract has no place for is read as refused, so it is quarantined with the
reason and the round as the pilot wrote it (`…/round 3`); a file of no pilot shape is
quarantined whole, and a symbolic link is never followed. The source's name records the
importer's version and the options, and so does each batch it makes. Fingerprints are
the sha256 of what is listed (the file, each round as made), so importing the same
files the same way again reads nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rmg_lake.errors import SourceError
from rmg_lake.legacy import IMPORTER, Legacy, Problem, Study, operator_ids, read_legacy
from rmg_lake.sources.base import FileRefused, SourceFile
from rmg_lake.sources.local import NOT_OURS

__all__ = ["PilotFiles"]


class PilotFiles:
    """A pilot file, or a folder of them (walked recursively)."""

    readers = 2

    def __init__(self, path: str | Path, study: Study) -> None:
        self.path = Path(path).expanduser().resolve()
        if not self.path.exists():
            raise SourceError("no such file or folder", file=str(path))
        self.study = study
        self.options = (f"factory={study.factory} observer={study.observer} "
                        f"team={study.team} department={study.department or '(from files)'}")
        self._bytes: dict[str, bytes] = {}
        self._refused: dict[str, FileRefused] = {}

    @property
    def name(self) -> str:
        return f"legacy:{self.path} (import-legacy, importer {IMPORTER}: {self.options})"

    cursor = None  # read whole each time; what was seen is skipped by fingerprint
    relisted = False

    def resume(self, cursor: str | None) -> None:
        pass

    @property
    def gone(self) -> list[str]:
        return []

    def list(self) -> Iterator[SourceFile]:
        read = {}
        for relative, path in _files(self.path):
            if path.is_symlink():  # never followed, as in a sync folder
                target = str(path.readlink()).encode("utf-8", "surrogateescape")
                self._refused[relative] = FileRefused(
                    "a symbolic link: not followed", file=relative, evidence=target)
                yield SourceFile(relative, len(target), datetime.now(UTC),
                                 f"link {target.hex()}")
                continue
            try:
                read[relative] = (path.read_bytes(), path.stat().st_mtime)
            except OSError as err:  # kept as what it is: a file that could not be read
                self._refused[relative] = FileRefused(
                    f"cannot be read ({err.strerror})", file=relative, evidence=b"",
                    hint="check its permissions, then import again")
                yield SourceFile(relative, 0, datetime.now(UTC), f"unread {err.errno}")
        rosters = {relative: read_legacy(_name(relative), data, self.study)  # master files
                   for relative, (data, _) in read.items()       # take workers from them
                   if operator_ids(_name(relative))}
        for relative, (data, mtime) in read.items():
            legacy = rosters.get(relative) or read_legacy(_name(relative), data, self.study,
                                                          list(rosters.values()))
            yield from self._listed(relative, data, datetime.fromtimestamp(mtime, UTC),
                                    legacy)

    def _listed(self, relative: str, data: bytes, modified: datetime,
                legacy: Legacy) -> Iterator[SourceFile]:
        evidence = f"{hashlib.sha256(data).hexdigest()} importer {IMPORTER}"
        if legacy.unknown is not None:
            self._refused[relative] = FileRefused(
                f"not read as the pilot's: {legacy.unknown}", file=relative,
                evidence=data, hint="check the file, or the path given to import-legacy")
            yield SourceFile(relative, len(data), modified, evidence)
            return
        self._bytes[relative] = data
        yield SourceFile(relative, len(data), modified, evidence, evidence=True)
        for found in legacy.rounds:
            path = f"{relative}/round {found.index + 1}"
            if isinstance(found, Problem):
                self._refused[path] = FileRefused(
                    f"round {found.index + 1} cannot be put in the contract: {found.reason}",
                    file=path, evidence=found.evidence, hint="fix the pilot file, or leave "
                    "the round out: it is kept in quarantine")
                content = found.evidence + found.reason.encode()
            else:
                path, content = f"{path}/{found.name}", found.payload
                self._bytes[path] = content
            # the round's own bytes: the same round read the same way is seen already
            yield SourceFile(path, len(content), modified,
                             f"{hashlib.sha256(content).hexdigest()} importer {IMPORTER}")

    def read(self, file: SourceFile) -> bytes:
        if file.path in self._refused:
            raise self._refused[file.path]
        return self._bytes[file.path]

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        yield self.read(file)


def _name(relative: str) -> str:
    return relative.rsplit("/", 1)[-1]


def _files(root: Path) -> list[tuple[str, Path]]:
    """The file `root`, or the files under the folder `root`, by path relative to it."""
    if root.is_file():
        return [(root.name, root)]
    found = []
    for folder, dirs, names in os.walk(root):
        linked = [d for d in dirs if Path(folder, d).is_symlink()]  # listed, not walked
        dirs[:] = sorted(d for d in dirs if d not in NOT_OURS and d not in linked)
        found += [(Path(folder, n).relative_to(root).as_posix(), Path(folder, n))
                  for n in sorted([*names, *linked]) if n not in NOT_OURS]
    return found

"""The 2014 pilot's files as a source: each file kept as it is, each round a contract file.

Listing reads every file under the path (the pilot's data is small; see `rmg_lake.sources.pilot`)
and lists, for each:

    Knitting_wip.json                                       the file itself: evidence, kept
                                                            byte for byte as an attachment
    Knitting_wip.json/round 1/wip_knitting_t_obs01_20140210T080300.json   a round, as the
                                                            contract file it would be

A round the contract has no place for is read as refused, so it is quarantined with the
reason and the round as the pilot wrote it (`…/round 3`); a file of no pilot shape is
quarantined whole, and a symbolic link is never followed. The source's name records the
importer's version and the options, and so does each batch it makes. Fingerprints hold
the sha256 of what is listed, the importer and the options, so the same files read the
same way again are seen already, and read another way (`--department` given this time)
are read again.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rmg_lake.errors import SourceError
from rmg_lake.sources.base import FileRefused, SourceFile
from rmg_lake.sources.local import NOT_OURS
from rmg_lake.sources.pilot import IMPORTER, Listed, PilotFile, Study, read_pilot

__all__ = ["PilotFiles", "legacy_name", "legacy_path", "study_of"]

_OPTIONS = re.compile(r" \(import-legacy, importer \d+: factory=(\S+) observer=(\S+) "
                      r"team=(\S+) department=([a-z]+|\(from files\))\)$")


def legacy_name(path: Path | str, study: Study) -> str:
    """How the log names an import of the pilot files at `path` read as `study` says."""
    return f"legacy:{path} (import-legacy, importer {IMPORTER}: {study.options})"


def legacy_path(source: str) -> str:
    """The path an import of the pilot's files was made from, from its source's name."""
    return source.removeprefix("legacy:").split(" (import-legacy", 1)[0]


def study_of(source: str) -> Study | None:
    """The options an import of the pilot's files was made with, from its source's name
    (None: it is no such import)."""
    found = _OPTIONS.search(source) if source.startswith("legacy:") else None
    if found is None:
        return None
    factory, observer, team, department = found.groups()
    return Study(factory, observer, team, None if department.startswith("(") else department)


class PilotFiles:
    """A pilot file, or a folder of them (walked recursively); or, with `kept`, files the
    lake holds already, listed again as this importer reads them (`only` those paths).

    `recall` adds versions of the folder's files the lake keeps, to be listed too;
    `context` adds files read only for what they say of the listed rounds (the lake's
    operator-ID files and photos, for a file imported on its own)."""

    readers = 2
    cursor = None  # read whole each time; what was seen is skipped by fingerprint
    relisted = False

    def __init__(self, path: str | Path, study: Study, *,
                 kept: list[PilotFile] | None = None, name: str | None = None,
                 only: set[str] | None = None) -> None:
        self.path = Path(path).expanduser().resolve() if kept is None else Path(path)
        if kept is None and not self.path.exists():
            raise SourceError("no such file or folder", file=str(path))
        if kept is None and not (self.path.is_dir() or self.path.is_file()):
            raise SourceError("not a file or folder (a named pipe or a device)",
                              file=str(path))
        self.study = study
        self._name = name or legacy_name(self.path, study)
        self._kept, self._only = kept, only
        self._earlier: list[PilotFile] = []
        self._context: list[PilotFile] = []
        self._listing: list[SourceFile] | None = None
        # (path, fingerprint): two versions of a file may be listed at one path
        self._bytes: dict[tuple[str, str], bytes] = {}
        self._refused: dict[tuple[str, str], FileRefused] = {}
        self.rounds: list[Listed] = []  # the rounds listed, with their ids and origins
        self.left_out: list[str] = []  # of another department than --department
        self.salt = ""  # added to every fingerprint: to read again what was seen

    @property
    def name(self) -> str:
        return self._name

    def resume(self, cursor: str | None) -> None:
        pass

    @property
    def gone(self) -> list[str]:
        return []

    def recall(self, earlier: list[PilotFile], context: list[PilotFile]) -> None:
        """List `earlier` versions of the folder's files too (kept by the lake), those the
        folder no longer holds, such as the start-of-day form of a day before; and read
        `context` for the rounds' workers and ends, without listing it."""
        self._earlier, self._context = earlier, context
        self._listing = None

    def list(self) -> Iterator[SourceFile]:
        """Every file and round (read once, then the same listing each time asked)."""
        if self._listing is None:
            self._listing = list(self._read())
        return iter(self._listing)

    def _read(self) -> Iterator[SourceFile]:
        self.rounds = []
        files: list[PilotFile] = []
        if self._kept is not None:
            files = self._kept
        else:
            for relative, path in _files(self.path):
                found = _read_file(relative, path)
                if isinstance(found, PilotFile):
                    files.append(found)
                    continue
                fingerprint = f"{found.message} {found.evidence.hex()}{self.salt}"
                self._refused[relative, fingerprint] = found
                yield SourceFile(relative, len(found.evidence), datetime.now(UTC),
                                 fingerprint)
            held = {_version(f) for f in files}
            files += [f for f in self._earlier if _version(f) not in held]
        named = {(f.path.rsplit("/", 1)[-1], f.data) for f in files}
        reading = read_pilot(files, self.study, context=[
            f for f in self._context if (f.path.rsplit("/", 1)[-1], f.data) not in named])
        self.left_out = reading.left_out
        for entry in reading.listed:
            if self._only is not None and not any(
                    entry.path == p or entry.path.startswith(f"{p}/") for p in self._only):
                continue
            key = (entry.path, entry.fingerprint + self.salt)
            if entry.refused is not None:
                self._refused[key] = FileRefused(
                    entry.refused, file=entry.path, evidence=entry.content,
                    hint="fix the pilot file, or leave it out: it is kept in quarantine")
            else:
                self._bytes[key] = entry.content
            if entry.observation_id is not None:
                self.rounds.append(entry)
            yield SourceFile(entry.path, len(entry.content), entry.modified,
                             entry.fingerprint + self.salt, evidence=entry.evidence,
                             note=entry.note, attached_to=entry.attached_to)

    def read(self, file: SourceFile) -> bytes:
        key = (file.path, file.fingerprint)
        if key in self._refused:
            raise self._refused[key]
        return self._bytes[key]

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        yield self.read(file)


def _version(file: PilotFile) -> tuple[str, str, int]:
    """A version of a pilot file: its path, bytes and time (the form's time is its own)."""
    return file.path, hashlib.sha256(file.data).hexdigest(), int(file.modified.timestamp())


def _read_file(relative: str, path: Path) -> PilotFile | FileRefused:
    """A file's bytes and time; or, quarantined as what it is, a link (never followed) or
    a file that cannot be read."""
    if path.is_symlink():
        target = str(path.readlink()).encode("utf-8", "surrogateescape")
        return FileRefused("a symbolic link: not followed", file=relative, evidence=target)
    try:
        if not stat.S_ISREG(path.lstat().st_mode):  # (reading a named pipe would wait)
            return FileRefused("not a regular file (a named pipe or a device): not read",
                               file=relative, evidence=b"")
        return PilotFile(relative, path.read_bytes(),
                         datetime.fromtimestamp(path.stat().st_mtime, UTC))
    except OSError as err:
        return FileRefused(f"cannot be read ({err.strerror})", file=relative, evidence=b"",
                           hint="check its permissions, then import again")


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

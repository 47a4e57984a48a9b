"""Importing a pilot folder again: what the lake keeps of it is read too, and rounds that
would count twice are refused.

The app overwrote some files every day (the start-of-day form) and grew others; the lake
keeps every version an import saw. An import reads, beside the folder, the versions of
its files the lake keeps that the folder no longer holds: seen already they add nothing,
but after a rollback (an import with the wrong options, rolled back and made again) they
come back with the rest.

A round's id is what it is (factory, observer, department, team, task, time), so the same
files imported again with another `--team` (or factory, observer) make new observations
of the same rounds. Before anything is read, the rounds to be listed are held against
those in effect: a round already taken in, from the same bytes as the app wrote it (its
origin, in the fingerprint) or from the same file and place, under another id, means the
earlier import must be rolled back first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rmg_lake.errors import LakeError
from rmg_lake.log import Batch, LogEntry, in_effect
from rmg_lake.pilot import PilotFile
from rmg_lake.resolved import family
from rmg_lake.sources.legacy import PilotFiles

__all__ = ["before_import", "refuse_doubles"]

_ORIGIN = re.compile(r" round ([0-9a-f]{64})$")
_OPTIONS = re.compile(r"importer \d+: (.*)\)$")
Key = tuple[str, ...]  # ("origin", sha256) or ("file", name, sha256, "round <n>")


def before_import(lake: Path, files: PilotFiles) -> Callable[[list[LogEntry]], None]:
    """What `Lake.ingest` does with the log before it reads `files`, an import of the
    pilot's folder into the lake at `lake`: recall what the lake keeps of the folder,
    then refuse to count rounds twice."""
    refuse = refuse_doubles(files)

    def before(entries: list[LogEntry]) -> None:
        files.recall(kept_versions(lake, entries, files.name))
        refuse(entries)

    return before


def kept_versions(lake: Path, entries: list[LogEntry], name: str) -> list[PilotFile]:
    """Every version of a file of the pilot folder an import named `name` reads, as the
    lake keeps it (evidence of any import of that folder, rolled back or not)."""
    found: dict[tuple[str, str, datetime], PilotFile] = {}
    for batch in entries:
        if not isinstance(batch, Batch) or family(batch.source) != family(name):
            continue
        for record in batch.files:
            key = (record.path, record.sha256, record.modified)  # (the form: its time too)
            if key in found or not record.stored.startswith("attachments/"):
                continue
            try:
                found[key] = PilotFile(record.path, (lake / record.stored).read_bytes(),
                                       record.modified)
            except OSError:  # `rmg-lake verify` tells of a kept file gone missing
                continue
    return list(found.values())


def refuse_doubles(files: PilotFiles) -> Callable[[list[LogEntry]], None]:
    """A check for `Lake.ingest`: refuses if importing `files` would count rounds twice."""

    def check(entries: list[LogEntry]) -> None:
        taken = _taken(in_effect(entries))
        listed = list(files.list())
        shas = {f.path: f.fingerprint.split()[0] for f in listed if f.evidence}
        clash: set[int] = set()  # the batches that hold rounds it would count twice
        twice = 0
        for entry in files.rounds:
            found = {batch for key in _keys(entry.path, entry.origin, shas)
                     for batch, known in taken.get(key, {}).items()
                     if known != entry.observation_id}
            clash |= found
            twice += bool(found)
        if clash:
            first, numbers = min(clash), sorted(clash)
            said = _OPTIONS.search(next(e.source for e in entries
                                        if isinstance(e, Batch) and e.batch == first))
            where = f"batch {first}" if len(numbers) == 1 else \
                f"batches {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
            raise LakeError(
                f"{twice} of these rounds were imported already, in {where}"
                f"{f' ({said[1]})' if said else ''}: imported again as "
                f"{files.study.options}, they would count twice",
                hint=f"if {'it was' if len(numbers) == 1 else 'they were'} imported with "
                     f"the wrong options, roll {'it' if len(numbers) == 1 else 'each'} back "
                     f"first (rmg-lake rollback {numbers[-1]} --reason \"wrong options\""
                     f"{', …' if len(numbers) > 1 else ''}), then import again")

    return check


def _taken(batches: list[Batch]) -> dict[Key, dict[int, str]]:
    """Each round taken in by an import in effect → the batches that hold it → its
    observation id there."""
    taken: dict[Key, dict[int, str]] = {}
    for batch in batches:
        if not batch.source.startswith("legacy:"):
            continue
        shas = {r.path: r.sha256 for r in batch.files if r.stored.startswith("attachments/")}
        for record in batch.files:
            if record.observation_id is None or not record.stored.startswith("raw/"):
                continue
            origin = _ORIGIN.search(record.fingerprint)
            for key in _keys(record.path, origin[1] if origin else None, shas):
                taken.setdefault(key, {})[batch.batch] = record.observation_id
    return taken


def _keys(path: str, origin: str | None, shas: dict[str, str]) -> list[Key]:
    """What identifies a round listed at `path` (`<file>/round <n>/<name>`): the bytes the
    app wrote it as; and its file (name and bytes: an operator-ID file's name is its day)
    with its place in it, which is all an import of importer 1 recorded."""
    keys: list[Key] = [("origin", origin)] if origin else []
    parts = path.rsplit("/", 2)
    if len(parts) == 3 and parts[0] in shas and parts[1].startswith("round "):
        keys.append(("file", parts[0].rsplit("/", 1)[-1], shas[parts[0]], parts[1]))
    return keys

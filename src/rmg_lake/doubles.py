"""An import of the pilot's files that would count its rounds twice is refused.

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

from rmg_lake.errors import LakeError
from rmg_lake.log import Batch, LogEntry, in_effect
from rmg_lake.sources.legacy import PilotFiles

__all__ = ["refuse_doubles"]

_ORIGIN = re.compile(r" round ([0-9a-f]{64})$")
_OPTIONS = re.compile(r"importer \d+: (.*)\)$")
Key = tuple[str, ...]  # ("origin", sha256) or ("file", name, sha256, "round <n>")


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

"""Importing the pilot's files into a lake that holds some already.

A file imported on its own is read with what the lake knows of its rounds: the operator-ID
files and photos of earlier imports by the same factory and observer (`context`), so its
rounds come out as they did with the folder, not as poorer new versions.

A round's id is what it is (factory, observer, department, team, task, time), so the same
files imported again with another `--team` (or factory, observer) would make new
observations of the same rounds. The rounds to be listed are held against those in
effect: a round already taken in, from the same bytes as the app wrote it (its origin, in
the fingerprint) or from the same file and place, under another id, refuses the import,
naming the batches. `instead_of` those batches, the import rolls them back first and
reads everything again, with the versions of the folder's files they kept: the folder
holds only the last start-of-day form, and the lake the earlier ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from rmg_lake._internal.progress import Track
from rmg_lake.config import Settings
from rmg_lake.errors import LakeError, guarded
from rmg_lake.lake import IngestResult, Lake
from rmg_lake.sources.legacy import PilotFiles, study_of
from rmg_lake.sources.pilot import ID_FILE, PilotFile
from rmg_lake.store.log import Batch, LogEntry, in_effect, retracted
from rmg_lake.store.reexamine import kept_file

__all__ = ["import_pilot", "refuse_doubles"]

_ORIGIN = re.compile(r" round ([0-9a-f]{64})(?: |$)")
_PHOTO = re.compile(r"(?i).*\.(jpe?g|png)$")
Key = tuple[str, ...]  # ("origin", sha256) or ("file", name, sha256, "round <n>")


@guarded
def import_pilot(lake: Lake, files: PilotFiles, *, instead_of: Collection[int] = (),
                 settings: Settings | None = None, track: Track | None = None,
                 ) -> IngestResult:
    """Import the pilot's `files` (`rmg-lake import-legacy`), `instead_of` those earlier
    imports (rolled back first: the import that replaces them). What an older rmg-lake
    quarantined is examined again first, so that the import is held against it."""
    healed, unexamined = lake.reexamine()
    entries = lake.entries()
    replaced = _replaced(entries, set(instead_of))
    if replaced:  # read again all it lists, though the batches replaced saw it
        files.salt = f" instead of {','.join(str(b.batch) for b in replaced)}"
    files.recall(_kept(lake.root, replaced), _context(lake.root, entries, files))
    refuse_doubles(files, also_out=set(instead_of))(entries)  # (before rolling back)
    for batch in sorted(set(instead_of) - retracted(entries)):
        lake.rollback(batch, f"imported again as {files.study.options}")
    result = lake.ingest(files, settings=settings, track=track,
                         before=refuse_doubles(files))
    return replace(result, reexamined=healed + result.reexamined,
                   unexamined=unexamined + result.unexamined)


def refuse_doubles(files: PilotFiles, *, also_out: Collection[int] = (),
                   ) -> Callable[[list[LogEntry]], None]:
    """A check for `Lake.ingest`: refuses if importing `files` would count rounds twice
    (as if the batches `also_out` were rolled back)."""

    def check(entries: list[LogEntry]) -> None:
        taken = _taken([b for b in in_effect(entries) if b.batch not in also_out])
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
            numbers = sorted(clash)
            said = study_of(next(e.source for e in entries
                                 if isinstance(e, Batch) and e.batch == numbers[0]))
            where = f"batch {numbers[0]}" if len(numbers) == 1 else \
                f"batches {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
            raise LakeError(
                f"{twice} of these rounds were imported already, in {where}"
                f"{f' ({said.options})' if said else ''}: imported again as "
                f"{files.study.options}, they would count twice",
                hint=f"to import them as you ask now instead, add --instead-of "
                     f"{','.join(map(str, numbers))} (those batches are rolled back, and "
                     "what they kept of the folder read again)")

    return check


def _replaced(entries: list[LogEntry], batches: set[int]) -> list[Batch]:
    """The imports of the pilot's files that `batches` name, or a one-line error."""
    found = {e.batch: e for e in entries if isinstance(e, Batch)}
    for number in sorted(batches):
        batch = found.get(number)
        if batch is None or study_of(batch.source) is None:
            raise LakeError(f"batch {number} is no import of the pilot's files",
                            field="--instead-of",
                            hint="name the batches the refusal named (see `rmg-lake log`)")
    return [found[n] for n in sorted(batches)]


def _kept(lake: Path, batches: list[Batch]) -> list[PilotFile]:
    """Every version of a pilot file that `batches` kept as evidence."""
    found: dict[tuple[str, str, datetime], PilotFile] = {}
    for batch in batches:
        for record in batch.files:
            key = (record.path, record.sha256, record.modified)  # (the form: its time too)
            if key not in found and record.stored.startswith("attachments/") \
                    and (kept := kept_file(lake, record)):
                found[key] = kept
    return list(found.values())


def _context(lake: Path, entries: list[LogEntry], files: PilotFiles) -> list[PilotFile]:
    """The operator-ID files and photos that imports in effect of the same factory and
    observer kept: who worked at a machine that day, and when a round ended."""
    found: dict[tuple[str, str], PilotFile] = {}
    for batch in in_effect(entries):
        study = study_of(batch.source)
        if study is None or (study.factory, study.observer) != (files.study.factory,
                                                                files.study.observer):
            continue
        for record in batch.files:
            name = record.path.rsplit("/", 1)[-1]
            if not record.stored.startswith("attachments/") or (name, record.sha256) in found:
                continue
            photo = bool(_PHOTO.fullmatch(name))  # (its name and time are all it says)
            if (photo or ID_FILE.fullmatch(name)) and (
                    kept := kept_file(lake, record, data=not photo)):
                found[name, record.sha256] = kept
    return list(found.values())


def _taken(batches: list[Batch]) -> dict[Key, dict[int, str]]:
    """Each round taken in by an import in `batches` → the batches that hold it → its
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

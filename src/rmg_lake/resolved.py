"""Which quarantined files a later batch took in, or quarantined again.

A quarantined file stays in the log as it was; it is *resolved* by the first later batch
in effect from the same source that holds a file at the same path, or, for a pilot round,
under it (`Knitting_wip.json/round 3` by `Knitting_wip.json/round 3/wip_….json`), and
by a batch that examines its batch's quarantine again (`rmg_lake.reexamine`):

    added         taken in as an observation (a fixed version, or read by a newer reader)
    attachment    kept as an attachment (a pilot file read by a newer importer)
    quarantined   quarantined again: a new version of it, or another reason

The imports of the pilot's files of one factory and observer are one source whatever
their folder and options (one tablet's files), so a round that an import refused and a
later one takes in (with the day's operator-ID file, `--department`, or the file put
right and imported alone) is resolved by it.
"""

from __future__ import annotations

from typing import NamedTuple

from rmg_lake.log import Batch, FileRecord
from rmg_lake.sources.legacy import study_of

__all__ = ["Resolution", "and_above", "family", "resolutions"]



class Resolution(NamedTuple):
    batch: int
    outcome: str  # added, attachment or quarantined


def family(source: str) -> str:
    """A source's name without what may differ between reads of the same files: an import
    of the pilot's files by its factory and observer, whatever its folder, importer and
    other options."""
    study = study_of(source)
    return f"legacy: factory={study.factory} observer={study.observer}" if study else source


def resolutions(batches: list[Batch]) -> dict[tuple[int, str], Resolution]:
    """(batch, path) of each quarantined file of `batches` (pass those in effect, in
    order) that a later one resolved → how. A batch that examines others' quarantine
    again resolves their files (even those a newer version has superseded since)."""
    refused: dict[str, dict[str, list[int]]] = {}  # family → path → batches that refused it
    found: dict[tuple[int, str], Resolution] = {}
    for batch in batches:
        paths = refused.get(family(batch.source))
        for record in batch.files if paths else ():
            assert paths is not None
            outcome = _taken(record)
            for path in and_above(record.path) if outcome is not None else ():
                for earlier in paths.get(path, ()):
                    was = found.get((earlier, path))
                    if (batch.examines is None and was is None) or (
                            earlier in (batch.examines or ())
                            and (was is None or was.outcome == "quarantined")) or (
                            was == (batch.batch, "attachment") and outcome == "added"):
                        # (a file kept, and a round of it taken in: it was taken in)
                        found[earlier, path] = Resolution(batch.batch, outcome or "")
        for record in batch.files:
            if record.outcome == "quarantined":
                refused.setdefault(family(batch.source), {}).setdefault(
                    record.path, []).append(batch.batch)
    return found


def _taken(record: FileRecord) -> str | None:
    """What a record does to a quarantined file at its path: None if nothing (the same
    bad bytes seen again)."""
    if record.outcome in ("added", "attachment", "quarantined"):
        return record.outcome
    if record.outcome == "duplicate" and record.stored.startswith("raw/"):
        return "added"
    if record.outcome == "duplicate" and record.stored.startswith("attachments/"):
        return "attachment"
    return None


def and_above(path: str) -> list[str]:
    """`a/b/c`, `a/b`, `a`: the path and the paths it lies under."""
    found = [path]
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        found.append(path)
    return found

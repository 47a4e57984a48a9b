"""Which quarantined files a later batch took in, or quarantined again.

A quarantined file stays in the log as it was; it is *resolved* by the first later batch
in effect from the same source that holds a file at the same path, or, for a pilot round,
under it (`Knitting_wip.json/round 3` by `Knitting_wip.json/round 3/wip_….json`), and
by a batch that examines its batch's quarantine again (`rmg_lake.store.reexamine`):

    added         taken in as an observation (a fixed version, or read by a newer reader)
    attachment    kept as an attachment (a pilot file read by a newer importer)
    quarantined   quarantined again: a new version of it, or another reason

The imports of the pilot's files of one factory and observer are one source whatever
their folder and options (one tablet's files), so a round that an import refused and a
later one takes in (with the day's operator-ID file, `--department`, or the file put
right and imported alone) is resolved by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import polars as pl

from rmg_lake.sources.legacy import study_of
from rmg_lake.store.log import Batch

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


def resolutions(batches: list[Batch], earlier: pl.DataFrame | None = None,
                families: Mapping[int, str] | None = None,
                ) -> dict[tuple[int, str], Resolution]:
    """(batch, path) of each quarantined file of `batches` (pass those in effect, in
    order) that a later one resolved → how. A batch that examines others' quarantine
    again resolves their files (even those a newer version has superseded since).

    With `earlier`, the quarantine frame of the batches in effect before `batches` (and
    `families`: the family of each of its batches), it goes on from there."""
    refused: dict[str, dict[str, list[int]]] = {}  # family → path → batches that refused it
    found: dict[tuple[int, str], Resolution] = {}
    if earlier is not None and families is not None:
        for number, path, by, outcome in earlier.select(
                "batch", "source_path", "resolved_by", "resolution").iter_rows():
            refused.setdefault(families[number], {}).setdefault(path, []).append(number)
            if by is not None:
                found[number, path] = Resolution(by, outcome)
    for batch in batches:
        paths = refused.get(family(batch.source))
        if not paths and not batch.counts.get("quarantined"):
            continue
        records = batch.frame(["path", "outcome", "stored"])
        for path, outcome, stored in records.filter(
                _under(records["path"], set(paths))).iter_rows() if paths else ():
            assert paths is not None
            taken = _taken(outcome, stored)
            for above in and_above(path) if taken is not None else ():
                for refuser in paths.get(above, ()):
                    was = found.get((refuser, above))
                    if (batch.examines is None and was is None) or (
                            refuser in (batch.examines or ())
                            and (was is None or was.outcome == "quarantined")) or (
                            was == (batch.batch, "attachment") and taken == "added"):
                        # (a file kept, and a round of it taken in: it was taken in)
                        found[refuser, above] = Resolution(batch.batch, taken or "")
        for path in records.filter(pl.col("outcome") == "quarantined")["path"]:
            refused.setdefault(family(batch.source), {}).setdefault(path, []).append(
                batch.batch)
    return found


def _under(paths: pl.Series, wanted: set[str]) -> pl.Series:
    """Whether each of `paths` is one of `wanted` or lies under one."""
    found, above = paths.is_in(list(wanted)), paths
    for _ in range(int(paths.str.count_matches("/").max() or 0)):  # type: ignore[arg-type]
        above = above.str.replace(r"/[^/]*$", "")
        found = found | above.is_in(list(wanted))
    return found


def _taken(outcome: str, stored: str) -> str | None:
    """What a file record does to a quarantined file at its path: None if nothing (the
    same bad bytes seen again)."""
    if outcome in ("added", "attachment", "quarantined"):
        return outcome
    if outcome == "duplicate" and stored.startswith("raw/"):
        return "added"
    if outcome == "duplicate" and stored.startswith("attachments/"):
        return "attachment"
    return None


def and_above(path: str) -> list[str]:
    """`a/b/c`, `a/b`, `a`: the path and the paths it lies under."""
    found = [path]
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        found.append(path)
    return found

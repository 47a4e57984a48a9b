"""What the lake's operations return: an ingest's batches, a rollback, a correction."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rmg_lake.store.log import Batch, Correction, CorrectionRow, Review, Rollback
from rmg_lake.store.records import OUTCOMES, FileRecord, file_records

__all__ = ["Corrected", "IngestResult", "RolledBack"]


@dataclass(frozen=True, slots=True)
class RolledBack:
    entry: Rollback  # the new log entry
    removed: list[int]  # ingests and corrections it took out of effect
    restored: list[int]  # ingests and corrections it put back


@dataclass(frozen=True, slots=True)
class Corrected:
    rows: tuple[CorrectionRow, ...]  # every row of the sheet, with its outcome
    entry: Correction | None  # the new log entry; None if nothing was applied
    same_as: int | None = None  # the correction that applied this very sheet before
    reviews: tuple[Review, ...] = ()  # a checks workbook's flags reviewed, with outcomes

    def count(self, outcome: str) -> int:
        """Rows and reviews with that outcome (`applied`, `already`, `reviewed`, `refused`)."""
        return sum(1 for row in self.rows if row.outcome == outcome) + \
            sum(1 for review in self.reviews if review.outcome == outcome)


@dataclass(frozen=True, slots=True)
class IngestResult:
    source: str
    batches: tuple[Batch, ...]  # none when nothing was new and the settings were the same
    vanished: int = 0  # files that went away while being read; taken if they come back
    gone: tuple[str, ...] = ()  # deleted or moved away at the source: the lake keeps them
    relisted: bool = False  # the source's stored cursor had expired: listed whole again
    # batches that examined again what an older rmg-lake quarantined (rmg_lake.store.reexamine)
    reexamined: tuple[Batch, ...] = ()
    unexamined: tuple[str, ...] = ()  # examinations that failed: why (the ingest went on)

    @property
    def batch(self) -> Batch | None:
        """The last batch committed (the only one, but for a very large ingest)."""
        return self.batches[-1] if self.batches else None

    @property
    def files(self) -> list[FileRecord]:
        """What became of each file, in order (read from its batches' records when asked)."""
        return [record for batch in self.batches for record in batch.files]

    @property
    def counts(self) -> dict[str, int]:
        """seen = added + duplicate + quarantined + attachment + deferred, over its batches."""
        return {key: sum(b.counts.get(key, 0) for b in self.batches)
                for key in ("seen", *OUTCOMES, "deferred")}

    @property
    def quarantined(self) -> list[FileRecord]:
        """The files it quarantined, in order."""
        return [f for b in self.batches if b.counts.get("quarantined")
                for f in file_records(b.frame().filter(pl.col("outcome") == "quarantined"))]

    @property
    def superseding(self) -> int:
        """New versions that replace the current version of an observation."""
        return sum(b.frame(["supersedes"])["supersedes"].count() for b in self.batches)

    @property
    def with_unknown_keys(self) -> int:
        return sum(b.frame(["extra_keys"])["extra_keys"].count() for b in self.batches)

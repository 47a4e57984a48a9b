"""One ingest: list the source, keep every new file, commit one log entry, refresh what derives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rmg_lake.contract import InvalidObservation, validate_file
from rmg_lake.log import Batch, FileRecord
from rmg_lake.progress import Track
from rmg_lake.sources import Source, SourceFile
from rmg_lake.store import RawStore, sha256

__all__ = ["Index", "collect", "new_batch"]


@dataclass
class Index:
    """What the log already holds, to dedupe and to skip files seen before."""

    seen: set[tuple[str, str, str]] = field(default_factory=set)  # source, path, fingerprint
    events: dict[str, FileRecord] = field(default_factory=dict)  # event sha256 → its record
    current: dict[str, str] = field(default_factory=dict)  # observation_id → latest event

    @classmethod
    def of(cls, batches: Iterable[Batch]) -> Index:
        index = cls()
        for batch in batches:
            for record in batch.files:
                index.note(batch.source, record)
        return index

    def note(self, source: str, record: FileRecord) -> None:
        self.seen.add((source, record.path, record.fingerprint))
        if record.outcome == "added" and record.observation_id is not None:
            self.events[record.sha256] = record
            self.current[record.observation_id] = record.sha256


def collect(
    source: Source, store: RawStore, index: Index, *, track: Track | None = None,
) -> tuple[FileRecord, ...]:
    """Read every file the log has not seen, store it, and say what became of it.

    Files are taken oldest first (then by path), so a later version of an observation
    supersedes an earlier one even when both arrive in one batch.
    """
    new = sorted((f for f in source.list() if (source.name, f.path, f.fingerprint)
                  not in index.seen), key=lambda f: (f.modified, f.path))
    files: Iterable[SourceFile] = track(new, len(new), "Ingesting") if track else new
    records = []
    for file in files:
        record = _keep(file, source.read(file), store, index)
        index.note(source.name, record)
        records.append(record)
    return tuple(records)


def _keep(file: SourceFile, data: bytes, store: RawStore, index: Index) -> FileRecord:
    digest = sha256(data)
    common: dict[str, Any] = {"path": file.path, "size": len(data), "modified": file.modified,
                              "fingerprint": file.fingerprint, "sha256": digest}
    if not file.path.lower().endswith(".json"):
        return FileRecord(outcome="attachment",
                          stored=store.put_attachment(file.path, digest, data), **common)
    if (event := index.events.get(digest)) is not None:
        return FileRecord(outcome="duplicate", stored=event.stored,
                          observation_id=event.observation_id, duplicate_of=digest, **common)
    try:
        valid = validate_file(file.path, data)
    except InvalidObservation as err:
        return FileRecord(outcome="quarantined", field=err.field, reason=err.message,
                          stored=store.put_quarantine(file.path, digest, data), **common)
    obs = valid.observation
    observation_id = str(obs.observation_id)
    return FileRecord(outcome="added", stored=store.put_raw(obs.day, digest, data),
                      event_id=digest, observation_id=observation_id, day=obs.day,
                      supersedes=index.current.get(observation_id),
                      extra_keys=valid.extra_keys or None, **common)


def new_batch(number: int, source: Source, records: tuple[FileRecord, ...]) -> Batch:
    return Batch(batch=number, committed_at=datetime.now(UTC), source=source.name,
                 counts=Batch.count(records), files=records)

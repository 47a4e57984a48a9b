"""The log's history: list the batches, show what one did, roll one back."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from rmg_lake.cli.corrections import show_observation
from rmg_lake.cli.shell import LakeOption, app, lake_from, out
from rmg_lake.corrections.apply import shown_change, shown_field, shown_id, shown_row
from rmg_lake.errors import LakeError, shown
from rmg_lake.store.log import Batch, Correction, CorrectionRow, LogEntry, Rollback, rolled_back_by

JsonOption = Annotated[bool, typer.Option("--json", help="JSON for programs, not a table.")]


def _when(entry: LogEntry) -> str:
    """The commit time on this computer's clock (its zone named)."""
    return entry.committed_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _state(entry: LogEntry, by: dict[int, int]) -> str:
    """`rolled back by 7`, `rollback of 3: reason`, or `` for a batch in effect."""
    parts = []
    if isinstance(entry, Rollback):
        parts.append(f"rollback of {entry.target}: {entry.reason}")
    if entry.batch in by:
        parts.append(f"rolled back by {by[entry.batch]}")
    return "; ".join(parts)


def _entry_json(entry: LogEntry, by: dict[int, int]) -> dict[str, Any]:
    common = {"batch": entry.batch, "kind": entry.kind,
              "committed_at": entry.committed_at.isoformat(),
              "rolled_back": entry.batch in by}
    if isinstance(entry, Rollback):
        return {**common, "target": entry.target, "reason": entry.reason}
    if isinstance(entry, Correction):
        return {**common, "sheet": entry.sheet, "by": entry.by, **entry.counts}
    return {**common, "source": entry.source, **entry.counts}


@app.command("log")
def log_(lake: LakeOption = None, json: JsonOption = False) -> None:
    """One line per batch: when, from where, what it added, and whether it is rolled back."""
    entries = lake_from(lake).entries()
    by = rolled_back_by(entries)
    if json:
        sys.stdout.buffer.write(orjson.dumps([_entry_json(e, by) for e in entries],
                                             option=orjson.OPT_INDENT_2) + b"\n")
        return
    if not entries:
        out.print("The log is empty: no batch yet.")
        return
    zone = entries[-1].committed_at.astimezone().strftime("%Z")
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("batch", justify="right")
    table.add_column("committed", no_wrap=True)
    table.add_column("source", overflow="ellipsis", no_wrap=True, max_width=16)
    for name in ("seen", "added", "dup", "quar", "att"):
        table.add_column(name, justify="right")
    table.add_column("state", min_width=14)
    for e in entries:
        counts = [f"{e.counts[k]:,}" for k in ("seen", "added", "duplicate", "quarantined",
                                                "attachment")] \
            if isinstance(e, Batch) else [""] * 5
        source = shown(e.source.removeprefix("local:")) if isinstance(e, Batch) \
            else shown(f"sheet {e.sheet}") if isinstance(e, Correction) \
            else f"rollback of {e.target}"
        state = _state(e, by)
        if isinstance(e, Correction):
            state = "; ".join([f"{e.counts['applied']:,} applied, "
                               + (f"{e.counts['reviewed']:,} reviewed, " if e.reviews else "")
                               + f"{e.counts['refused']:,} refused", *filter(None, [state])])
        if isinstance(e, Rollback):  # the source column says what it rolls back
            state = state.removeprefix(f"rollback of {e.target}: ")
        table.add_row(str(e.batch), e.committed_at.astimezone().strftime("%d %b %H:%M"),
                      source, *counts, shown(state),
                      style="dim" if e.batch in by else None)
    out.print(table)
    out.print(f"(times in {zone}; dup: duplicates, quar: quarantined, att: attachments; "
              "`rmg-lake show N` lists what a batch did, file by file)", style="dim")


def _row_line(row: CorrectionRow) -> str:
    """One row of a corrections sheet, its values shown only if they name no person."""
    change = shown_change(row)
    why = f" — {row.detail}" if row.detail else ""
    where = f"{row.worksheet} row {row.row}" if row.worksheet else f"row {row.row:<4}"
    return shown(f"  {row.outcome:<8} {where} {shown_id(row.observation_id)}  {change}{why}")


@app.command()
def show(
    what: Annotated[str, typer.Argument(
        metavar="BATCH|OBSERVATION_ID",
        help="A batch's number (see `rmg-lake log`), or an observation's id (or its first "
             "8 characters or more).", show_default=False)],
    lake: LakeOption = None,
    json: JsonOption = False,
) -> None:
    """What one batch did, file by file (or row by row); or one observation's story: the
    files that brought it, the batches that superseded and corrected it, its values now."""
    the_lake = lake_from(lake)
    if not (what.isascii() and what.isdigit() and len(what) <= 6):  # (_log/NNNNNN.json)
        show_observation(the_lake, what, json)
        return
    batch = int(what)
    entries = the_lake.entries()
    if not 1 <= batch <= len(entries):
        raise LakeError(f"there is no batch {batch}",
                        hint=f"the log holds batches 1 to {len(entries)}" if entries
                        else "the log is empty")
    entry, by = entries[batch - 1], rolled_back_by(entries)
    if json:
        files = [{**f.model_dump(mode="json", exclude_none=True),
                  **({"extra_keys": [shown_field(k) for k in f.extra_keys]}
                     if f.extra_keys else {})}
                 for f in entry.files] if isinstance(entry, Batch) else []
        rows = {"rows": [shown_row(r) for r in entry.rows],
                "reviews": [r.model_dump(exclude_none=True) for r in entry.reviews]} \
            if isinstance(entry, Correction) else {}
        sys.stdout.buffer.write(orjson.dumps({**_entry_json(entry, by), "files": files,
                                              **rows}, option=orjson.OPT_INDENT_2) + b"\n")
        return
    state = _state(entry, by)
    out.print(f"Batch {entry.batch}, committed {_when(entry)}"
              + (f", from {shown(entry.source)}" if isinstance(entry, Batch) else "")
              + (f", corrections from {shown(entry.sheet)} by {shown(entry.by)}"
                 if isinstance(entry, Correction) else "")
              + (f" — {shown(state)}" if state else ""), highlight=False)
    if isinstance(entry, Correction):
        for row in entry.rows:
            out.print(_row_line(row), highlight=False)
        for review in entry.reviews:
            why = f" — {review.detail}" if review.detail else ""
            out.print(shown(f"  {review.outcome:<8} {review.worksheet} row {review.row}, flag "
                            f"{review.flag_id}: {review.resolution}{why}"), highlight=False)
        return
    if isinstance(entry, Rollback):
        return
    for f in entry.files:  # one line a file, the full path last: easy to read and to grep
        detail = (f"{f.field}: {f.reason}" if f.field else f.reason) if f.reason else \
            f"supersedes {f.supersedes[:12]}…" if f.supersedes else \
            f"same bytes as {f.duplicate_of[:12]}…" if f.duplicate_of else ""
        out.print(shown(f"  {f.outcome:<11} {f.sha256[:12]}…  {f.path}"
                        + (f" — {detail}" if detail else "")), highlight=False)
    for d in entry.deferred:
        out.print(shown(f"  {'deferred':<11} {'':13}  {d.path} — {d.reason}"), highlight=False)


@app.command()
def rollback(
    batch: Annotated[int, typer.Argument(help="The batch to take out of effect.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: kept in the log.")],
    lake: LakeOption = None,
) -> None:
    """Take a batch's events out of the frames; its files stay, and it can be put back.

    Nothing is deleted: a rollback is a new entry in the log, and rolling it back restores
    the batch.
    """
    done = lake_from(lake).rollback(batch, reason)
    changes = []
    if done.removed:
        changes.append(f"no longer show {_batches(done.removed)}")
    if done.restored:
        changes.append(f"show {_batches(done.restored)} again")
    out.print(f"Batch {done.entry.batch} rolls back batch {batch}: the frames and views "
              f"{' and '.join(changes)}. `rmg-lake rollback {done.entry.batch} --reason …` "
              "undoes it.")


def _batches(numbers: list[int]) -> str:
    return ("batch " if len(numbers) == 1 else "batches ") + ", ".join(map(str, numbers))

"""Corrections: apply a sheet of fixes, and tell one observation's story."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, Any

import pydantic_core
import typer

from rmg_lake.cli.shell import LakeOption, about, app, err, lake_from, out, plural
from rmg_lake.config import load_config
from rmg_lake.corrections.apply import DROP, shown_change, shown_field, shown_id, shown_value
from rmg_lake.deliver.story import Fix, Story, story
from rmg_lake.errors import LakeError, shown
from rmg_lake.lake import Corrected, Lake
from rmg_lake.store.log import CorrectionRow, Review


@app.command()
def correct(
    sheet: Annotated[Path, typer.Argument(
        help="The sheet (.csv or .xlsx): observation_id, field, old_value, new_value, "
             "reason; or a checks workbook filled in.", show_default=False)],
    lake: LakeOption = None,
    partial: Annotated[bool, typer.Option(
        "--partial", help="Apply the rows that can be, even if others are refused.")] = False,
    by: Annotated[str | None, typer.Option(
        "--by", help="Who corrects, kept in the log (default: `by` in rmg-lake.toml, else "
                     "your login name).")] = None,
) -> None:
    """Fix observations' values from a sheet, guarded: a row applies only if the value is
    still its old_value, and all rows apply or none (unless --partial).

    `field` is a path into the observation (team, machines.KN3.worker_id,
    interactions.4.topic); new_value DROP withdraws the observation. Raw files are never
    changed: the sheet is kept, and the log records every row.

    A checks workbook (`check --format xlsx`) filled in by the field manager is taken as
    it comes back: a row with a change corrects its flag, a row with only a resolution
    records the flag as reviewed; both settle the flag.
    """
    the_lake = lake_from(lake)
    config = about(load_config(), the_lake.root)
    try:
        who = (by or (config.by if config else None) or getpass.getuser()).strip()
    except (OSError, KeyError):  # no login name to be had (some containers)
        who = ""
    if not who:
        raise LakeError("say who corrects", hint="pass --by NAME")
    done = the_lake.correct(sheet, by=who, partial=partial)
    _summary(sheet, done, partial)


def _summary(sheet: Path, done: Corrected, partial: bool) -> None:
    name = shown(sheet.name)
    if done.same_as is not None:
        out.print(f"{name} was applied as batch {done.same_as}: nothing changes.",
                  highlight=False)
        return
    refusals = [*(_refusal(row) for row in done.rows if row.outcome == "refused"),
                *(_refused_review(review) for review in done.reviews
                  if review.outcome == "refused")]
    counts = ", ".join([f"{plural(done.count('applied'), 'row')} applied",
                        *([f"{plural(done.count('reviewed'), 'flag')} reviewed"]
                          if done.reviews else []),
                        *([f"{done.count('already')} already so"] if done.count("already")
                          else []), *([f"{len(refusals)} refused"] if refusals else [])])
    if done.entry is not None:
        shows = "The frames and views show the corrected values" if done.count("applied") \
            else "The flags view shows them settled"
        out.print(f"Batch {done.entry.batch} corrects from {name}: {counts}. {shows} "
                  f"(`rmg-lake rollback {done.entry.batch} --reason …` undoes it).",
                  highlight=False)
    elif not refusals:
        out.print(f"{name} changes nothing: every value is already as it says ({counts}).",
                  highlight=False)
    for refusal in refusals:
        err.print(refusal, highlight=False)
    if done.entry is None and refusals:
        could = done.count("applied") + done.count("reviewed")
        err.print(", ".join([
            f"Nothing applied: {plural(done.count('applied'), 'row')} could apply",
            *([f"{plural(done.count('reviewed'), 'flag')} could be reviewed"]
              if done.reviews else []),
            f"{done.count('already')} already so", f"{len(refusals)} refused"]) + "." + (
            "" if partial or not could else
            " Fix the refused rows, or pass --partial to apply the others."),
            highlight=False)
        raise typer.Exit(1)


def _refusal(row: CorrectionRow) -> str:
    """`row 7, 3f2a9c1e…, team: old_value is not the current value (now 'control')`."""
    field = shown_field(row.field) if row.field else DROP
    now = f" (now {shown_value(row.field, row.current)})" if row.current is not None else ""
    where = f"{row.worksheet} row {row.row}" if row.worksheet else f"row {row.row}"
    return shown(f"  {where}, {shown_id(row.observation_id)}, {field}: {row.detail}{now}")


def _refused_review(review: Review) -> str:
    """`wip_jump row 4, flag 1a2b3c4d5e6f7a8b: no such flag in the lake now (…)`."""
    return shown(f"  {review.worksheet} row {review.row}, flag {review.flag_id or '(none)'}: "
                 f"{review.detail}")


def show_observation(the_lake: Lake, key: str, json: bool) -> None:
    """`rmg-lake show OBSERVATION_ID`: its files, its corrections, its values now."""
    told = story(the_lake, key)
    if json:
        # (pydantic's JSON: the values may hold what orjson refuses, e.g. 2**64 in an
        # unknown key, as the raw file does)
        sys.stdout.buffer.write(pydantic_core.to_json(_story_json(told), indent=2) + b"\n")
        return
    out.print(f"Observation {told.observation_id}: {told.state}", highlight=False)
    out.print("Files:", style="bold")
    for a in told.arrivals:
        r = a.record
        notes = [n for n, on in (("shown", a.current), ("rolled back", a.rolled_back)) if on]
        if r.supersedes:
            notes.append(f"supersedes {r.supersedes[:12]}…")
        out.print(shown(f"  batch {a.batch:<4} {r.outcome:<9} {r.stored}  from {r.path}"
                        + (f" — {', '.join(notes)}" if notes else "")), highlight=False)
    if told.attached:
        out.print("Attached (kept as evidence):", style="bold")
    for a in told.attached:
        r = a.record
        out.print(shown(f"  batch {a.batch:<4} {r.outcome:<10} {r.stored}  from {r.path}"
                        + (f" — {r.reason}" if r.reason else "")
                        + (" (rolled back)" if a.rolled_back else "")), highlight=False)
    if told.fixes:
        out.print("Corrections:", style="bold")
    for f in told.fixes:
        row = f.row
        change = shown_change(row)
        state = _standing(f)
        out.print(shown(f"  batch {f.entry.batch:<4} row {row.row:<4} {row.outcome:<8} "
                        f"{change} — {row.reason} ({state}; by {f.entry.by})"),
                  highlight=False)
    if told.payload is not None:
        out.print("Values now (worker and supervisor codes included):", style="bold")
        out.print_json(pydantic_core.to_json(told.payload).decode())


def _standing(fix: Fix) -> str:
    if fix.in_effect:
        return "in effect"
    if fix.rolled_back:
        return "rolled back"
    if fix.row.outcome == "refused":
        return str(fix.row.detail)
    if fix.row.outcome == "already":
        return "it changed nothing"
    return "not in effect: the version shown has another value"


def _story_json(told: Story) -> dict[str, Any]:
    return {
        "observation_id": told.observation_id, "state": told.state,
        "files": [{"batch": a.batch, "shown": a.current, "rolled_back": a.rolled_back,
                   **a.record.model_dump(mode="json", exclude_none=True)}
                  for a in told.arrivals],
        "attached": [{"batch": a.batch, "rolled_back": a.rolled_back,
                      **a.record.model_dump(mode="json", exclude_none=True)}
                     for a in told.attached],
        "corrections": [{"batch": f.entry.batch, "by": f.entry.by, "sheet": f.entry.sheet,
                         "in_effect": f.in_effect, "rolled_back": f.rolled_back,
                         **f.row.model_dump(exclude_none=True)} for f in told.fixes],
        "values": told.payload,
    }

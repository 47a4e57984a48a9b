"""The quality checks' findings (the `flags` view) as a terminal table, CSV or JSON."""

from __future__ import annotations

import json

import polars as pl
from rich.console import Console
from rich.text import Text

from rmg_lake.deliver.cells import csv_safe
from rmg_lake.derive.checks import COLUMNS, SEVERITIES

__all__ = ["flags_csv", "flags_json", "render_flags"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render_flags(flags: pl.DataFrame, console: Console) -> None:
    """Day by day: each finding's check (coloured by severity), where and by whom (and if
    settled, how), and beneath it what was found (two lines: it reads on a phone too)."""
    if flags.is_empty():
        console.print("No flags: every check passes.")
        return
    for (day,), rows in flags.partition_by("day", as_dict=True, maintain_order=True).items():
        tally = rows["severity"].value_counts()
        counts = dict(zip(tally["severity"], tally["count"], strict=True))
        lines = [Text(f"{day}: " + ", ".join(
            _plural(counts[s], s) for s in SEVERITIES if s in counts), style="bold")]
        for row in rows.iter_rows(named=True):
            where = "/".join(row[k] for k in ("factory", "department", "team") if row[k])
            settled = f"  ({row['status']} in batch {row['settled_by']})" \
                if row["status"] != "open" else ""
            lines.append(Text.assemble(
                "  ", (f"{row['check_name']:<22}", _STYLE[row["severity"]]), where,
                f"  {row['observer']}" if row["observer"] else "", (settled, "dim")))
            lines.append(Text(f"      {row['detail']}"))
        console.print(Text("\n").join(lines), highlight=False)  # a day at once: fast


def _plural(n: int, severity: str) -> str:
    return f"{n} {severity}" if severity == "info" or n == 1 else f"{n} {severity}s"


def flags_csv(flags: pl.DataFrame) -> str:
    """The flags as CSV with a header line, days as YYYY-MM-DD (a text a spreadsheet would
    run as a formula, such as a file named `=…`, quoted: `rmg_lake.deliver.cells`)."""
    return csv_safe(flags.select(COLUMNS)).write_csv()


def flags_json(flags: pl.DataFrame) -> str:
    """The flags as a JSON list of objects, one per line."""
    rows = flags.select(COLUMNS).with_columns(pl.col("day").cast(pl.String)).to_dicts()
    return "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n"

"""Make `lake/` again with the rmg-lake of the commit its README names (run from here)."""

import csv
import shutil
from datetime import date
from pathlib import Path

import polars as pl

from rmg_lake import open_lake, simulate

here = Path(__file__).resolve().parent
work = here / "work"
shutil.rmtree(work, ignore_errors=True)
shutil.rmtree(here / "lake", ignore_errors=True)
simulate(work / "inbox", days=2, observers=2, seed=31, start=date(2026, 11, 2))
simulate(work / "more", days=1, observers=2, seed=32, start=date(2026, 11, 4))
lake = open_lake(here / "lake", create=True)
lake.ingest(work / "inbox")  # batch 1
wip = lake.table("wip").filter(pl.col("back").is_not_null()).sort("event_id", "machine")
row = wip.row(0, named=True)
with (work / "fixes.csv").open("w", newline="") as sheet:
    writer = csv.writer(sheet)
    writer.writerow(["observation_id", "field", "old_value", "new_value", "reason"])
    writer.writerow([row["observation_id"], f"machines.{row['machine']}.back", row["back"],
                     row["back"] + 1, "recounted"])
lake.correct(work / "fixes.csv", by="lake-3")  # batch 2
lake.ingest(work / "more")  # batch 3
lake.rollback(3, "the wrong folder")  # batch 4
for derived in ("frames", "lake.duckdb", "_derived.json", ".lock"):
    path = here / "lake" / derived
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
shutil.rmtree(work)

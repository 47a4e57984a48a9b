"""`lake.duckdb`: DuckDB views over the derived Parquet frames, for the DuckDB CLI and SQL users.

Each view lists its frame's files by absolute path, so the file works from any working
directory (the lake rewrites it when the folder moves). The file is built beside the old
one and swapped in whole, so a reader never sees a half-made catalog; the files an open
catalog names stay until the next update has swapped in its own.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from rmg_lake._internal.faults import reached
from rmg_lake._internal.files import make_private_file, private_umask
from rmg_lake.config import Settings
from rmg_lake.derive.checks import flags_sql
from rmg_lake.derive.pairs import agreement_sql, pairs_sql

__all__ = ["CATALOG", "build_catalog"]

CATALOG = "lake.duckdb"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files(out: Path, parts: dict[str, str]) -> str:
    return "[" + ", ".join(_quote(str(out / parts[key])) for key in sorted(parts)) + "]"


def build_catalog(out: Path, frames: dict[str, dict[str, str]], settings: Settings) -> Path:
    """(Re)write `out/lake.duckdb` with one view per frame (files relative to `out`), the
    `flags` view of the quality checks over them (with the thresholds of `settings`), and
    the observers' `pairs` and `agreement` views (see `rmg_lake.derive.pairs`)."""
    out = out.absolute()
    target, temp = out / CATALOG, out / f".{CATALOG}.new"
    temp.unlink(missing_ok=True)
    with private_umask():  # its file and write-ahead log, from the first byte
        _write(temp, out, frames, settings)
    make_private_file(temp)
    reached("catalog-written")
    temp.replace(target)
    return target


def _write(temp: Path, out: Path, frames: dict[str, dict[str, str]],
           settings: Settings) -> None:
    con = duckdb.connect(str(temp))
    try:
        for name, parts in sorted(frames.items()):
            view = name.removeprefix("teams/")
            source = f"read_parquet({_files(out, parts)})"
            if name == "history":  # with each batch's time, and whether it is in effect
                source = (f"(SELECT h.batch, b.committed_at, h.* EXCLUDE (batch), "
                          f"b.rolled_back FROM {source} h JOIN batches b USING (batch))")
            con.execute(f'CREATE VIEW "{view}" AS SELECT * FROM {source}')
        con.execute(f"CREATE VIEW flags AS {flags_sql(settings)}")
        con.execute(f"CREATE VIEW pairs AS {pairs_sql()}")
        con.execute(f"CREATE VIEW agreement AS {agreement_sql()}")
        con.execute("CHECKPOINT")
    finally:
        con.close()

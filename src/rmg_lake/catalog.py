"""`lake.duckdb`: DuckDB views over the derived Parquet frames, for the DuckDB CLI and SQL users.

Views name the frames by absolute path, so the file works from any working directory (the
lake rewrites it when the folder moves). The file is built beside the old one and swapped
in whole, so a reader never sees a half-made catalog.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

__all__ = ["CATALOG", "build_catalog"]

CATALOG = "lake.duckdb"


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def build_catalog(lake: Path) -> Path:
    """(Re)write `lake.duckdb` with one view per frame under `frames/`."""
    lake = lake.absolute()
    frames = lake / "frames"
    target, temp = lake / CATALOG, lake / f".{CATALOG}.new"
    temp.unlink(missing_ok=True)
    con = duckdb.connect(str(temp))
    try:
        views = sorted(frames.glob("*.parquet")) + sorted((frames / "teams").glob("*.parquet"))
        for parquet in views:
            con.execute(f'CREATE VIEW "{parquet.stem}" AS '
                        f"SELECT * FROM read_parquet({_quote(parquet)})")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    temp.chmod(0o600)
    temp.replace(target)
    return target

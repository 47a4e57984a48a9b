"""`lake.duckdb`: DuckDB views over the derived Parquet frames, for the DuckDB CLI and SQL users.

Views name the frames by absolute path, so the file works from any working directory; the
table `_lake` records the folder and the number of batches it was built for, so the lake
can tell when it has moved or fallen behind the log and rebuild. The file is built beside
the old one and swapped in whole, so a reader never sees a half-made catalog.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

__all__ = ["CATALOG", "build_catalog", "catalog_state"]

CATALOG = "lake.duckdb"


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def build_catalog(lake: Path, batches: int) -> Path:
    """(Re)write `lake.duckdb` with one view per frame under `frames/`, built from `batches`."""
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
        con.execute("CREATE TABLE _lake AS SELECT ? AS root, ? AS batches", [str(lake), batches])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    temp.chmod(0o600)
    temp.replace(target)
    return target


def catalog_state(lake: Path) -> tuple[str, int] | None:
    """The lake folder and batch count the catalog was built for; None if it is unusable."""
    path = lake / CATALOG
    if not path.is_file():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT root, batches FROM _lake").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return (str(row[0]), int(row[1])) if row else None

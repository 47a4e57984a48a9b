"""`lake.duckdb`: DuckDB views over the derived Parquet frames, for the DuckDB CLI and SQL users.

Views name the frames by absolute path, so the file works from any working directory;
`refresh_catalog` rewrites it when the lake folder has moved. The file is built beside
the old one and swapped in whole, so a reader never sees a half-made catalog.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

__all__ = ["CATALOG", "build_catalog", "catalog_root"]

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
        con.execute("CREATE TABLE _lake AS SELECT ? AS root", [str(lake)])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    temp.chmod(0o600)
    temp.replace(target)
    return target


def catalog_root(lake: Path) -> str | None:
    """The lake folder the catalog was built for, or None when there is no usable catalog."""
    path = lake / CATALOG
    if not path.is_file():
        return None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        row = con.execute("SELECT root FROM _lake").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return str(row[0]) if row else None

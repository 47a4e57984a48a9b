"""A practical floor for one pass over the files: DuckDB `read_json` over the whole folder,
in one SQL statement, into one table of rows, then one table per task, department and team.

The machines are keyed by code, so the column is read as JSON (inferring a struct over
thousands of differently keyed files runs out of memory) and unnested by its keys.
No validation, no deduplication, nothing kept but the tables. DuckDB cannot skip a
malformed file in this format, so `parseable` first leaves the few bad files out, reading
every file with `json.loads`: part of the floor, timed with the rest (`just bench` times
this script's whole process, as it does the pandas plan's).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

READ = """
CREATE TABLE rows AS
WITH files AS (
    SELECT * FROM read_json({files}, format = 'auto', ignore_errors = true,
        columns = {{observation_id: 'VARCHAR', observer: 'VARCHAR', factory: 'VARCHAR',
                   department: 'VARCHAR', team: 'VARCHAR', task: 'VARCHAR',
                   started_at: 'VARCHAR', ended_at: 'VARCHAR', status: 'VARCHAR',
                   supervisor: 'VARCHAR', machines: 'JSON', interactions: 'JSON'}})
)
SELECT observation_id, observer, factory, department, team, task, started_at, ended_at,
       status, unnest(coalesce(json_keys(machines), [NULL])) AS machine,
       machines, interactions, supervisor
FROM files WHERE task IS NOT NULL
"""


def parseable(folder: Path) -> list[str]:
    """The observation files DuckDB's JSON reader accepts (UTF-8 JSON objects)."""
    files = []
    for path in sorted(folder.rglob("*.json")):
        try:
            if isinstance(json.loads(path.read_bytes()), dict):
                files.append(str(path))
        except ValueError:
            pass
    return files


def run(files: list[str], out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(out / "floor.duckdb"))
    con.execute("SET enable_progress_bar = false")
    con.execute(READ.format(files="?"), [files])
    teams = con.execute("SELECT DISTINCT task, department, team FROM rows").fetchall()
    for task, department, team in teams:
        name = f"{task}_{department}_{team}".replace("-", "_")
        con.execute(f'CREATE TABLE "{name}" AS SELECT *, machines -> machine AS detail '
                    "FROM rows WHERE task = ? AND department = ? AND team = ?",
                    [task, department, team])
    rows = con.execute("SELECT count(*) FROM rows").fetchone()
    con.close()
    return {"rows": rows[0] if rows else 0, "teams": len(teams)}


if __name__ == "__main__":
    print(run(parseable(Path(sys.argv[1])), Path(sys.argv[2])))

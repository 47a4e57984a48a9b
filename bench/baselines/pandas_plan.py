"""The plan the study would otherwise write: pandas, one JSON file at a time.

Read every observation file, make a DataFrame of its rows (one per machine, or one per
interaction), gather them per task, department and team, `pd.concat` each team, concat the
teams into a master frame, and save all of it as Parquet. Files that are not JSON objects
of a known task are skipped (the plan has no quarantine). Written as a pandas user would:
`json.load`, `DataFrame.from_dict(orient="index")`, `pd.concat`, `to_parquet`.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

COMMON = ["observation_id", "observer", "factory", "department", "team", "task",
          "started_at", "ended_at", "status"]


def frame_of(payload: dict) -> pd.DataFrame:
    """The rows of one observation file, with its common columns."""
    if payload["task"] == "interactions":
        df = pd.DataFrame(payload["interactions"])
        df["supervisor"] = payload["supervisor"]
    else:
        df = pd.DataFrame.from_dict(payload["machines"], orient="index")
        df = df.rename_axis("machine").reset_index()
    for column in COMMON:
        df[column] = payload[column]
    return df


NUMBERS = ["back", "front", "sleeve", "collar", "wip", "length_s"]


def _numbers(df: pd.DataFrame) -> pd.DataFrame:
    """What a pandas user adds after the first `to_parquet` fails on a count typed as text."""
    for column in NUMBERS:
        if column in df:
            df[column] = pd.to_numeric(df[column], errors="coerce")
    return df


def run(folder: Path, out: Path) -> dict[str, int]:
    teams: dict[tuple[str, str, str], list[pd.DataFrame]] = defaultdict(list)
    skipped = 0
    for path in sorted(folder.rglob("*.json")):
        try:
            with path.open(encoding="utf-8") as handle:
                payload = json.load(handle)
            key = (payload["task"], payload["department"], payload["team"])
            teams[key].append(frame_of(payload))
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
    out.mkdir(parents=True, exist_ok=True)
    per_team = {key: _numbers(pd.concat(frames, ignore_index=True))
                for key, frames in teams.items()}
    for (task, department, team), df in per_team.items():
        df.to_parquet(out / f"{task}_{department}_{team}.parquet")
    master = pd.concat(per_team.values(), ignore_index=True)
    master.to_parquet(out / "master.parquet")
    return {"rows": len(master), "teams": len(per_team), "skipped": skipped}


if __name__ == "__main__":
    print(run(Path(sys.argv[1]), Path(sys.argv[2])))

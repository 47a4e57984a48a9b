"""The bad files of a simulated sync folder: what each kind is and how to make one.

`rmg_lake.sample.simulate` builds a valid observation for each kind in `BAD_KINDS` and hands it to
`spoil`, which turns it into a file that `validate_file` rejects. Nothing here draws random
numbers, so the simulation's random stream does not depend on this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

__all__ = ["BAD_KINDS", "dump", "spoil"]

Payload = dict[str, Any]

# kind label -> (task, department) of the valid observation that `spoil` turns bad
BAD_KINDS: dict[str, tuple[str, str]] = {
    "truncated JSON": ("wip", "knitting"),
    "empty file": ("roster", "linking"),
    "not UTF-8": ("roster", "knitting"),
    "JSON array instead of object": ("interactions", "linking"),
    "missing required key": ("wip", "linking"),
    "number as string": ("wip", "knitting"),
    "enum out of range": ("roster", "linking"),
    "timestamp without offset": ("interactions", "knitting"),
    "ended_at before started_at": ("wip", "linking"),
    "name and payload disagree": ("roster", "knitting"),
    "unknown task": ("roster", "linking"),
    "observation_id not a UUID": ("interactions", "knitting"),
    "unmanned machine with a worker_id": ("roster", "knitting"),
    "collar component with body panel counts": ("wip", "knitting"),
    "linking wip off the 0.25 grid": ("wip", "linking"),
    "negative panel count": ("wip", "knitting"),
    "machine of the other department": ("interactions", "knitting"),
    "file name not following the contract": ("wip", "linking"),
    "schema_version 2": ("roster", "knitting"),
}


def spoil(label: str, p: Payload, name: str, others: Sequence[str]) -> tuple[str, bytes]:
    """Turn a valid observation into the bad file of kind `label`: its name and bytes."""
    rows = list(p.get("machines", {}).values())  # all manned; body panels, collars last
    stamp = name[-20:-5]  # YYYYMMDDTHHMMSS
    if label == "truncated JSON":
        return name, dump(p)[: len(dump(p)) // 2]
    if label == "empty file":
        return name, b""
    if label == "not UTF-8":
        p["notes"] = "line chief on café break"
        return name, json.dumps(p, indent=2, ensure_ascii=False).encode("cp1252")
    if label == "JSON array instead of object":
        return name, dump([p])
    if label == "file name not following the contract":
        name = f"{p['task']}_{p['department']}_{p['observer']}_{stamp[:8]}.json"
    elif label == "unknown task":
        p["task"] = "lunch"
        name = "lunch" + name[name.index("_"):]
    elif label == "missing required key":
        del p["status"]
    elif label == "number as string":
        rows[0]["back"] = str(rows[0]["back"])
    elif label == "enum out of range":
        p["status"] = "done"
    elif label == "timestamp without offset":
        p["started_at"] = p["started_at"][:19]
    elif label == "ended_at before started_at":
        p["ended_at"] = (datetime.fromisoformat(p["started_at"]) - timedelta(minutes=7)).isoformat()
    elif label == "name and payload disagree":
        p["team"] = others[0]
    elif label == "observation_id not a UUID":
        p["observation_id"] = f"{p['observer']}-{stamp}"
    elif label == "unmanned machine with a worker_id":
        rows[0]["mc_status"] = "unmanned"
    elif label == "collar component with body panel counts":
        rows[-1].update(back=3, front=2, sleeve=4)
    elif label == "linking wip off the 0.25 grid":
        rows[0]["wip"] = 3.3
    elif label == "negative panel count":
        rows[0]["back"] = -4
    elif label == "machine of the other department":
        p["interactions"].append({"with": "LI3", "length_s": 40, "initiator": "supervisor",
                                  "topic": "yarn"})
    elif label == "schema_version 2":
        p["schema_version"] = 2
    return name, dump(p)


def dump(value: object) -> bytes:
    """JSON as the tablet writes it (also used by `rmg_lake.sample.simulate` for valid files)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"

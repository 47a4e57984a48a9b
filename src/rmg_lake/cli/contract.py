"""Both ends of the contract: its JSON Schema for other clients, and the pilot's files in."""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rmg_lake._internal.files import write_atomic
from rmg_lake.cli.shell import LISTED, LakeOption, about, app, lake_from, lake_path, out, track
from rmg_lake.config import load_config
from rmg_lake.errors import LakeError, boundary


class Department(StrEnum):
    knitting = "knitting"
    linking = "linking"


@app.command()
def schema(
    to: Annotated[Path | None, typer.Option(
        "--out", help="Folder for one TASK.v1.schema.json per task (default: all of them as "
                      "one JSON object on standard output).")] = None,
) -> None:
    """The file contract as JSON Schema, generated from the models the lake validates with."""
    import orjson

    from rmg_lake.contract.schema import contract_schemas, file_name, schema_bytes

    schemas = contract_schemas()
    if to is None:
        sys.stdout.buffer.write(orjson.dumps(schemas, option=orjson.OPT_INDENT_2) + b"\n")
        return
    for task, document in schemas.items():
        path = to.expanduser() / file_name(task)
        with boundary(file=path, doing="write the schema"):
            write_atomic(path, schema_bytes(document), sync=False)
    out.print(f"Wrote {', '.join(map(file_name, schemas))} to {to}.")


@app.command("import-legacy")
def import_legacy(
    path: Annotated[Path, typer.Argument(help="A file of the 2014 pilot app, or a folder.")],
    factory: Annotated[str, typer.Option(help="Factory code of the files, e.g. f01.")],
    observer: Annotated[str, typer.Option(help="Observer code, e.g. obs01.")],
    team: Annotated[str, typer.Option(
        help="The team the app's rounds are of, e.g. treatment (the pilot's same_floor and "
             "different are same-floor and other-floor).")],
    department: Annotated[Department | None, typer.Option(
        help="Only this department's files (those that do not say, read as of it); "
             "default: every file, of the department its name or machines say.")] = None,
    instead_of: Annotated[str | None, typer.Option(
        "--instead-of", metavar="BATCHES",
        help="Earlier imports of the same folder this one replaces (e.g. 1,2,3: made with "
             "the wrong --team): they are rolled back, and what they kept is read "
             "again.")] = None,
    lake: LakeOption = None,
) -> None:
    """Take the pilot app's files into the lake: each file kept as it is (photos too),
    each round it holds as an observation of the contract (what cannot be mapped is
    quarantined with the reason)."""
    from rmg_lake.cli.everyday import print_ingest
    from rmg_lake.pilot_import import import_pilot
    from rmg_lake.sources.legacy import PilotFiles
    from rmg_lake.sources.pilot import Study

    team = {"same_floor": "same-floor", "different": "other-floor"}.get(team, team)
    for option, value in (("--factory", factory), ("--observer", observer), ("--team", team)):
        if not re.fullmatch(r"[a-z0-9-]+", value):
            raise LakeError("must be lower-case letters, digits and '-'", field=option,
                            hint="as the contract writes codes: f01, obs01, treatment")
    replaced = _batches(instead_of)
    config = load_config()
    root = lake_path(lake, config)
    files = PilotFiles(path, Study(factory, observer, team,
                                   department.value if department else None))
    the_lake = lake_from(root, create=True)
    own = about(config, the_lake.root)
    print_ingest(import_pilot(the_lake, files, instead_of=replaced, track=track,
                              settings=own.settings if own else None), the_lake)
    if files.left_out:
        out.print(f"  Left out, of another department than {department}: "
                  f"{', '.join(files.left_out[:LISTED])}"
                  + (f" and {len(files.left_out) - LISTED} more" if len(files.left_out)
                     > LISTED else "")
                  + f" (import them with --department {_other(department)})", highlight=False)


def _batches(text: str | None) -> list[int]:
    """`1,2,3` → [1, 2, 3], or a one-line error."""
    if text is None:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise LakeError("batch numbers separated by commas, such as 1,2,3",
                        field="--instead-of") from None


def _other(department: Department | None) -> str:
    return "linking" if department is Department.knitting else "knitting"

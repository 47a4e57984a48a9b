"""Both ends of the contract: its JSON Schema for other clients."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rmg_lake.cli.shell import app, out
from rmg_lake.errors import LakeError
from rmg_lake.files import write_atomic


@app.command()
def schema(
    to: Annotated[Path | None, typer.Option(
        "--out", help="Folder for one TASK.schema.json per task (default: all of them as "
                      "one JSON object on standard output).")] = None,
) -> None:
    """The file contract as JSON Schema, generated from the models the lake validates with."""
    import orjson

    from rmg_lake.contract.schema import contract_schemas, schema_bytes

    schemas = contract_schemas()
    if to is None:
        sys.stdout.buffer.write(orjson.dumps(schemas, option=orjson.OPT_INDENT_2) + b"\n")
        return
    for task, document in schemas.items():
        path = to.expanduser() / f"{task}.schema.json"
        try:
            write_atomic(path, schema_bytes(document), sync=False)
        except OSError as err:
            raise LakeError(f"cannot write the schema ({err.strerror})", file=str(path)) \
                from None
    out.print(f"Wrote {', '.join(f'{task}.schema.json' for task in schemas)} to {to}.")

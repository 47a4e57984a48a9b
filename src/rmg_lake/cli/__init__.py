"""`rmg-lake`: a thin shell over the library: parse, call, render, map errors to exit codes."""
# ruff: noqa: I001  (the commands are listed in `--help` in the order they are imported)

from rmg_lake.cli import (  # noqa: F401
    everyday, watching, history, corrections, backups, sharing, contract,
)
from rmg_lake.cli.shell import app, main

__all__ = ["app", "main"]

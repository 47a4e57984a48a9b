"""What every command shares: the app, its consoles, options, progress bars and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from rmg_lake.config import Config, load_config
from rmg_lake.errors import LakeError
from rmg_lake.lake import Lake, open_lake
from rmg_lake.store.locking import Holder

__all__ = [
    "LISTED", "Format", "LakeOption", "about", "app", "day_option", "err", "lake_from",
    "lake_path", "main",
    "out", "plural", "track",
]

LISTED = 10  # files listed in a summary before "… and N more"

T = TypeVar("T")
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="An append-only lake for the RMG field study's observation files.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

LakeOption = Annotated[Path | None, typer.Option(
    "--lake", help="Lake folder (default: `lake` from rmg-lake.toml, else ./lake).")]


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def track(items: Iterable[T], total: int, what: str, *,
           size: Callable[[T], int] | None = None, total_size: int = 0) -> Iterator[T]:
    """A progress bar on a terminal (files, and bytes when `size` is given); nothing in a
    pipe, where the command's own summary is the record."""
    if not err.is_terminal:
        yield from items
        return
    columns: list[str | ProgressColumn] = [
        TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.fields[done]:,}/{task.fields[files]:,} files")]
    if size is not None:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total_size if size else total, done=0, files=total)
        for done, item in enumerate(items, 1):
            yield item
            bar.update(task, advance=size(item) if size else 1, done=done)


def day_option(text: str | None, option: str) -> date | None:
    """The day an option gives as YYYY-MM-DD (None if not given)."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise LakeError(f"{text!r} is not a date", field=option,
                        hint="write it as YYYY-MM-DD") from None


def lake_path(lake: Path | None, config: Config | None) -> Path:
    """The lake `--lake` names, else the one rmg-lake.toml names, else ./lake."""
    return (lake or (config.lake if config else Path("lake"))).expanduser().resolve()


def about(config: Config | None, root: Path) -> Config | None:
    """rmg-lake.toml, if it is about the lake at `root`: its study settings, backup and
    reports folders are for its own lake, not for one `--lake` names."""
    return config if config is not None and config.lake.resolve() == root.resolve() else None


def lake_from(lake: Path | None, *, create: bool = False) -> Lake:
    """Open that lake; rmg-lake.toml is read only when `--lake` is not given."""
    the_lake = open_lake(lake_path(lake, None if lake else load_config()), create=create)
    def waiting(holder: Holder | None) -> None:
        whom = f" ({holder})" if holder else ""
        err.print(f"Another rmg-lake run is writing this lake{whom}; waiting for it to "
                  f"finish (up to {the_lake.lock.wait:.0f} s)…", highlight=False)

    def stale(holder: Holder) -> None:
        err.print(f"The last run on this lake ({holder}) stopped before it finished; "
                  "carrying on from its last commit.", highlight=False)

    the_lake.lock.on_wait, the_lake.lock.on_stale = waiting, stale
    return the_lake


def plural(count: int, word: str) -> str:
    """`1 batch`, `2 batches`, `3 log entries`."""
    if count == 1:
        return f"1 {word}"
    many = word[:-1] + "ies" if word.endswith("y") else word + ("es" if word.endswith("h")
                                                                  else "s")
    return f"{count:,} {many}"


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 1.

    (Typer already turns Ctrl-C into exit 130 and a closed pipe, as in `| head`, into a
    quiet exit.)
    """
    try:
        app()
    except LakeError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        sys.exit(1)

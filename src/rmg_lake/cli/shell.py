"""What every command shares: the app, its consoles, options, progress bars and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, NamedTuple, TypeVar

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
from typer.core import TyperGroup

from rmg_lake._internal.files import check_platform
from rmg_lake.config import Config, load_config
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.errors import LakeError, converted
from rmg_lake.lake import Lake, open_lake
from rmg_lake.sources import Source, open_source
from rmg_lake.store.locking import Holder

__all__ = [
    "LISTED", "Commands", "LakeOption", "about", "app", "day_option", "err", "lake_from",
    "lake_path", "main",
    "out", "plural", "track",
]

LISTED = 10  # files listed in a summary before "… and N more"

T = TypeVar("T")


class Commands(TyperGroup):
    """`--help`'s list of commands, each with its whole first sentence, wrapped to the
    terminal (click would cut it short with "...")."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, command.get_short_help_str(limit=1_000))
                for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# Plain help (no rich panels): texts wrap to the terminal (up to 120 columns: longer lines
# read badly), and flags show no type
app = typer.Typer(cls=Commands, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"max_content_width": 120})
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def warn(text: str) -> None:
    """`warning: …` on stderr: something went wrong, and the command went on."""
    err.print(Text.assemble(("warning: ", "bold yellow"), text), highlight=False)


LakeOption = Annotated[Path | None, typer.Option(
    "--lake", help="Lake folder (default: `lake` from rmg-lake.toml, else ./lake).")]


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


TodayOption = Annotated[str | None, typer.Option(
    "--today", help="Take this day, YYYY-MM-DD, as today (factory time): what the command "
                    "would have shown that day (default: today).")]


def now_option(today: str | None) -> datetime:
    """Now, factory time; on the day `--today` names, if given (at this time of day)."""
    now = datetime.now(FACTORY_TZ)
    day = day_option(today, "--today")
    return now if day is None else datetime.combine(day, now.timetz())


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


class Sourced(NamedTuple):
    config: Config | None  # rmg-lake.toml, if there is one
    source: str  # as given, else as rmg-lake.toml names it
    root: Path  # the lake's folder (`lake_path`)
    files: Source  # the source, opened


def sourced(source: str | None, lake: Path | None) -> Sourced:
    """What `ingest` and `watch` read from: the source `--source` names, else the one
    rmg-lake.toml names, opened before the lake (a wrong source makes none)."""
    config = load_config()
    source = source or (config.source if config else None)
    if source is None:
        raise LakeError("no source given", hint="pass --source DIR or set `source` "
                        "in rmg-lake.toml")
    root = lake_path(lake, config)
    return Sourced(config, source, root, open_source(source, exclude=[root]))


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


class _Run:
    debug = False  # --debug: an unexpected error shows its traceback


def _version(asked: bool) -> None:
    if asked:
        out.print(f"rmg-lake {metadata.version('rmg-lake')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print rmg-lake's version and exit.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show the whole traceback of an unexpected error.")] = False,
) -> None:
    """An append-only lake for the RMG field study's observation files."""
    _Run.debug = debug


def main() -> None:
    """Entry point: every error becomes one line on stderr and exit code 1: the library's
    as they are, the system's as the error boundary words them (`rmg_lake.errors`), and
    any other (a bug) as what it is and a pointer to --debug. A system rmg-lake does not
    run on (native Windows) is refused first, whatever the command.

    (Typer already turns Ctrl-C into exit 130 and a closed pipe, as in `| head`, into a
    quiet exit.)
    """
    try:
        check_platform()
        app(prog_name="rmg-lake")  # (also when run as `python -m rmg_lake`)
    except Exception as exc:
        if _Run.debug:
            raise
        mine = converted(exc)
        text = str(mine) if mine is not None else (
            f"an unexpected {type(exc).__name__} (a fault of rmg-lake's) — run the same "
            "command again with `rmg-lake --debug …` to see where, and report it")
        err.print(Text.assemble(("error: ", "bold red"), text), highlight=False)
        sys.exit(1)

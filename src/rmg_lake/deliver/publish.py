"""The daily report, delivered: the HTML page and the day's flags as CSV, under dated names,
in the lake's `reports/` folder and in any other targets (the study's Dropbox folder).

    reports/2026-11-30-report.html   the page (`rmg-lake report --format html`)
    reports/2026-11-30-flags.csv     the flags `rmg-lake check` shows that day
    reports/2026-11-30-checks.xlsx   the same as the checks workbook (`check --format xlsx`)

The date is the factory's; a second report on the same day replaces the first. Each
place keeps the reports of its last `KEEP` days and deletes older ones, never a file of
another name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rmg_lake.deliver.flags import flags_csv
from rmg_lake.deliver.html import render_html, report_data
from rmg_lake.deliver.targets import FolderTarget, Target, open_target
from rmg_lake.deliver.workbook import checked_days, checks_workbook
from rmg_lake.errors import LakeError, boundary, guarded
from rmg_lake.lake import Lake
from rmg_lake.sources import Source

__all__ = ["FOLDER", "KEEP", "Published", "places", "prune_reports", "publish"]

FOLDER = "reports"
KEEP = 30  # days of reports kept in each place
_NAME = re.compile(rf"{FOLDER}/(\d{{4}}-\d{{2}}-\d{{2}})-(report\.html|flags\.csv|checks\.xlsx)")


@dataclass(frozen=True, slots=True)
class Published:
    page: str  # its key in each place, e.g. reports/2026-11-30-report.html
    flags: str
    checks: str  # the checks workbook's key
    flag_count: int
    places: list[str]  # where they were delivered: the lake's folder, then other targets
    deleted: int  # older reports deleted, in all places together
    failed: list[str]  # targets that could not be reached, each with the reason


@guarded
def publish(lake: Lake, *, targets: Sequence[Target] = (), keep: int = KEEP,
            now: datetime | None = None) -> Published:
    """Write today's report, flags and checks workbook into the lake's `reports/` and each
    of `targets`, then delete reports older than the last `keep` days in each. A target
    that cannot be reached is listed in `failed`; the others are written all the same."""
    report = report_data(lake, now=now)
    day = report.made.date().isoformat()
    flags = report.days_flags
    first, last = checked_days(flags, report.check_day or report.end)
    files = {f"{FOLDER}/{day}-report.html": render_html(lake, report).encode(),
             f"{FOLDER}/{day}-flags.csv": flags_csv(flags).encode(),
             f"{FOLDER}/{day}-checks.xlsx": checks_workbook(lake, report.checked, first,
                                                            last)}
    places, failed, deleted = [], [], 0
    for number, place in enumerate([FolderTarget(lake.root), *targets]):
        try:
            with boundary(file=place.name):
                for key, data in files.items():
                    place.put(key, data)
                deleted += len(prune_reports(place, keep))
        except LakeError as err:
            if number == 0:  # the lake's own folder
                raise
            failed.append(str(err) if err.file else f"{place.name}: {err}")
            continue
        places.append(place.name)
    page, flags_file, workbook = files
    return Published(page, flags_file, workbook, flags.height, places, deleted, failed)


def places(source: Source, reports_to: str | None) -> tuple[list[Target], list[str]]:
    """Where `ingest --report` delivers besides the lake: `reports_to` (of rmg-lake.toml),
    else a Dropbox source's folder; and those that cannot be opened, each with why."""
    from rmg_lake.deliver.dropbox_target import DropboxTarget
    from rmg_lake.sources.dropbox import DropboxFolder

    if reports_to is not None:
        try:
            return [open_target(reports_to)], []
        except LakeError as error:
            return [], [str(error)]
    if isinstance(source, DropboxFolder):
        return [DropboxTarget(source.name, source.client)], []
    return [], []


def prune_reports(target: Target, keep: int = KEEP) -> list[str]:
    """Delete the reports of all but the last `keep` days in `target`; what was deleted."""
    days: dict[str, list[str]] = {}
    for key in target.keys(FOLDER):
        if named := _NAME.fullmatch(key):
            days.setdefault(named[1], []).append(key)
    old = [key for day in sorted(days)[:max(len(days) - keep, 0)] for key in days[day]]
    for key in old:
        target.delete(key)
    return old

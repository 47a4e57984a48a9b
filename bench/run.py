"""`just bench`: rmg-lake against the plain pandas plan and the DuckDB floor, side by side.

    python bench/run.py [--scale small|large] [--runs 3] [--sizes 20000,100000]
                        [--shape json|mixed] [--baselines-up-to 100000]
    python bench/run.py --docs

For each size, the simulator writes a sync folder (`json`: observation files only, 60
days of a study as large as it takes; `mixed`: half of them photos, two years at most);
then, `--runs` times each, in fresh folders: `rmg-lake --version` (the start-up), the
pandas plan, the DuckDB `read_json` floor, `rmg-lake ingest` from empty, 1,000 new files
into an empty lake and into the full one, `rmg-lake rebuild`, `rmg-lake report`, two
DuckDB queries on the views, and the morning: 2,000 new files, `check`, `report --format
html` and `backup` to a folder (backed up the day before). Each is timed as a whole
process, from its start to its end (the baselines too), but the two queries (in this
process, on a connection already open). Each figure is the median; peak memory is the
largest resident set of the process. A table goes to bench/results/ (Markdown and JSON),
and the figures the docs quote are written again from bench/results (bench/docs.py);
`--docs` does only that. (In the JSON, seconds of -1 mean a baseline was not run at that
size, NaN that it did not finish.)
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import docs

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
SCALES = {"small": [20_000, 100_000], "large": [20_000, 100_000, 1_000_000]}
SHAPES = ("json", "mixed")
JSON_DAYS = 60  # the json shape: two months of as many teams as the size takes
MORNING = ("morning: 2,000 new files", "morning: check", "morning: report --format html",
           "morning: backup to a folder")
START = date(2026, 11, 1)
STARTUP = "start-up: rmg-lake --version"
QUERIES = {
    "completion, one month": "select * from completion where day between "
                             "date '2026-11-01' and date '2026-11-30'",
    "wip per machine per day": "select day, factory, department, team, machine, "
                               "sum(coalesce(back, 0) + coalesce(front, 0)) as panels, "
                               "avg(wip) as wip from wip group by all",
}


class Failed(Exception):
    """A measured process that did not finish (a baseline out of memory, say)."""


def timed(command: list[str], **kwargs: object) -> tuple[float, float, str]:
    """(seconds, peak resident MB, stdout) of one process, start to end."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()  # (files, not pipes: a full pipe would stall it)
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True,
                                   **kwargs)  # type: ignore[call-overload]
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise Failed(f"{' '.join(command)} failed ({process.returncode}):\n"
                         f"{err.read()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read()


def rmg_lake(*args: str) -> tuple[float, float, str]:
    return timed([sys.executable, "-m", "rmg_lake", *args])


def study(files: int, shape: str) -> tuple[int, int]:
    """(factories, observers) of a study that makes about `files` files in two years or
    less (the rollout is about 25 factories, several observers each, for two years), or,
    of the json shape, in JSON_DAYS days."""
    per_factory = 30_000 if shape == "mixed" else 1_300  # files of one factory's teams
    factories = max(2, round(files / per_factory))
    return factories, 2 * factories


def apart(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a fresh interpreter, so that this one stays small: the peak
    memory `wait4` reports for a process counts the memory of the one it was forked from."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


def simulate(folder: Path, files: int, start: date, factories: int, observers: int,
             shape: str, *, exactly: bool = False) -> None:
    """About `files` files of the simulated study from `start` (kept between runs); with
    `exactly`, the `files` saved first of a few days more (a sync folder as it stood once
    that many had arrived)."""
    if not folder.exists():
        apart(_simulate, folder, files, start, factories, observers, shape, exactly)


def _count(folder: Path) -> tuple[int, float]:
    """How many files `folder` holds, and the newest one's modification time (listing a
    folder of a million files holds them all in memory: done apart, too)."""
    times = [p.stat().st_mtime for p in folder.rglob("*") if p.is_file()]
    return len(times), max(times)


def _simulate(folder: Path, files: int, start: date, factories: int, observers: int,
              shape: str, exactly: bool) -> None:
    from rmg_lake.sample.simulate import simulate as make

    photos = shape == "mixed"
    with tempfile.TemporaryDirectory() as sample:  # a week, to learn the rate
        make(Path(sample) / "week", days=7, seed=files, start=start, factories=factories,
             observers=observers, photos=photos)
        per_day = _count(Path(sample))[0] / 7
    # (Fridays are off: at 77 factories a day of 1,800 files may be one, holding a few)
    days = math.ceil(files / per_day) + 1 if exactly else max(1, round(files / per_day))
    make(folder, days=days, seed=files, start=start, factories=factories,
         observers=observers, photos=photos)
    if exactly:
        saved = sorted((p for p in folder.rglob("*") if p.is_file()),
                       key=lambda p: (p.stat().st_mtime, p))
        for path in saved[files:]:
            path.unlink()


def _working(day: date) -> date:
    """`day`, or the day after if it is a Friday (the study's day off)."""
    return day + timedelta(days=day.weekday() == 4)


def queries(lake: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(lake / "lake.duckdb"), read_only=True)
    try:
        out = {}
        for name, sql in QUERIES.items():
            started = time.perf_counter()
            con.execute(sql).fetchall()
            out[name] = time.perf_counter() - started
        return out
    finally:
        con.close()


NOT_RUN = (-1.0, 0.0)  # (seconds, peak MB) of a baseline left out at this size
DID_NOT_FINISH = (math.nan, math.nan)


def baselines(work: Path, inbox: Path) -> dict[str, tuple[float, float]]:
    """The pandas plan and the DuckDB floor, once each: name → (seconds, peak MB)."""
    got = {}
    try:  # both hold everything in memory: a large folder may be more than the machine has
        got["pandas plan"] = timed([sys.executable, str(HERE / "baselines" / "pandas_plan.py"),
                                    str(inbox), str(work / "pandas")])[:2]
    except Failed as failed:
        print(failed, file=sys.stderr)
        got["pandas plan"] = DID_NOT_FINISH
    try:  # the whole process, as the plan's: start-up and its pass over the bad files too
        got["DuckDB read_json floor"] = timed([
            sys.executable, str(HERE / "baselines" / "duckdb_floor.py"), str(inbox),
            str(work / "floor")])[:2]
    except Failed as failed:
        print(failed, file=sys.stderr)
        got["DuckDB read_json floor"] = DID_NOT_FINISH
    return got


def one_run(work: Path, inbox: Path, new: Path, morning: Path, day: date, *,
            with_baselines: bool) -> dict[str, tuple[float, float]]:
    """Every measurement once, in fresh folders: name → (seconds, peak MB)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    got = {STARTUP: rmg_lake("--version")[:2]}  # what every rmg-lake figure below includes
    got |= baselines(work, inbox) if with_baselines else {
        "pandas plan": NOT_RUN, "DuckDB read_json floor": NOT_RUN}
    lake = work / "lake"
    got["rmg-lake ingest, from empty"] = rmg_lake("ingest", "--source", str(inbox), "--lake",
                                                  str(lake))[:2]
    got["1,000 new files, empty lake"] = rmg_lake(
        "ingest", "--source", str(new), "--lake", str(work / "small"))[:2]
    got["1,000 new files, full lake"] = rmg_lake("ingest", "--source", str(new), "--lake",
                                                 str(lake))[:2]
    got["rmg-lake rebuild"] = rmg_lake("rebuild", "--lake", str(lake))[:2]
    got["rmg-lake report"] = rmg_lake("report", "--lake", str(lake), "--format", "csv")[:2]
    for name, seconds in apart(queries, lake).items():
        got[f"DuckDB view query: {name}"] = (seconds, 0.0)
    backups = work / "backups"
    rmg_lake("backup", "--lake", str(lake), "--to", str(backups))  # the day before
    for name, args in zip(MORNING, (
            ["ingest", "--source", str(morning)], ["check", "--day", day.isoformat()],
            ["report", "--format", "html", "--out", str(work / "report.html")],
            ["backup", "--to", str(backups)]), strict=True):
        got[name] = rmg_lake(*args, "--lake", str(lake))[:2]
    got["the morning, in all"] = (sum(got[name][0] for name in MORNING),
                                  max(got[name][1] for name in MORNING))
    return got


def measure(size: int, runs: int, work: Path, shape: str, *,
            with_baselines: bool) -> dict[str, object]:
    inbox, new = work / f"inbox-{shape}-{size}", work / f"new-{shape}-{size}"
    morning = work / f"morning-{shape}-{size}"
    factories, observers = study(size, shape)
    simulate(inbox, size, START, factories, observers, shape)
    files, last = apart(_count, inbox)
    later = _working(datetime.fromtimestamp(last, UTC).date() + timedelta(days=7))
    simulate(new, 1_000, later, factories, observers, shape, exactly=True)
    day = _working(later + timedelta(days=7))  # the morning's first: the one `check` looks at
    simulate(morning, 2_000, day, factories, observers, shape, exactly=True)
    results = [one_run(work / f"run-{size}", inbox, new, morning, day,
                       with_baselines=with_baselines) for _ in range(runs)]
    shutil.rmtree(work / f"run-{size}", ignore_errors=True)
    figures = {name: {"seconds": _median([r[name][0] for r in results]),
                      "peak_mb": _median([r[name][1] for r in results], max)}
               for name in results[0]}
    for name in ("pandas plan", "DuckDB read_json floor", "rmg-lake ingest, from empty"):
        if _ran(figures[name]["seconds"]):
            figures[name]["files_per_s"] = files / figures[name]["seconds"]
    return {"files": files, "factories": factories, "shape": shape, "runs": runs,
            "new_files": apart(_count, new)[0], "morning_files": apart(_count, morning)[0],
            "figures": figures}


def _median(values: list[float], of: Callable[[list[float]], float] = statistics.median,
            ) -> float:
    """The median (or `of`) of `values`; not a number if a run did not finish."""
    return math.nan if any(math.isnan(v) for v in values) else of(values)


def _ran(seconds: float) -> bool:
    return seconds > 0 and not math.isnan(seconds)


def table(sizes: dict[int, dict[str, object]]) -> str:
    lines = ["| measurement | " + " | ".join(
        f"{s['files']:,} files, {s['factories']} factories"
        for s in sizes.values()) + " |",
             "|---|" + "---:|" * len(sizes)]
    names = list(next(iter(sizes.values()))["figures"])  # type: ignore[call-overload]
    for name in names:
        cells = []
        for s in sizes.values():
            f = s["figures"][name]  # type: ignore[index]
            if not _ran(f["seconds"]):
                cells.append("did not finish" if math.isnan(f["seconds"]) else "not run")
                continue
            cell = f"{f['seconds']:.2f} s"
            if "files_per_s" in f:
                cell += f" ({f['files_per_s']:,.0f} files/s)"
            if f["peak_mb"]:
                cell += f", {f['peak_mb']:,.0f} MB"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for label, other in (("rmg-lake / pandas plan (speed)", "pandas plan"),
                         ("rmg-lake / DuckDB floor (speed)", "DuckDB read_json floor")):
        ratios = [s["figures"][other]["seconds"]  # type: ignore[index]
                  / s["figures"]["rmg-lake ingest, from empty"]["seconds"]  # type: ignore[index]
                  for s in sizes.values()]
        lines.append(f"| {label} | " + " | ".join(
            f"{r:.2f}×" if _ran(r) else "—" for r in ratios) + " |")
    inc = [s["figures"]["1,000 new files, full lake"]["seconds"]  # type: ignore[index]
           / s["figures"]["1,000 new files, empty lake"]["seconds"]  # type: ignore[index]
           for s in sizes.values()]
    lines.append("| 1,000 files: full lake / empty lake (time) | "
                 + " | ".join(f"{r:.2f}×" for r in inc) + " |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {memory:.0f} GB of memory, {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="small")
    parser.add_argument("--sizes", help="comma-separated file counts (instead of --scale)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shape", choices=SHAPES, default="json",
                        help="json: observation files only (60 days); mixed: half photos")
    parser.add_argument("--work", type=Path, default=HERE / ".work")
    parser.add_argument(
        "--baselines-up-to", type=int, default=100_000, metavar="FILES",
        help="run the pandas plan and the DuckDB floor only up to this size (they hold "
             "everything in memory: at 1M files about 27 and 45 GB)")
    parser.add_argument(
        "--docs", action="store_true",
        help="run nothing: write the figures the docs quote again from bench/results")
    args = parser.parse_args()
    if args.docs:
        for path in docs.write():
            print(f"wrote {path.relative_to(HERE.parent)}")
        return
    load = os.getloadavg()[0]
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else SCALES[args.scale]
    measured = {size: measure(size, args.runs, args.work, args.shape,
                              with_baselines=size <= args.baselines_up_to)
                for size in sizes}
    stamp = datetime.now(UTC)
    name = f"{stamp:%Y-%m-%d-%H%M}-{args.shape}-{'-'.join(str(s) for s in sizes)}"  # (unique)
    loads = (load, os.getloadavg()[0])  # the machine's other work, if any, on one minute
    markdown = (f"# rmg-lake benchmark, {stamp:%Y-%m-%d %H:%M} UTC\n\n{machine()}; load "
                f"average {loads[0]:.1f} at the start, {loads[1]:.1f} at the end; {args.shape} "
                f"files; median of {args.runs} runs; wall time of each process from its start "
                "to its end (the view queries: in-process).\n\n" + table(measured))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.md").write_text(markdown)
    (results / f"{name}.json").write_text(json.dumps(
        {"when": stamp.isoformat(), "machine": machine(), "floor_timing": "process",
         "load_average": loads, "sizes": measured}, indent=2))
    print(markdown)
    for path in docs.write():
        print(f"wrote {path.relative_to(HERE.parent)} (its figures from bench/results)")


if __name__ == "__main__":
    main()

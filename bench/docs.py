"""The benchmark's figures in README.md and bench/README.md, made from bench/results/*.json.

Every figure the docs quote from a run stands between two markers that say what goes there:

    <!-- bench:begin performance -->
    …
    <!-- bench:end -->

`python3 bench/run.py --docs` writes each block again from the results (a benchmark run
does it too, once its results are written), and `tests/test_bench_docs.py` fails when a
block differs from what the results say: a figure edited by hand, or results not put in
the docs. A block is one of BLOCKS by name, or one figure inline, `figure FILE SIZE
MEASUREMENT`: FILE a results file's name without `.json` (or `newest`, the newest with
that size), SIZE a size of it as run.py was asked for it, MEASUREMENT a row of its table.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = (HERE.parent / "README.md", HERE / "README.md")
BLOCK = re.compile(r"<!-- bench:begin (?P<name>[^>]+?) -->(?P<body>.*?)<!-- bench:end -->",
                   re.DOTALL)
SIZES = (20_000, 100_000)  # what `just bench` runs (the json shape)
LARGE = 1_000_000  # `just bench --scale large` adds it
LAYOUT_2 = date(2026, 12, 6)  # the log's file records became columns (bench/README, lever 6)
INGEST, FULL, EMPTY = ("rmg-lake ingest, from empty", "1,000 new files, full lake",
                       "1,000 new files, empty lake")
FLOOR, PANDAS, STARTUP = ("DuckDB read_json floor", "pandas plan",
                          "start-up: rmg-lake --version")
MORNING = ("morning: 2,000 new files", "morning: check", "morning: report --format html",
           "morning: backup to a folder")
ALL_MORNING = "the morning, in all"
COMMANDS = (INGEST, FULL, EMPTY, "rmg-lake rebuild", "rmg-lake report", *MORNING)
SAID = {INGEST: "`ingest` from empty", EMPTY: "1,000 new files into an empty lake",
        FULL: "1,000 new files into the full lake", "rmg-lake rebuild": "`rebuild`",
        "rmg-lake report": "`report`", MORNING[0]: "the morning's 2,000 new files",
        MORNING[1]: "`check`", MORNING[2]: "`report --format html`", MORNING[3]: "`backup`"}
WIDTH = 90  # the docs' prose is wrapped at about this
GB = 1024  # MB: peak memory is the largest resident set, in units of 1,024 KB


@dataclass(frozen=True)
class Run:
    """One size of one results file: the median of its runs of each measurement."""

    name: str  # the results file, without `.json`
    size: int  # the size run.py was asked for (the file counts what the simulator wrote)
    when: datetime
    machine: str
    shape: str  # json or mixed (the files of 2026-11-25 name none: they are mixed)
    runs: int
    files: int
    factories: int
    figures: dict[str, dict[str, float]]
    floor_in_process: bool  # the DuckDB floor timed inside its process (as run.py once did)

    def seconds(self, measurement: str) -> float | None:
        """The median seconds, or None if this run has no such figure."""
        figure = self.figures.get(measurement)
        return None if figure is None or not _ran(figure["seconds"]) else figure["seconds"]

    def peak(self, measurement: str) -> float:
        return self.figures[measurement]["peak_mb"]

    def cell(self, measurement: str, *, rate: bool = False, memory: bool = True) -> str:
        """`12.34 s (1,234 files/s), 456 MB` as run.py's tables have it, or why there is none."""
        figure = self.figures.get(measurement)
        if figure is None:
            return "not measured"
        if not _ran(figure["seconds"]):
            return "did not finish" if math.isnan(figure["seconds"]) else "not run"
        text = f"{figure['seconds']:.2f} s"
        if rate and "files_per_s" in figure:
            text += f" ({figure['files_per_s']:,.0f} files/s)"
        if memory and figure["peak_mb"]:
            text += f", {figure['peak_mb']:,.0f} MB"
        return text

    def ratio(self, numerator: str, denominator: str) -> float | None:
        top, bottom = self.seconds(numerator), self.seconds(denominator)
        return None if top is None or bottom is None else top / bottom

    @property
    def file(self) -> str:
        return f"`bench/results/{self.name}.json`"

    @property
    def source(self) -> str:
        """Where a figure comes from: the file, when, the machine, how many runs."""
        runs = "one run" if self.runs == 1 else f"median of {self.runs} runs"
        return f"{self.file} ({self.when:%Y-%m-%d %H:%M} UTC; {self.machine}; {runs})"

    @property
    def short(self) -> str:
        """`20k`, `1M`."""
        return f"{self.size // 1_000_000}M" if self.size >= 1_000_000 else f"{self.size // 1000}k"

    @property
    def aside(self) -> str:
        """` (2026-11-25: mixed shape, before layout 2)` for a run unlike the others, or ``."""
        notes = [f"{self.shape} shape"] if self.shape != "json" else []
        if self.when.date() < LAYOUT_2:
            notes.append("before layout 2")
        return f" ({self.when:%Y-%m-%d}: {', '.join(notes)})" if notes else ""

    @property
    def label(self) -> str:
        """`20k`, or `1M (2026-11-25: mixed shape, before layout 2)`."""
        return self.short + self.aside


def _ran(seconds: float) -> bool:
    return seconds > 0 and not math.isnan(seconds)


def load(folder: Path = RESULTS) -> list[Run]:
    """Every size of every results file, oldest first."""
    runs = []
    for path in sorted(folder.glob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text())
        for size, measured in data["sizes"].items():
            runs.append(Run(
                name=path.stem, size=int(size), when=datetime.fromisoformat(data["when"]),
                machine=data["machine"], shape=measured.get("shape", "mixed"),
                runs=measured["runs"], files=measured["files"],
                factories=measured["factories"], figures=measured["figures"],
                floor_in_process=data.get("floor_timing") != "process"))
    return sorted(runs, key=lambda run: (run.when, run.size))


def newest(runs: Iterable[Run], size: int, shape: str | None = "json") -> Run | None:
    """The newest run of `size` (of `shape`, unless None), if any."""
    found = [r for r in runs if r.size == size and shape in (None, r.shape)]
    return found[-1] if found else None


def _prose(text: str) -> str:
    return "\n\n" + textwrap.fill(text, WIDTH, break_on_hyphens=False)


def _sources(items: Iterable[tuple[str, Run]]) -> str:
    return "\n\nFrom:\n\n" + "\n".join(
        textwrap.fill(f"- {what}: {run.source}", WIDTH, subsequent_indent="  ",
                      break_on_hyphens=False) for what, run in items)


def _floor_note(runs: Iterable[Run]) -> str:
    old = [r.file for r in runs if r.floor_in_process and r.seconds(FLOOR) is not None]
    if not old:
        return ""
    return _prose(f"In-process: {', '.join(dict.fromkeys(old))} timed the DuckDB floor inside "
                  "its process, as run.py did then: its SQL alone, without Python's "
                  "start-up, after an untimed pass that parsed every file to leave out "
                  "those DuckDB cannot skip. Later runs time its whole process, as the "
                  "others'.")


def performance(runs: list[Run]) -> str:
    """README's table: the newest json runs at the sizes `just bench` runs."""
    columns = [run for size in SIZES if (run := newest(runs, size))]

    def speed(baseline: str) -> Callable[[Run], str]:
        return lambda run: "—" if (r := run.ratio(baseline, INGEST)) is None else f"{r:.2f}×"

    def update(run: Run) -> str:
        ratio = run.ratio(FULL, EMPTY)
        return f"{run.cell(EMPTY)} / {run.cell(FULL)}" + (f" ({ratio:.2f}×)" if ratio else "")

    def morning(run: Run) -> str:
        seconds = [run.seconds(name) for name in MORNING]
        total = run.seconds(ALL_MORNING)
        if None in seconds or total is None:
            return "not measured"
        return (" + ".join(f"{s:.2f}" for s in seconds if s is not None) + f" s; in all "
                f"{total:.2f} s" + (" (the median of the runs' sums)" if run.runs > 1 else "")
                + f", at most {run.peak(ALL_MORNING):,.0f} MB")

    rows: list[tuple[str, Callable[[Run], str]]] = [
        ("pandas plan", lambda r: r.cell(PANDAS, rate=True)),
        ("DuckDB read_json floor", lambda r: r.cell(FLOOR, rate=True)),
        ("rmg-lake ingest, from empty", lambda r: r.cell(INGEST, rate=True)),
        ("rmg-lake / pandas plan (speed)", speed(PANDAS)),
        ("rmg-lake / DuckDB floor (speed)", speed(FLOOR)),
        ("1,000 new files, empty lake / full lake", update),
        ("rmg-lake rebuild", lambda r: r.cell("rmg-lake rebuild")),
        ("the morning: 2,000 new files, `check`, `report --format html`, `backup`", morning),
        ("start-up, in each rmg-lake figure: `rmg-lake --version`", lambda r: r.cell(STARTUP)),
    ]
    lines = ["| measurement | " + " | ".join(
                 f"{r.files:,} files, {r.factories} factories" for r in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(make(r) for r in columns) + " |" for name, make in rows]
    return ("\n".join(lines) + _sources((f"{r.files:,} files", r) for r in columns)
            + _floor_note(columns))


def goals(runs: list[Run]) -> str:
    """README's table of the second round's goals, as the newest results stand."""
    small, medium, large = newest(runs, SIZES[0]), newest(runs, SIZES[1]), newest(
        runs, LARGE, shape=None)
    rows = []

    def row(goal: str, run: Run | None, now: Callable[[Run], tuple[str, str]]) -> None:
        rows.append((goal, *(now(run) if run else ("not measured by `just bench`", "—"))))

    def fast(run: Run) -> tuple[str, str]:
        speed, peak = run.ratio(PANDAS, INGEST), run.peak(INGEST)
        speed_met = "—" if speed is None else "yes" if speed >= 10 else (
            "no: validation holds Python's lock, so one core validates")
        return ((f"{speed:.2f}× the pandas plan" if speed else "the pandas plan not run")
                + f"; ingest from empty at most {peak:,.0f} MB",
                f"memory {'yes' if peak < 500 else 'no'}; speed {speed_met}")

    row("20k json: ≥ 10× the pandas plan, peak < 500 MB", small, fast)
    updates = [(r, ratio) for r in (small, medium, large)
               if r and (ratio := r.ratio(FULL, EMPTY))]
    rows.append(("1,000 new files into a full lake ≤ 2× into an empty one",
                 "; ".join(f"{ratio:.2f}× at {r.label}" for r, ratio in updates),
                 "; ".join(f"{'yes' if ratio <= 2 else 'no'} at {r.short}"
                           for r, ratio in updates)))

    def morning(run: Run) -> tuple[str, str]:
        check, page = run.seconds(MORNING[1]), run.seconds(MORNING[2])
        if check is None or page is None:
            return "not measured", "—"
        startup = run.seconds(STARTUP)
        return (f"`check` of a day {check:.2f} s"
                + (f" (the start-up alone {startup:.2f} s)" if startup else "")
                + f"; the page {page:.2f} s ({run.factories} factories' charts and tables)",
                f"`check` {'yes' if check < 1 else 'no'}; the page " + ("yes" if page < 3 else
                "no: its charts and tables grow with the factories (bench/README.md, "
                "levers not pulled yet)"))

    row("100k json: `check` < 1 s, `report --format html` < 3 s", medium, morning)

    def memory(run: Run) -> tuple[str, str]:
        over = [(name, run.peak(name)) for name in COMMANDS
                if run.seconds(name) is not None and run.peak(name) > 2 * GB]
        most = max(run.peak(name) for name in COMMANDS if run.seconds(name) is not None)
        return (("; ".join(f"{SAID[name]} {mb:,.0f} MB" for name, mb in over) if over
                 else f"at most {most:,.0f} MB") + run.aside,
                "no" if over else "yes")

    row("1M: no command over 2 GB", large, memory)

    def rebuild(run: Run) -> tuple[str, str]:
        seconds, check = run.seconds("rmg-lake rebuild"), run.seconds(MORNING[1])
        return (f"`rebuild` {run.cell('rmg-lake rebuild', memory=False)}; `check` of a day "
                + (f"{check:.2f} s" if check else "not measured") + run.aside,
                f"`rebuild` {'yes' if seconds and seconds < 10 else 'no'}; `check` "
                + ("—" if check is None else "yes" if check < 1 else "no"))

    row("1M: `rebuild` < 10 s, `check` of a day < 1 s", large, rebuild)
    lines = ["| goal | `just bench` measured | met? |", "|---|---|---|"]
    lines += [f"| {goal} | {now} | {met} |" for goal, now, met in rows]
    note = ""
    if large and large.when.date() < LAYOUT_2:
        note = _prose("The 1M run is from before layout 2 and the levers after it (it takes "
                      "hours, and has not been run since); bench/README.md tells what levers "
                      "6–12 did at 81k and 964k files, measured by hand on 2026-12-06.")
    return ("\n".join(lines) + _sources((r.short, r) for r in (small, medium, large) if r)
            + note)


def history(runs: list[Run]) -> str:
    """bench/README's table of every run in bench/results, oldest first."""
    lines = ["| results file | shape | files | runs | ingest from empty | 1,000 new files: "
             "empty / full lake | rebuild | DuckDB floor | pandas plan |",
             "|---|---|---:|---:|---|---|---|---|---|"]
    for r in runs:
        floor = r.cell(FLOOR, memory=False) + (
            " (in-process)" if r.floor_in_process and r.seconds(FLOOR) else "")
        lines.append(
            f"| {r.file} | {r.shape} | {r.files:,} | {r.runs} | {r.cell(INGEST, rate=True)} | "
            f"{r.cell(EMPTY, memory=False)} / {r.cell(FULL, memory=False)} | "
            f"{r.cell('rmg-lake rebuild')} | {floor} | {r.cell(PANDAS, memory=False)} |")
    machines: dict[str, list[str]] = {}
    for r in runs:
        machines.setdefault(r.machine, []).append(r.name)
    where = "\n".join(textwrap.fill(f"- {machine}: {', '.join(dict.fromkeys(names))}", WIDTH,
                                     subsequent_indent="  ", break_on_hyphens=False)
                       for machine, names in machines.items())
    return "\n".join(lines) + f"\n\nThe machine of each:\n\n{where}" + _floor_note(runs)


def figure(runs: list[Run], name: str, size: str, *measurement: str) -> str:
    """One measurement inline: `6.48 s (98,269 files; bench/results/….json, 2 cores, …)`."""
    found = [r for r in runs if r.size == int(size) and name in ("newest", r.name)]
    if not found:
        raise ValueError(f"no results {name} of size {size}")
    run = found[-1]
    return (f"{run.cell(' '.join(measurement), memory=False)} ({run.files:,} files; "
            f"{run.file}, {run.machine})")


BLOCKS: dict[str, Callable[[list[Run]], str]] = {
    "performance": performance, "goals": goals, "history": history}


def render(name: str, runs: list[Run]) -> str:
    """What block `name` holds: a table between blank lines, or a figure inline."""
    words = name.split()
    if words[0] == "figure":
        return figure(runs, *words[1:])
    if name not in BLOCKS:
        raise ValueError(f"no block {name!r}: one of {', '.join(BLOCKS)}, or figure …")
    return f"\n\n{BLOCKS[name](runs)}\n\n"


def rewrite(text: str, runs: list[Run]) -> str:
    return BLOCK.sub(lambda m: f"<!-- bench:begin {m['name']} -->{render(m['name'], runs)}"
                               "<!-- bench:end -->", text)


def stale(text: str, runs: list[Run]) -> list[str]:
    """The blocks of `text` that differ from what the results say."""
    return [m["name"] for m in BLOCK.finditer(text) if m["body"] != render(m["name"], runs)]


def write(docs: Iterable[Path] = DOCS) -> list[Path]:
    """Write the blocks of `docs` again from bench/results; the docs that changed."""
    runs, changed = load(), []
    for path in docs:
        text = path.read_text()
        if (new := rewrite(text, runs)) != text:
            path.write_text(new)
            changed.append(path)
    return changed


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path}")

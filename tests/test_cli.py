"""`rmg-lake` as a researcher runs it: real subprocesses, real files, the real DuckDB CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import typer
from conftest import REPO, Ingested, run_cli, run_in
from typer.testing import CliRunner

import rmg_lake
from rmg_lake import simulate
from rmg_lake.cli import app

DUCKDB = shutil.which("duckdb")


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


def test_ingest_summarises_then_says_nothing_new(tmp_path: Path) -> None:
    m = simulate(tmp_path / "inbox", days=3, seed=3)
    first = run_cli("ingest", "--source", "inbox", "--lake", "lake", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"{m.files:,} files seen" in first.stdout
    assert f"{len(m.bad)} quarantined" in first.stdout
    assert f"{m.photos:,} attachments" in first.stdout
    second = run_cli("ingest", "--source", "inbox", "--lake", "lake", cwd=tmp_path)
    assert second.returncode == 0
    assert "Nothing new" in second.stdout
    assert sorted(p.name for p in (tmp_path / "lake" / "_log").iterdir()) == ["000001.json"]


def test_ingest_reads_rmg_lake_toml(tmp_path: Path) -> None:
    simulate(tmp_path / "field", days=2, seed=4, bad_files=False)
    (tmp_path / "rmg-lake.toml").write_text('source = "field"\nlake = "store"\n')
    result = run_cli("ingest", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "store" / "_log" / "000001.json").is_file()


def test_no_test_sees_the_users_sign_in_secret_or_home(private_home: Path) -> None:
    """The suite's environment is scrubbed (conftest): a researcher who ran `rmg-lake
    auth` and `secret init` can run it without any test reaching their Dropbox."""
    import pwd

    from rmg_lake.deliver.secret import secret_path
    from rmg_lake.sources.dropbox_client import credentials_path

    assert not [name for name in os.environ if name.startswith("DROPBOX_")]
    assert not [name for name in os.environ if name.startswith("RMG_LAKE_")
                and name != "RMG_LAKE_KILLS"]
    assert Path.home() == private_home != Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert credentials_path().is_relative_to(private_home)
    assert secret_path().is_relative_to(private_home)
    assert not any(private_home.iterdir())  # each test's own, empty


@pytest.mark.parametrize(("args", "message"), [
    (["ingest", "--source", "no-such-folder", "--lake", "lake"], "no-such-folder: no such folder"),
    (["ingest", "--source", ".", "--lake", "a-file"], "a-file: is a file"),
    (["ingest", "--source", ".", "--lake", "full"], "not empty and holds no lake"),
    (["report", "--lake", "nowhere"], "nowhere: no lake here"),
    (["rebuild", "--lake", "nowhere"], "nowhere: no lake here"),
    (["ingest"], "no source given"),
    (["ingest", "--source", "dropbox:/Apps/RMG", "--lake", "lake"], "no Dropbox credentials"),
    (["backup", "--lake", "lake"], "no backup folder given"),
])
def test_user_mistakes_give_one_line_and_exit_1(
    tmp_path: Path, args: list[str], message: str,
) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "thesis.docx").write_text("x")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    _no_traceback(result)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "rmg-lake.toml").write_text('lake = "lake"\n[protocol]\nwip = "four"\n')
    result = run_cli("report", cwd=tmp_path)
    assert result.returncode == 1
    _no_traceback(result)
    assert "rmg-lake.toml: protocol.wip" in result.stderr


def test_report_formats_are_the_completion_view(ingested: Ingested) -> None:
    lake = str(ingested.lake.root)
    view = [(str(d), f, t, dep, team, e, c, a, s) for d, f, t, dep, team, e, c, a, s in
            ingested.sql("select * from completion where day between '2026-11-03' and "
                         "'2026-11-05' order by all")]
    as_csv = run_cli("report", "--lake", lake, "--from", "2026-11-03", "--to", "2026-11-05",
                     "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert sorted(tuple(r.values()) for r in rows) == sorted(
        tuple(str(v) for v in row) for row in view)
    as_json = run_cli("report", "--lake", lake, "--from", "2026-11-03", "--to", "2026-11-05",
                      "--format", "json")
    assert sorted(tuple(r.values()) for r in json.loads(as_json.stdout)) == sorted(view)


def test_report_table_fits_80_columns_in_a_pipe(ingested: Ingested) -> None:
    result = run_cli("report", "--lake", str(ingested.lake.root))
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b[" not in result.stdout  # no colour codes when piped
    assert any(line.startswith("f01 - knitting") for line in lines)
    assert any(re.match(r"\| Fr 2026-11-06 \|\s+-", line) for line in lines)


def test_the_table_shows_the_last_14_days_observed_and_all_with_all(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    simulate(tmp_path / "inbox", days=25, observers=2, seed=12)  # 1 to 25 November
    lake = str(tmp_path / "lake")
    assert run_in(capsys, "ingest", "--source", str(tmp_path / "inbox"), "--lake",
                  lake).returncode == 0
    days = lambda text: sorted(set(re.findall(r"2026-11-\d\d", text)))  # noqa: E731
    table = run_in(capsys, "report", "--lake", lake)
    assert table.returncode == 0
    assert days(table.stdout) == [f"2026-11-{d}" for d in range(12, 26)]
    assert "The last 14 days, from 2026-11-12 to 2026-11-25: --all for every day" in \
        table.stderr
    every = run_in(capsys, "report", "--lake", lake, "--all")
    assert days(every.stdout) == [f"2026-11-{d:02d}" for d in range(1, 26)]
    assert every.stderr == ""
    some = run_in(capsys, "report", "--lake", lake, "--from", "2026-11-02", "--to",
                  "2026-11-20")
    assert days(some.stdout) == [f"2026-11-{d:02d}" for d in range(2, 21)]
    as_csv = run_in(capsys, "report", "--lake", lake, "--format", "csv")  # everything
    assert days(as_csv.stdout) == days(every.stdout)


def test_an_empty_range_says_so(ingested: Ingested) -> None:
    result = run_cli("report", "--lake", str(ingested.lake.root), "--from", "2026-11-05",
                     "--to", "2026-11-01")
    assert result.returncode == 0
    assert result.stdout.strip() == "No days between 2026-11-05 and 2026-11-01 in the lake."
    as_json = run_cli("report", "--lake", str(ingested.lake.root), "--from", "2026-11-05",
                      "--to", "2026-11-01", "--format", "json")
    assert as_json.stdout == "[]\n"


def test_an_unusable_lake_folder_is_one_line(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=2, seed=9)
    assert run_cli("ingest", "--source", "inbox", "--lake", "lake", cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "lake" / "attachments")
    (tmp_path / "lake" / "attachments").write_text("not a folder")
    simulate(tmp_path / "more", days=2, seed=10, start=date(2026, 11, 8))
    shutil.copytree(tmp_path / "more", tmp_path / "inbox" / "more")
    result = run_cli("ingest", "--source", "inbox", "--lake", "lake", cwd=tmp_path)
    assert result.returncode == 1
    _no_traceback(result)
    assert "cannot use the lake folder: a file stands where a folder is wanted" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert len(list((tmp_path / "lake" / "_log").iterdir())) == 1  # nothing committed


def test_a_wrong_date_is_a_clear_error(ingested: Ingested) -> None:
    result = run_cli("report", "--lake", str(ingested.lake.root), "--from", "3 Nov")
    assert result.returncode == 1
    assert "--from: '3 Nov' is not a date" in result.stderr
    _no_traceback(result)


def _derived(lake: Path) -> dict[str, bytes]:
    return {p.relative_to(lake).as_posix(): p.read_bytes()
            for p in sorted((lake / "frames").rglob("*.parquet"))}


@pytest.mark.parametrize("env", [{"TZ": "America/New_York"}, {"POLARS_MAX_THREADS": "1"},
                                 {"LC_ALL": "C", "TZ": "Asia/Tokyo"}])
def test_rebuild_command_remakes_derived_files_byte_for_byte(
    ingested: Ingested, tmp_path: Path, env: dict[str, str],
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(ingested.lake.root, lake)
    before = _derived(lake)
    shutil.rmtree(lake / "frames")
    (lake / "lake.duckdb").unlink()
    result = subprocess.run([sys.executable, "-m", "rmg_lake", "rebuild", "--lake", str(lake)],
                            env={**os.environ, **env}, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert _derived(lake) == before
    assert (lake / "lake.duckdb").is_file()


def test_the_duckdb_cli_opens_the_catalog_from_anywhere_even_after_a_move(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=2, seed=6, bad_files=False)
    assert run_cli("ingest", "--source", "inbox", "--lake", "lake", cwd=tmp_path).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def duckdb_cli(db: Path) -> subprocess.CompletedProcess[str]:
        assert DUCKDB is not None, "the duckdb CLI comes with the dev extra"
        return subprocess.run([DUCKDB, str(db), "-csv", "-c",
                               "select * from completion limit 5"],
                              cwd=elsewhere, capture_output=True, text=True, check=False)

    result = duckdb_cli(tmp_path / "lake" / "lake.duckdb")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header == "day,factory,task,department,team,expected,completed,attempted,status"
    assert len(rows) == 5
    (tmp_path / "lake").rename(tmp_path / "moved")
    assert run_cli("report", "--lake", "moved", cwd=tmp_path).returncode == 0
    moved = duckdb_cli(tmp_path / "moved" / "lake.duckdb")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == result.stdout


def test_simulate_command_writes_a_folder(tmp_path: Path) -> None:
    result = run_cli("simulate", str(tmp_path / "inbox"), "--days", "2", "--seed", "1")
    assert result.returncode == 0, result.stderr
    written = [p for p in (tmp_path / "inbox").rglob("*") if p.is_file()]
    assert f"Wrote {len(written):,} files" in result.stdout


def test_every_command_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for command in app.registered_commands:
        assert f"rmg-lake {command.name or command.callback.__name__}" in readme


def test_help_shows_every_option_text_whole() -> None:
    """Help texts are shown as written: no markup eats a `[default: …]` (a line may end
    after the hyphen of `rmg-lake.toml`, as text wrapped at hyphens does)."""
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        shown = " ".join(result.output.split()).replace("- ", "-")
        for param in typer.main.get_command(app).commands[name].params:
            text = getattr(param, "help", None)
            if text:
                assert " ".join(text.split()) in shown, (name, text)


def test_the_bundled_sample_is_what_the_simulator_writes(tmp_path: Path) -> None:
    """`just sample` remakes examples/inbox: same names, same bytes."""
    simulate(tmp_path / "inbox", days=21, observers=4, seed=7)
    ours = {p.relative_to(tmp_path / "inbox"): p.read_bytes()
            for p in (tmp_path / "inbox").rglob("*") if p.is_file()}
    bundled = {p.relative_to(REPO / "examples" / "inbox"): p.read_bytes()
               for p in (REPO / "examples" / "inbox").rglob("*") if p.is_file()}
    assert bundled == ours


def test_the_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (REPO / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    shutil.copytree(REPO / "examples" / "inbox", tmp_path / "examples" / "inbox")
    shutil.copy(REPO / "examples" / "corrections.csv", tmp_path / "examples")
    shutil.copy(REPO / "rmg-lake.toml", tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["wip"].height > 0  # type: ignore[attr-defined]
    corrections = namespace["lake"].table("corrections")  # type: ignore[attr-defined]
    assert corrections["outcome"].to_list() == ["applied"] * 3  # the sample's sheet applies
    assert (tmp_path / "shared" / "observations.csv").is_file()  # exported,
    backups = rmg_lake.open_target("usb-backups")  # backed up, and restored before the
    assert rmg_lake.versions(backups)  # rollback that ends the example
    assert rmg_lake.open_lake("lake").table("observations").is_empty()
    assert rmg_lake.open_lake("lake-restored").table("observations").height > 1000


def test_readers_that_find_the_catalog_gone_rebuild_it_once_together(
    ingested: Ingested, tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(ingested.lake.root, lake)
    (lake / "lake.duckdb").unlink()
    readers = [subprocess.Popen([sys.executable, "-m", "rmg_lake", "report", "--lake", str(lake),
                                 "--format", "csv"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [reader.communicate(timeout=120) for reader in readers]
    assert [reader.returncode for reader in readers] == [0, 0, 0, 0], results
    assert len({stdout for stdout, _ in results}) == 1


def test_a_second_writer_says_it_waits(ingested: Ingested, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(ingested.lake.root, lake)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom filelock import FileLock\n"
         f"lock = FileLock({str(lake / '.lock')!r}); lock.acquire(); print('held', "
         "flush=True); sys.stdin.readline()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with subprocess.Popen([sys.executable, "-m", "rmg_lake", "rebuild", "--lake", str(lake)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as writer:
            try:
                assert writer.stderr is not None
                said = writer.stderr.readline()
            finally:
                holder.communicate("\n", timeout=60)  # the first writer finishes, whatever
            out, _ = writer.communicate(timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert "Another rmg-lake run is writing this lake; waiting" in said
    assert writer.returncode == 0
    assert "Rebuilt the frames" in out


def test_a_lake_made_inside_the_sync_folder_is_left_out(tmp_path: Path) -> None:
    m = simulate(tmp_path / "inbox", days=2, seed=3)
    result = run_cli("ingest", "--source", "inbox", "--lake", "inbox/lake", cwd=tmp_path)
    assert f"{m.files:,} files seen" in result.stdout
    assert "Nothing new" in run_cli("ingest", "--source", "inbox", "--lake", "inbox/lake",
                                    cwd=tmp_path).stdout


def test_a_first_ingest_of_an_empty_folder_makes_the_lake(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "rmg-lake.toml").write_text(
        'source = "inbox"\nlake = "lake"\n[study.f09]\nlinking = ["pilot"]\n')
    result = run_cli("ingest", cwd=tmp_path)
    assert "Batch 1: no files in" in result.stdout
    assert run_cli("report", cwd=tmp_path).returncode == 0
    from rmg_lake import open_lake

    assert open_lake(tmp_path / "lake").frame("wip", "linking", "pilot").height == 0


def test_a_lake_under_home_is_where_the_user_means(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=1, seed=3, bad_files=False)
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    for command in (["ingest", "--source", "inbox"], ["report"]):
        result = subprocess.run([sys.executable, "-m", "rmg_lake", *command, "--lake",
                                 "~/mylake"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / "mylake" / "_meta.json").is_file()
    (tmp_path / "rmg-lake.toml").write_text('source = "~/../inbox"\nlake = "~/fromtoml"\n')
    result = subprocess.run([sys.executable, "-m", "rmg_lake", "ingest"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / "fromtoml" / "_meta.json").is_file()


def test_a_missing_source_makes_no_lake(tmp_path: Path) -> None:
    result = run_cli("ingest", "--source", "nowhere", "--lake", "lake", cwd=tmp_path)
    assert result.returncode == 1
    assert not (tmp_path / "lake").exists()


def test_report_into_head_is_quiet(ingested: Ingested) -> None:
    result = subprocess.run(
        f"{sys.executable} -m rmg_lake report --lake {ingested.lake.root} | head -2",
        shell=True, capture_output=True, text=True, check=False,
        executable="/bin/bash")
    assert result.stderr == "" and len(result.stdout.splitlines()) == 2


def test_report_and_rebuild_with_lake_ignore_a_broken_toml(
    ingested: Ingested, tmp_path: Path,
) -> None:
    (tmp_path / "rmg-lake.toml").write_text("this is not toml")
    for command in ("report", "rebuild"):
        result = run_cli(command, "--lake", str(ingested.lake.root), cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_no_worker_or_supervisor_code_is_ever_printed(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=3, seed=14)
    codes: set[str] = set()
    for path in (tmp_path / "inbox").rglob("*.json"):
        try:
            payload = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(payload, dict):
            codes.add(str(payload.get("supervisor")))
            for machine in (payload.get("machines") or {}).values():
                codes.add(str(machine.get("worker_id")))
    codes -= {"None"}
    assert len(codes) > 50
    output = ""
    for args in (["ingest", "--source", "inbox", "--lake", "lake"], ["report", "--lake", "lake"],
                 ["report", "--lake", "lake", "--format", "csv"], ["rebuild", "--lake", "lake"]):
        result = run_cli(*args, cwd=tmp_path)
        output += result.stdout + result.stderr
    assert [code for code in codes if code in output] == []


@pytest.mark.parametrize("columns", [80, 120])
def test_help_wraps_to_the_terminal(columns: int, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`--help` of rmg-lake and of every command fits the terminal, breaks lines only
    between words (a sentence of the source reads whole), and shows flags without a type."""
    monkeypatch.setenv("COLUMNS", str(columns))

    def shown(*args: str) -> str:
        result = run_in(capsys, *args, "--help")
        assert result.returncode == 0
        assert all(len(line) <= columns for line in result.stdout.splitlines())
        assert "<bool>" not in result.stdout
        return " ".join(result.stdout.split())

    top = shown()
    commands = top.split("Commands: ")[1]
    assert "..." not in commands
    assert "Remake every derived file (Parquet frames, lake.duckdb) from the log and the " \
           "files it names." in commands
    assert "--version Print rmg-lake's version and exit." in top
    assert "a row applies only if the value is still its old_value, and all rows apply or " \
           "none (unless --partial)." in shown("correct")
    for command in ("ingest", "report", "check", "rebuild", "backup", "restore", "export"):
        assert f"Usage: rmg-lake {command}" in shown(command)


def test_version() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"rmg-lake {version('rmg-lake')}\n"

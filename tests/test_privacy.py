"""Data protection: exports that can be shared, a lake private to its user, and output that
never shows a person's code."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson
import polars as pl
import pytest
from conftest import run_in, run_main
from openpyxl import load_workbook

from rmg_lake import Lake, open_lake, simulate


def cli(*args: str, env: dict[str, str] | None = None, umask: int | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`rmg-lake ARGS` in a real subprocess, with extra environment and umask."""
    return subprocess.run([sys.executable, "-m", "rmg_lake", *args], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300, check=False,
                          preexec_fn=None if umask is None else lambda: os.umask(umask))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Lake]:
    """Three days of a two-factory study, bad files and all."""
    root = tmp_path_factory.mktemp("privacy")
    simulate(root / "inbox", days=3, seed=23, observers=3, start=date(2026, 11, 2))
    lake = open_lake(root / "lake", create=True)
    lake.ingest(root / "inbox")
    return root, lake


def people(lake: Lake) -> set[str]:
    """Every worker and supervisor code in the lake's raw files, read from the JSON."""
    codes: set[str] = set()
    for path in (lake.root / "raw").rglob("*.json"):
        payload = orjson.loads(path.read_bytes())
        codes |= {m["worker_id"] for m in payload.get("machines", {}).values()
                  if isinstance(m, dict) and m.get("worker_id")}
        if payload.get("supervisor"):
            codes.add(payload["supervisor"])
    assert len(codes) > 50  # (workers of every team, and their supervisors)
    return codes


def texts(folder: Path) -> dict[str, str]:
    """Every exported file as text: Parquet and Excel cell by cell, CSV and README whole."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            found[path.name] = "\n".join(
                str(value) for column in frame.columns for value in frame[column].to_list())
        elif path.suffix == ".xlsx":
            book = load_workbook(path, read_only=True)
            found[path.name] = "\n".join(str(cell) for sheet in book.worksheets
                                         for row in sheet.iter_rows(values_only=True)
                                         for cell in row)
            book.close()
        else:
            found[path.name] = path.read_text(encoding="utf-8")
    return found


def hits(folder: Path, codes: set[str]) -> list[tuple[str, str]]:
    return [(name, code) for name, text in texts(folder).items() for code in codes
            if code in text]


@pytest.fixture
def secret(tmp_path: Path) -> dict[str, str]:
    env = {"RMG_LAKE_SECRET": str(tmp_path / "config" / "rmg-lake" / "study-secret")}
    made = cli("secret", "init", env=env, umask=0)
    assert made.returncode == 0, made.stderr
    (tmp_path / "secret-init.out").write_text(made.stdout + made.stderr)
    return env


def test_the_study_secret_is_made_once_private_and_never_shown(
        secret: dict[str, str], tmp_path: Path) -> None:
    path = Path(secret["RMG_LAKE_SECRET"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = path.read_text().strip()
    assert key[:16] not in (tmp_path / "secret-init.out").read_text()
    status = cli("secret", "status", env=secret)
    assert status.returncode == 0 and "key id" in status.stdout and key not in status.stdout
    again = cli("secret", "init", env=secret)
    assert again.returncode == 1 and "there is a study secret already" in again.stderr
    assert path.read_text().strip() == key and key not in again.stderr + again.stdout
    path.chmod(0o644)
    loose = cli("secret", "status", env=secret)
    assert loose.returncode == 1 and "readable by others" in loose.stderr


@pytest.mark.parametrize("fmt", ["parquet", "csv", "xlsx"])
def test_a_pseudonymised_export_holds_no_code_of_a_person(
        study: tuple[Path, Lake], secret: dict[str, str], tmp_path: Path, fmt: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, lake = study
    codes = people(lake)
    done = cli("export", "--lake", str(lake.root), "--out", str(tmp_path / "shared"),
               "--format", fmt, "--pseudonymise", env=secret, umask=0)
    assert done.returncode == 0, done.stderr
    assert "pseudonymised (key id" in done.stdout and "notes left out" in done.stdout
    assert hits(tmp_path / "shared", codes) == []
    names = {p.name for p in (tmp_path / "shared").iterdir()}
    assert {f"observations.{fmt}", f"completion.{fmt}", "README.txt",
            f"roster_knitting_treatment.{fmt}", f"wip_linking_control.{fmt}"} <= names
    # the scan finds codes where they are: the same export without pseudonyms
    code, stdout, _ = run_main(capsys, "export", "--lake", str(lake.root), "--out",
                               str(tmp_path / "plain"), "--format", fmt)
    assert code == 0 and "as the factory wrote them" in stdout
    assert {code for _, code in hits(tmp_path / "plain", codes)} == codes


def test_what_anyone_may_type_is_left_out_of_a_pseudonymised_export(
        study: tuple[Path, Lake], secret: dict[str, str], tmp_path: Path) -> None:
    root, known = study
    codes = sorted(people(known))
    inbox = tmp_path / "inbox"
    shutil.copytree(root / "inbox", inbox)
    wip = next(inbox.rglob("wip_*.json"))
    payload = {**orjson.loads(wip.read_bytes()), "device": f"tab-of-{codes[0]}",
               "app_version": codes[1], codes[2]: 1, "notes": f"{codes[3]} left early",
               "observation_id": "00000000-0000-4000-8000-000000000001"}
    (inbox / codes[4]).mkdir()
    (inbox / codes[4] / wip.name).write_bytes(orjson.dumps(payload))
    lake = open_lake(tmp_path / "lake", create=True)
    assert lake.ingest(inbox).counts["added"] == known.batches()[0].counts["added"] + 1
    done = cli("export", "--lake", str(lake.root), "--out", str(tmp_path / "shared"),
               "--format", "csv", "--pseudonymise", env=secret)
    assert done.returncode == 0, done.stderr
    assert hits(tmp_path / "shared", set(codes)) == []
    readme = (tmp_path / "shared" / "README.txt").read_text()
    assert "Also left out" in readme and "source_path, device, app_version, extra_keys" in readme


def test_an_excel_export_keeps_text_as_text(study: tuple[Path, Lake], tmp_path: Path) -> None:
    """A note starting with = is what the observer wrote, not a formula for Excel."""
    root, _ = study
    inbox = tmp_path / "inbox"
    wip = next((root / "inbox").rglob("wip_*.json"))
    inbox.mkdir()
    (inbox / wip.name).write_bytes(orjson.dumps({**orjson.loads(wip.read_bytes()),
                                                 "notes": "=> KN3 idle =1+1"}))
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(inbox)
    assert cli("export", "--lake", str(lake.root), "--out", str(tmp_path / "x"),
               "--format", "xlsx").returncode == 0
    sheet = load_workbook(tmp_path / "x" / "observations.xlsx").worksheets[0]
    notes = next(cell for cell in sheet[2] if cell.value == "=> KN3 idle =1+1")
    assert notes.data_type == "s"


def test_pseudonyms_are_stable_per_secret_and_notes_are_kept_on_purpose(
        study: tuple[Path, Lake], secret: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, lake = study
    monkeypatch.setenv("RMG_LAKE_SECRET", secret["RMG_LAKE_SECRET"])
    for name in ("one", "two"):
        assert run_main(capsys, "export", "--lake", str(lake.root), "--out",
                        str(tmp_path / name), "--pseudonymise", "--keep-notes")[0] == 0
    one, two = (pl.read_parquet(tmp_path / n / "roster_knitting_treatment.parquet")
                for n in ("one", "two"))
    assert one["worker_id"].equals(two["worker_id"])
    manned = one.filter(pl.col("mc_status") == "manned")["worker_id"]
    assert manned.str.contains(r"^p_[0-9a-f]{16}$").all()
    original = lake.frame("roster", "knitting", "treatment")
    assert manned.n_unique() == original.filter(
        pl.col("mc_status") == "manned")["worker_id"].n_unique()  # no two codes share one
    assert "notes" in pl.read_parquet(tmp_path / "one" / "observations.parquet").columns
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "other-secret"))
    assert run_main(capsys, "secret", "init")[0] == 0
    assert run_main(capsys, "export", "--lake", str(lake.root), "--out",
                    str(tmp_path / "three"), "--pseudonymise")[0] == 0
    three = pl.read_parquet(tmp_path / "three" / "roster_knitting_treatment.parquet")
    assert set(three["worker_id"].drop_nulls()).isdisjoint(set(manned))
    assert "notes" not in pl.read_parquet(tmp_path / "three" / "observations.parquet").columns


def test_the_data_dictionary_describes_every_column_of_every_file(
        study: tuple[Path, Lake], secret: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, lake = study
    monkeypatch.setenv("RMG_LAKE_SECRET", secret["RMG_LAKE_SECRET"])
    code, _, err = run_main(capsys, "export", "--lake", str(lake.root), "--out",
                            str(tmp_path / "csv"), "--format", "csv", "--tasks",
                            "wip,interactions", "--from", "2026-11-03", "--to", "2026-11-04",
                            "--pseudonymise")
    assert code == 0, err
    readme = (tmp_path / "csv" / "README.txt").read_text()
    files = sorted(p for p in (tmp_path / "csv").glob("*.csv"))
    assert not any(p.name.startswith("roster_") for p in files)
    for path in files:
        frame = pl.read_csv(path, infer_schema=False)
        section = readme.split(f"\n{path.name}\n", 1)[1].split("\n\n", 1)[0]
        described = [line.split(" (", 1)[0] for line in section.splitlines()[1:]]
        assert described == frame.columns, path.name
        if "day" in frame.columns:
            assert set(frame["day"]) <= {"2026-11-03", "2026-11-04"}
    assert "topic (text): What it was about. Values: machine-configuration, " \
           "machine-function, yarn, pattern, other-work, personal." in readme
    assert "wip (number): Pieces finished but not yet handed in, in steps of 0.25: a " \
           "linking machine's, and a knitting machine's when counted as one number instead " \
           "of panels (contract 1.1; then component and the panels are empty). Values: 0 to " \
           "48, in steps of 0.25, or empty." in readme
    assert "Pseudonymised: p_" in readme and "key id" in readme


def test_exports_refuse_what_they_cannot_do_in_one_line(
        study: tuple[Path, Lake], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, lake = study
    root = str(lake.root)

    def refused(*args: str, secret: Path | None = None) -> str:
        monkeypatch.setenv("RMG_LAKE_SECRET", str(secret or tmp_path / "none"))
        code, _, err = run_main(capsys, *args)
        assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
        return err

    assert "no study secret" in refused("export", "--lake", root, "--out",
                                        str(tmp_path / "a"), "--pseudonymise")
    assert not (tmp_path / "a").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert "not empty" in refused("export", "--lake", root, "--out", str(tmp_path / "full"))
    assert "outside the lake" in refused("export", "--lake", root, "--out", f"{root}/share")
    b = str(tmp_path / "b")
    assert "no task lunch" in refused("export", "--lake", root, "--out", b, "--tasks", "lunch")
    assert "names no task" in refused("export", "--lake", root, "--out", b, "--tasks", ",")
    assert "before --from" in refused("export", "--lake", root, "--out", b, "--from",
                                      "2026-11-05", "--to", "2026-11-01")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    a_file.chmod(0o600)
    assert "is a file, not a folder" in refused("export", "--lake", root, "--out", str(a_file))
    assert "cannot make the folder" in refused("export", "--lake", root, "--out",
                                               str(a_file / "sub"))
    assert "damaged" in refused("secret", "status", secret=a_file)
    assert "is a folder, not the study secret" in refused("secret", "init", secret=tmp_path)


def private(*folders: Path) -> list[str]:
    """Whatever in `folders` other users may read or enter."""
    loose = []
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode != (0o700 if path.is_dir() else 0o600):
                loose.append(f"{path.relative_to(folder.parent)} {mode:o}")
    return loose


def test_everything_rmg_lake_writes_is_private_whatever_the_umask(
        study: tuple[Path, Lake], secret: dict[str, str], tmp_path: Path) -> None:
    root, _ = study
    lake = tmp_path / "lake"
    lake.mkdir()
    lake.chmod(0o777)  # made beforehand, open to all
    steps = [("ingest", "--source", str(root / "inbox"), "--lake", str(lake), "--report"),
             ("report", "--lake", str(lake), "--format", "html", "--out",
              str(tmp_path / "page" / "report.html")),
             ("rebuild", "--lake", str(lake), "--as-of", "1"),
             ("rebuild", "--lake", str(lake), "--as-of", "1", "--out", str(tmp_path / "then")),
             ("export", "--lake", str(lake), "--out", str(tmp_path / "shared"),
              "--pseudonymise"),
             ("backup", "--lake", str(lake), "--to", str(tmp_path / "backups")),
             ("restore", str(tmp_path / "backups"), "--lake", str(tmp_path / "restored"))]
    for beforehand in ("restored", "then", "shared"):  # made beforehand, open to all
        (tmp_path / beforehand).mkdir()
        (tmp_path / beforehand).chmod(0o777)
    for step in steps:
        done = cli(*step, env=secret, umask=0)
        assert done.returncode == 0, (step, done.stderr)
    assert private(lake, tmp_path / "shared", tmp_path / "backups" / "backups",
                   tmp_path / "restored", tmp_path / "then",
                   Path(secret["RMG_LAKE_SECRET"]).parent) == []
    assert private(tmp_path / "page") == []  # (the report: wherever it is written)
    verified = cli("verify", "--lake", str(lake))
    assert verified.returncode == 0, verified.stdout


def test_verify_reports_files_others_may_read_and_repair_makes_them_private(
        study: tuple[Path, Lake], tmp_path: Path) -> None:
    root, _ = study
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(root / "inbox")
    raw = next((lake.root / "raw").rglob("*.json"))
    raw.chmod(0o644)
    (lake.root / "frames").chmod(0o755)
    found = cli("verify", "--lake", str(lake.root))
    assert found.returncode == 1
    assert "mode frames — 1 file or folder other users may read" in found.stdout
    assert f"e.g. {raw.relative_to(lake.root).as_posix()} (mode 644)" in found.stdout
    repaired = cli("verify", "--lake", str(lake.root), "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert private(lake.root) == []


def misplaced(inbox: Path, codes: list[str]) -> Path:
    """Files with people's codes where no code belongs (each quarantined, or kept with a
    key the contract lacks), beside the study's own."""
    roster = next(inbox.rglob("roster_*.json"))
    talk = next(inbox.rglob("interactions_*.json"))
    base, window = orjson.loads(roster.read_bytes()), orjson.loads(talk.read_bytes())
    machine = next(iter(base["machines"]))
    variants = [
        {**base, "machines": {codes[0]: base["machines"][machine]}},  # a code as a machine
        {**base, "machines": {machine: {"mc_status": "manned", "worker_id": 7101}}},
        {**base, "machines": {machine: {"mc_status": "manned", "worker_id": codes[1] * 20}}},
        {**base, "machines": {machine: {"mc_status": "unmanned", "worker_id": codes[2]}}},
        {**base, codes[3]: "a key named by a code"},
        {**window, "supervisor": [codes[4]]},
        {**window, "interactions": [{"with": codes[5], "length_s": 30,
                                     "initiator": "supervisor", "topic": "yarn"}]},
    ]
    folder = inbox.parent / "misplaced"
    shutil.copytree(inbox, folder)
    for n, payload in enumerate(variants):
        name = (roster if "machines" in payload else talk).name
        (folder / f"bad{n}").mkdir()
        (folder / f"bad{n}" / name).write_bytes(orjson.dumps(
            {**payload, "observation_id": f"00000000-0000-4000-8000-{n:012d}"}))
    return folder


def test_no_output_shows_a_person_s_code(study: tuple[Path, Lake], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A full ingest of a study with bad files (people's codes among them where no code
    belongs), progress bars on, a corrections sheet, and the everyday commands after
    them: not one worker or supervisor code in anything they print."""
    root, known = study
    codes = people(known)
    inbox = misplaced(root / "inbox", sorted(codes))
    lake = str(tmp_path / "lake")
    terminal = {"FORCE_COLOR": "1", "COLUMNS": "200"}  # rich draws its progress bars
    roster = known.table("roster").filter(pl.col("mc_status") == "manned").row(0, named=True)
    sheet = tmp_path / "fixes.csv"
    sheet.write_text("observation_id,field,old_value,new_value,reason\n"
                     f"{roster['observation_id']},machines.{roster['machine']}.worker_id,"
                     f"{roster['worker_id']},wNEW9999,typo\n"
                     f"{roster['observation_id']},machines.{roster['machine']}.worker_id,"
                     f"{roster['worker_id']},wNEW8888,stale\n"
                     f"{roster['observation_id']},{roster['worker_id']},,,shifted\n")
    codes |= {"wNEW9999", "wNEW8888"}
    def shown(*args: str) -> subprocess.CompletedProcess[str]:  # (in this process: quicker)
        return run_in(capsys, *args)

    runs = [cli("ingest", "--source", str(inbox), "--lake", lake, env=terminal),
            shown("correct", str(sheet), "--lake", lake, "--partial"),
            shown("report", "--lake", lake), shown("check", "--lake", lake, "--all"),
            shown("check", "--lake", lake, "--all", "--format", "csv"),
            shown("log", "--lake", lake), shown("show", "1", "--lake", lake),
            shown("show", "1", "--lake", lake, "--json"),
            cli("verify", "--lake", lake, env=terminal),
            cli("rebuild", "--lake", lake, env=terminal),
            shown("show", "2", "--lake", lake), shown("show", "2", "--lake", lake, "--json")]
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]

    def run_of(*args: str) -> subprocess.CompletedProcess[str]:
        return next(run for run in runs if run.args[1:1 + len(args)] == list(args))

    listed = [line for line in run_of("show", "1").stdout.splitlines() if "bad" in line]
    assert sum("quarantined" in line for line in listed) == 6, listed  # all but the extra key
    assert "quarantined" in runs[0].stdout  # the bad files were there, and said so
    assert "Reading" in runs[0].stderr  # the progress bar was drawn
    printed = "\n".join(run.stdout + run.stderr for run in runs)
    printed = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", printed)  # colours may split a code
    assert [code for code in codes if code in printed] == []


def test_peoples_codes_are_marked_once_on_the_contracts_models() -> None:
    """The fields marked `Personal` on the models are the ones every rule reads: messages
    never repeat their values, corrections and `show` hide them, exports pseudonymise them."""
    from rmg_lake.contract import validate
    from rmg_lake.contract.models import PERSONAL, InteractionsObservation, RosterMachine
    from rmg_lake.corrections.apply import shown_value
    from rmg_lake.store.tables import SCHEMAS

    assert {"worker_id", "supervisor"} == PERSONAL
    assert "worker_id" in RosterMachine.model_fields
    assert "supervisor" in InteractionsObservation.model_fields
    assert not PERSONAL & validate.SHOWN_VALUES  # (a message may name the key, never its value)
    for field in ("machines.KN3.worker_id", "supervisor"):
        assert shown_value(field, "w1101") == "‹a person's code›"
    assert shown_value("team", "treatment") == "'treatment'"
    columns = {c for schema in SCHEMAS.values() for c in schema}
    assert columns >= PERSONAL  # the frames keep them under the same names

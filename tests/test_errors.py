"""One error boundary: what the system, the Dropbox SDK and `requests` raise becomes one
line a researcher can act on (what, where, what to do), and no command ends in a
traceback, whatever place it is given."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import requests
from conftest import REPO, Ingested, run_in
from dropbox import auth, files
from dropbox.exceptions import ApiError, AuthError, HttpError, InternalServerError, RateLimitError

from rmg_lake.errors import (
    LakeError,
    LakeUnusable,
    boundary,
    converted,
    dropbox_not_found,
    passing,
)


@pytest.mark.parametrize(("number", "says", "retryable"), [
    (errno.ENOENT, "no such file or folder", False),
    (errno.ENOTDIR, "a file stands where a folder is wanted", False),
    (errno.EISDIR, "is a folder, not a file", False),
    (errno.EACCES, "permission denied", False),
    (errno.EPERM, "not permitted here", False),
    (errno.EROFS, "the disk is read-only", False),
    (errno.ENOSPC, "the disk is full", True),
    (errno.EDQUOT, "over the disk quota", True),
    (errno.EFBIG, "the file is too large for that disk", False),
    (errno.ENAMETOOLONG, "the name is too long", False),
    (errno.EIO, "the disk could not read or write it", True),
    (errno.EMFILE, "too many files are open", True),
    (errno.ENXIO, "no device answers there", False),
    (errno.EPROTO, "cannot use it (Protocol error)", False),  # any other: the system's words
])
def test_each_errno_says_what_it_means(number: int, says: str, retryable: bool) -> None:
    found = converted(OSError(number, os.strerror(number), "/media/usb/rmg/x.json"),
                      doing="write the backup")
    assert found is not None
    assert str(found).startswith(f"/media/usb/rmg/x.json: cannot write the backup: {says} — ")
    assert found.retryable is retryable


def test_an_os_error_without_a_number_or_a_file_is_named_by_its_kind_and_the_place() -> None:
    found = converted(FileNotFoundError("gone"), file="lake", kind=LakeUnusable)
    assert isinstance(found, LakeUnusable)
    assert str(found).startswith("lake: no such file or folder — ")


def _api(error: object) -> ApiError:
    return ApiError("request-id", error, "message", "en")


_LOOKUP = files.LookupError.not_found


@pytest.mark.parametrize(("error", "says", "retryable", "gone"), [
    (_api(files.DownloadError.path(_LOOKUP)), "no such file or folder in Dropbox", False, True),
    (_api(files.ListFolderError.path(_LOOKUP)), "no such file or folder in Dropbox", False,
     True),
    (_api(files.DeleteError.path_lookup(_LOOKUP)), "no such file or folder in Dropbox", False,
     True),
    (_api(files.UploadError.path(files.UploadWriteFailed(
        files.WriteError.insufficient_space, "session"))), "the Dropbox account is full", True,
     False),
    (_api(files.UploadError.path(files.UploadWriteFailed(
        files.WriteError.disallowed_name, "session"))), "Dropbox refused it (UploadError", False,
     False),
    (AuthError("request-id", auth.AuthError.expired_access_token),
     "Dropbox refused the credentials", False, False),
    (RateLimitError("request-id", auth.RateLimitError(auth.RateLimitReason.too_many_requests)),
     "Dropbox asks rmg-lake to slow down", True, False),
    (InternalServerError("request-id", 500, "oops"), "Dropbox could not answer just now", True,
     False),
    (HttpError("request-id", 503, "down"), "Dropbox could not answer just now", True, False),
    (requests.exceptions.ConnectionError("reset"), "cannot reach Dropbox", True, False),
    (requests.exceptions.ReadTimeout("slow"), "cannot reach Dropbox", True, False),
])
def test_dropbox_and_network_errors_by_their_types(error: Exception, says: str, retryable: bool,
                                                   gone: bool) -> None:
    found = converted(error, file="dropbox:/rmg/backups")
    assert found is not None
    assert str(found).startswith(f"dropbox:/rmg/backups: {says}")
    assert found.retryable is retryable
    assert dropbox_not_found(error) is gone


def test_a_fault_of_the_code_is_not_dressed_up_as_the_users() -> None:
    assert converted(KeyError("machine")) is None
    assert converted(duckdb.CatalogException("Table with name wip does not exist")) is None
    assert converted(pl.exceptions.ColumnNotFoundError("w1101")) is None
    with pytest.raises(KeyError), boundary(file="lake"):
        raise KeyError("machine")
    with pytest.raises(LakeError, match="the disk is full") as caught, boundary(file="lake"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert isinstance(caught.value.__cause__, OSError)  # (--debug shows where)


def test_an_unexpected_error_is_one_line_and_a_pointer_to_debug(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        ingested: Ingested) -> None:
    def broken(*_: object) -> None:
        raise ZeroDivisionError("w1101 / 0")  # (what it says may name a person: not shown)

    monkeypatch.setattr("rmg_lake.cli.everyday.render_completion", broken)
    result = run_in(capsys, "report", "--lake", str(ingested.lake.root), "--all")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "an unexpected ZeroDivisionError" in result.stderr
    assert "rmg-lake --debug" in result.stderr and "w1101" not in result.stderr
    with pytest.raises(ZeroDivisionError):
        run_in(capsys, "--debug", "report", "--lake", str(ingested.lake.root), "--all")


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """A file, a folder, a named pipe, a missing path and a place that refuses writes."""
    root = tmp_path
    (root / "notes.txt").write_text("a file")
    (root / "folder.csv").mkdir()
    os.mkfifo(root / "pipe.csv")
    refused = root / "refused"
    refused.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere a mode forbids: a kernel folder refuses
        refused = Path("/sys/rmg-lake-test")
    with pytest.raises(OSError):
        (refused / "probe").mkdir(parents=True)
    return {"file": root / "notes.txt", "folder": root / "folder.csv",
            "pipe": root / "pipe.csv", "missing": root / "missing" / "deeper",
            "refused": refused / "inside"}


# (command, the place it is given) → what the one line says
BAD = [
    ("backup --to {file}", "is a file, not a folder"),
    ("export --out {file}", "is a file, not a folder"),
    ("schema --out {file}", "a file stands where a folder is wanted"),
    ("rebuild --as-of 1 --out {file}", "is a file, not a folder"),
    ("restore {file} --lake {missing}", "is a file, not a folder"),
    ("report --lake {file}", "is a file, not a lake folder"),
    ("ingest --source {file} --lake {missing}", "is a file, not a folder"),
    ("simulate {file}", "already exists"),
    ("check --lake {missing}", "no lake here"),
    ("ingest --source {missing} --lake {missing}", "no such folder"),
    ("restore {missing} --lake {missing}", "no backup there"),
    ("correct {missing}.csv --by me", "no such file or folder"),
    ("import-legacy {missing} --factory f01 --observer obs01 --team treatment",
     "no such file or folder"),
    ("backup --to {refused}", "not permitted here|permission denied"),
    ("export --out {refused}", "not permitted here|permission denied"),
    ("schema --out {refused}", "not permitted here|permission denied"),
    ("simulate {refused}", "not permitted here|permission denied"),
    ("report --format html --out {refused}/r.html", "not permitted here|permission denied"),
    ("correct {folder} --by me", "not a file"),
    ("report --format html --out {folder}", "is not a file (a folder"),
    ("report --format html --out {pipe}", "is not a file (a folder, a named pipe or a device)"),
    ("rebuild --as-of 1 --out {refused}", "cannot write the frames there: "),
    ("backup --to {lake}/backups", "a backup goes outside the lake"),
    ("correct {pipe} --by me", "not a file (a folder, a named pipe or a device)"),
    ("restore {pipe} --lake {missing}", "is a file, not a folder"),
]


@pytest.mark.parametrize(("command", "says"), BAD, ids=[c for c, _ in BAD])
def test_a_bad_place_is_one_line_and_no_traceback(
        command: str, says: str, places: dict[str, Path], ingested: Ingested,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = command.format(lake=ingested.lake.root,
                          **{k: str(v) for k, v in places.items()}).split()
    if "--lake" not in args and args[0] not in ("simulate", "schema"):
        args += ["--lake", str(ingested.lake.root)]
    result = run_in(capsys, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), line
    assert any(part in line for part in says.split("|")), line


def test_a_full_disk_midway_is_one_line_and_leaves_nothing_half_written(
        tmp_path: Path, ingested: Ingested) -> None:
    """No file may grow past 64 KiB (the kernel's own limit, as a full disk would stop it):
    the backup stops at the first object that needs more, with one line."""
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    result = subprocess.run(
        [sys.executable, "-m", "rmg_lake", "backup", "--to", str(tmp_path / "usb"),
         "--lake", str(ingested.lake.root)], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=False, preexec_fn=small_files)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "too large for that disk" in result.stderr
    assert not list((tmp_path / "usb").rglob(".tmp-*"))  # no temp file left behind
    assert not list((tmp_path / "usb").glob("backups/*.json"))  # no version named


EVERY = ["ingest", "report", "check", "rebuild", "verify", "correct x.csv --by me", "log",
         "show 1", "rollback 1 --reason wrong", "backup --to {folder}",
         "export --out {missing}",
         "import-legacy {folder} --factory f01 --observer obs01 --team treatment"]


@pytest.mark.parametrize(("command", "lake", "says"), [
    *((command, "file", "is a file, not a lake folder") for command in EVERY),
    *((command, "missing", "no lake here") for command in EVERY  # (these two make one)
      if command.split()[0] not in ("ingest", "import-legacy"))])
def test_every_command_says_when_its_lake_is_no_lake(
        command: str, lake: str, says: str, places: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    args = [*command.format(**{k: str(v) for k, v in places.items()}).split(),
            "--lake", str(places[lake])]
    result = run_in(capsys, *args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


@pytest.mark.parametrize(("command", "secret", "says"), [
    ("secret init", "refused", "cannot write the study secret: "),
    ("secret status", "folder", "cannot read the study secret: is a folder, not a file"),
    ("secret status", "missing", "no study secret on this computer"),
    ("secret init", "folder", "is a folder, not the study secret"),
    ("secret status", "pipe", "not a file (a folder, a named pipe or a device)"),
    ("secret init", "pipe", "is a named pipe or a device, not the study secret"),
])
def test_a_bad_place_for_the_study_secret_is_one_line(
        command: str, secret: str, says: str, places: dict[str, Path],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMG_LAKE_SECRET", str(places[secret]))
    result = run_in(capsys, *command.split())
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


@pytest.mark.parametrize(("error", "says", "retryable"), [
    (duckdb.IOException('IO Error: Cannot open "x": Too many open files\nLINE 2: SELECT'),
     "the data files could not be read or written: too many files are open", True),
    (pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)"),
     "the data files could not be read or written: the disk is full", True),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
     "the connection was cut", True),
    (TimeoutError("timed out"), "the network drive did not answer", True),
])
def test_what_duckdb_polars_and_the_network_say_in_the_systems_words(
        error: Exception, says: str, retryable: bool) -> None:
    found = converted(error, file="lake")
    assert found is not None and str(found).startswith(f"lake: {says} — ")
    assert "\n" not in str(found) and "SELECT" not in str(found)  # (their text: not shown)
    assert found.retryable is retryable and passing(error) is retryable


def test_a_damaged_or_strange_backup_is_one_line_and_never_waits(
        tmp_path: Path, ingested: Ingested, capsys: pytest.CaptureFixture[str]) -> None:
    usb = tmp_path / "usb"
    assert run_in(capsys, "backup", "--to", str(usb), "--lake",
                  str(ingested.lake.root)).returncode == 0
    (usb / "backups" / "notes.json").write_text("not a version")  # (ignored)
    (manifest,) = (usb / "backups").glob("2*.json")
    objects = sorted((usb / "backups" / "objects").rglob("*"))
    piped = next(o for o in objects if o.is_file())
    piped.unlink()
    os.mkfifo(piped)  # reading it would wait for ever
    result = run_in(capsys, "restore", str(usb), "--lake", str(tmp_path / "again"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not a file (a folder, a named pipe or a device)" in result.stderr
    assert not (tmp_path / "again").exists()  # no half-made lake left behind
    manifest.write_text("{")
    result = run_in(capsys, "restore", str(usb), "--lake", str(tmp_path / "again2"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "this backup version's manifest is damaged" in result.stderr


def test_a_named_pipe_as_rmg_lake_toml_is_refused_not_read(tmp_path: Path) -> None:
    from rmg_lake import ConfigError, load_config

    os.mkfifo(tmp_path / "rmg-lake.toml")
    with pytest.raises(ConfigError, match="not a file"):
        load_config(tmp_path / "rmg-lake.toml")

"""Where rmg-lake runs, said and held: Linux and macOS (Windows through WSL2). Native
Windows is refused in one line before anything is written; the HTML report's tests find
a Chromium or Chrome where Linux and macOS keep one, and `just browser` says what to
install where it cannot install one itself."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from browser import APPS, find_browser
from conftest import REPO

from rmg_lake import LakeError, UnsupportedPlatform, open_lake
from rmg_lake._internal.files import RUNS_ON, check_platform

WSL = "run it in WSL2"


def test_the_readme_says_where_it_runs() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Where it runs\n", 1)[1].split("\n## ", 1)[0]
    said = " ".join(section.split())
    assert f"{' and '.join(RUNS_ON.values())}, with Python" in said
    assert "On Windows, run it in WSL2" in said


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_linux_and_macos_run_it(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    check_platform()


@pytest.mark.parametrize("platform", ["win32", "cygwin", "msys"])
def test_windows_is_told_of_wsl2(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    with pytest.raises(UnsupportedPlatform) as refused:
        check_platform()
    assert str(refused.value).startswith(
        f"rmg-lake runs on Linux and macOS, not on Windows itself — {WSL} (`wsl --install`")


def test_another_system_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "freebsd14")
    with pytest.raises(UnsupportedPlatform) as refused:
        check_platform()
    assert str(refused.value) == ("rmg-lake runs on Linux and macOS, not on freebsd14 — "
                                  "run it on Linux or macOS")


def test_this_machine_takes_the_posix_path(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Here (Linux) nothing is refused, and a new lake is made the POSIX way: its folder
    opened and synced, its files and folders the user's alone."""
    assert sys.platform in RUNS_ON
    check_platform()
    synced: list[bool] = []  # whether each descriptor synced was a folder's
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    lake = open_lake(tmp_path / "lake", create=True)
    assert True in synced
    for path in (lake.root, lake.root / "_meta.json", lake.root / "_log"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_the_library_refuses_native_windows(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(UnsupportedPlatform, match="not on Windows itself") as refused:
        open_lake(tmp_path / "lake", create=True)
    assert isinstance(refused.value, LakeError)
    assert WSL in str(refused.value)
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("command", [["ingest", "--source", "inbox", "--lake", "lake"],
                                     ["simulate", "inbox", "--days", "1"]])  # (no lake)
def test_the_command_refuses_native_windows_in_one_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The `rmg-lake` script's own entry point, as Windows would run it: one line on
    stderr, exit code 1, nothing written, whatever the command."""
    (script,) = entry_points(group="console_scripts", name="rmg-lake")
    main = script.load()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["rmg-lake", *command])
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    shown = capsys.readouterr()
    assert shown.out == ""
    assert shown.err.splitlines() == [
        "error: rmg-lake runs on Linux and macOS, not on Windows itself — run it in WSL2 "
        "(`wsl --install` in PowerShell, then install rmg-lake inside the Linux it gives)"]
    assert list(tmp_path.iterdir()) == []


# Python as native Windows has it, near enough: the os module without what POSIX alone
# has (os.sync, O_NOFOLLOW, …), no SIGKILL, `sys.platform` "win32", and rmg-lake imported
# afresh there (the libraries it uses are imported first, as they are on any system).
_WINDOWS = """
import enum, os, signal, sys
import rmg_lake.cli
for name in [m for m in sys.modules if m.split(".")[0] == "rmg_lake"]:
    del sys.modules[name]
for name in ("sync", "O_NOFOLLOW", "O_NONBLOCK", "O_DIRECTORY", "O_NOCTTY", "fchmod",
             "fchown", "getuid", "geteuid", "getgid", "fork", "killpg", "setsid", "getpgid",
             "statvfs", "fdatasync", "mkfifo", "getloadavg", "uname"):
    delattr(os, name)
signal.Signals = enum.IntEnum("Signals", {
    n: int(s) for n, s in signal.Signals.__members__.items() if n not in ("SIGKILL", "SIGHUP")})
sys.platform = "win32"
sys.argv = ["rmg-lake", "--version"]
from rmg_lake.cli import main
main()
"""


def test_rmg_lake_imports_on_native_windows_to_say_it_does_not_run_there() -> None:
    """What rmg-lake's modules do when imported must not need POSIX, or the refusal would
    be an import's traceback instead of its one line."""
    ran = subprocess.run([sys.executable, "-c", _WINDOWS], capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr.splitlines() == [
        "error: rmg-lake runs on Linux and macOS, not on Windows itself — run it in WSL2 "
        "(`wsl --install` in PowerShell, then install rmg-lake inside the Linux it gives)"]


# The browser for the HTML report's tests

def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("name", ["chromium", "chromium-browser", "google-chrome", "chrome"])
def test_a_browser_on_the_path_is_found(name: str, tmp_path: Path) -> None:
    found = _executable(tmp_path / "bin" / name)
    assert find_browser(path=str(tmp_path / "bin"), root=tmp_path) == str(found)


@pytest.mark.parametrize("app", [
    "Applications/Chromium.app/Contents/MacOS/Chromium",
    "Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
])
def test_a_browser_where_macos_installs_it_is_found(app: str, tmp_path: Path) -> None:
    found = _executable(tmp_path / app)
    assert find_browser(path="", root=tmp_path) == str(found)


def test_the_path_comes_first_and_chromium_before_chrome(tmp_path: Path) -> None:
    for app in APPS:
        _executable(tmp_path / app)
    _executable(tmp_path / "bin" / "google-chrome")
    chromium = _executable(tmp_path / "bin" / "chromium")
    assert find_browser(path=str(tmp_path / "bin"), root=tmp_path) == str(chromium)
    assert find_browser(path="", root=tmp_path) == str(tmp_path / APPS[0])


def test_no_browser_is_none(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "chromium").write_text("not executable")
    (tmp_path / APPS[1]).parent.mkdir(parents=True)
    (tmp_path / APPS[1]).write_text("not executable")
    assert find_browser(path=str(tmp_path / "bin"), root=tmp_path) is None


# `just browser`, run with a PATH of its own: bash and python3, and what a test puts there

def _just() -> str | None:
    """`just` itself (a pyenv shim in front of it would need pyenv on the PATH)."""
    beside = Path(sys.executable).with_name("just")
    return str(beside) if beside.is_file() else shutil.which("just")


JUST = _just()
needs_just = pytest.mark.skipif(JUST is None, reason="just is not installed")


def _just_browser(folder: Path) -> subprocess.CompletedProcess[str]:
    """`just browser` with `folder` alone on the PATH (sh, bash and python3 added to it)."""
    for shell in ("sh", "bash"):
        (folder / shell).symlink_to(shutil.which(shell) or f"/bin/{shell}")
    (folder / "python3").symlink_to(sys.executable)
    assert JUST is not None
    return subprocess.run([JUST, "browser"], cwd=REPO, env={"PATH": str(folder)},
                          capture_output=True, text=True, timeout=60, check=False)


def _apt_get(folder: Path) -> Path:
    """A stand-in for apt-get in `folder` that writes down how it was called."""
    calls = folder.parent / "apt-get.calls"
    _executable(folder / "apt-get").write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    return calls


@needs_just
def test_just_browser_says_what_to_install_without_apt(tmp_path: Path) -> None:
    if find_browser(path="") is not None:
        pytest.skip("a browser is installed where macOS keeps one")
    (tmp_path / "bin").mkdir()
    ran = _just_browser(tmp_path / "bin")
    assert ran.returncode != 0
    ours = [line for line in ran.stderr.splitlines()  # (just's own: the recipe failed)
            if not line.lower().startswith("error: recipe `browser` failed")]
    assert ours == ["error: no Chromium or Chrome found, and no apt-get to install one — "
                    "install one (on macOS: `brew install --cask chromium`, or Google Chrome), "
                    "then run the same command again"]


@needs_just
def test_just_browser_installs_debians_chromium_with_apt(tmp_path: Path) -> None:
    if find_browser(path="") is not None:
        pytest.skip("a browser is installed where macOS keeps one")
    (tmp_path / "bin").mkdir()
    calls = _apt_get(tmp_path / "bin")
    ran = _just_browser(tmp_path / "bin")
    assert ran.returncode == 0, ran.stderr
    assert calls.read_text().splitlines() == ["update -qq", "install -y -qq chromium"]


@needs_just
def test_just_browser_leaves_a_browser_found_alone(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    calls = _apt_get(tmp_path / "bin")
    _executable(tmp_path / "bin" / "google-chrome")
    ran = _just_browser(tmp_path / "bin")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")
    assert not calls.exists()


def test_the_tests_use_the_finder() -> None:
    """The HTML report's tests and `just browser` ask the one finder."""
    assert re.search(r"^CHROMIUM = find_browser\(\)$",
                     (REPO / "tests" / "test_html_report.py").read_text(), flags=re.M)
    assert "python3 tests/browser.py" in (REPO / "justfile").read_text()

"""`rmg-lake watch --install`: a user service that runs the watch at login, and says how
to start it, stop it and read its log: a systemd user unit on Linux, a launchd agent on
macOS. Nothing is started here: the commands it prints do that.
"""

from __future__ import annotations

import os
import plistlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rmg_lake._internal.files import write_atomic
from rmg_lake.errors import LakeError, boundary

__all__ = ["LABEL", "UNIT", "Service", "executable", "install", "launchd_plist",
           "service_file", "systemd_unit", "uninstall"]

UNIT = "rmg-lake-watch"  # the systemd unit's name
LABEL = "org.rmg-lake.watch"  # the launchd agent's


@dataclass(frozen=True, slots=True)
class Service:
    path: Path  # the file written (or removed)
    start: str  # the commands that start it now and at every login
    stop: str
    log: str  # … that show what it says


def executable() -> list[str]:
    """The command that runs this very rmg-lake: its `rmg-lake` script, else its Python
    with `-m rmg_lake`."""
    script = Path(sys.argv[0])
    if script.name == "rmg-lake" and script.is_file():
        return [str(script.resolve())]
    return [sys.executable, "-m", "rmg_lake"]


def service_file(platform: str = sys.platform) -> Path:
    """Where the user service of `platform` is kept."""
    if platform.startswith("linux"):
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(config) / "systemd" / "user" / f"{UNIT}.service"
    if platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    raise LakeError(f"--install knows Linux (systemd) and macOS (launchd), not {platform}",
                    hint="start `rmg-lake watch` with the system's own tool for programs "
                         "run at login")


def install(command: list[str], folder: Path, platform: str = sys.platform) -> Service:
    """Write the service that runs `command` in `folder` (where rmg-lake.toml is) at login."""
    path = service_file(platform)
    if platform == "darwin":
        log = Path.home() / "Library" / "Logs" / f"{UNIT}.log"
        data = launchd_plist(command, folder, log)
        domain = "gui/$(id -u)"
        service = Service(path, f"launchctl bootstrap {domain} {_sh(str(path))}",
                          f"launchctl bootout {domain}/{LABEL}", f"tail -f {_sh(str(log))}")
    else:
        data = systemd_unit(command, folder).encode()
        service = Service(path, f"systemctl --user daemon-reload && systemctl --user enable "
                                f"--now {UNIT}", f"systemctl --user disable --now {UNIT}",
                          f"journalctl --user -u {UNIT} -f")
    with boundary(file=path, doing="write the service"):
        write_atomic(path, data)
    return service


def uninstall(platform: str = sys.platform) -> Service | None:
    """Remove the service file (and systemd's link that starts it at login); None if
    there was none. The commands say how to stop one still running."""
    path = service_file(platform)
    if not path.exists():
        return None
    with boundary(file=path, doing="remove the service"):
        path.unlink()
        if platform != "darwin":  # what `systemctl --user enable` made
            (path.parent / "default.target.wants" / path.name).unlink(missing_ok=True)
    if platform == "darwin":
        return Service(path, "", f"launchctl bootout gui/$(id -u)/{LABEL}", "")
    return Service(path, "", f"systemctl --user stop {UNIT} && systemctl --user "
                             "daemon-reload", "")


def systemd_unit(command: list[str], folder: Path) -> str:
    """A systemd user unit running `command` in `folder`, started at login, restarted if
    it fails (a clean stop, SIGTERM, is not a failure)."""
    return f"""\
[Unit]
Description=rmg-lake watch: new observation files into the lake as they arrive

[Service]
Type=simple
WorkingDirectory={_unit_text(str(folder))}
ExecStart={" ".join(_unit_word(word) for word in command)}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=60

[Install]
WantedBy=default.target
"""


def launchd_plist(command: list[str], folder: Path, log: Path) -> bytes:
    """A launchd agent running `command` in `folder` at login, started again if it fails,
    its output appended to `log`."""
    return plistlib.dumps({
        "Label": LABEL, "ProgramArguments": command, "WorkingDirectory": str(folder),
        "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False},
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
        "StandardOutPath": str(log), "StandardErrorPath": str(log)})


_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def _unit_text(text: str) -> str:
    """`text` as a unit file's value: its `%` and `$` taken literally, on one line."""
    if "\n" in text or "\r" in text:
        raise LakeError("a path with a line break cannot go into a service file", file=text)
    return text.replace("%", "%%")


def _unit_word(word: str) -> str:
    """One word of ExecStart=, quoted as systemd reads it."""
    word = _unit_text(word).replace("$", "$$")
    if _PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sh(text: str) -> str:
    """`text` as one word of a shell command."""
    return text if _PLAIN.fullmatch(text) else "'" + text.replace("'", "'\\''") + "'"

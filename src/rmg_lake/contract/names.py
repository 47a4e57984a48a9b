"""File names of the contract: `<task>_<department>_<team>_<observer>_<YYYYMMDD>T<HHMMSS>.json`."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FileName", "original_name", "parse_name"]

# Dropbox renames clashing uploads: "x (1).json", "x (obs03's conflicted copy 2026-11-24).json"
_CLASH = r" \((?:\d+|[^()/]*conflicted copy[^()/]*)\)"
_NAME = re.compile(
    r"(?P<task>[a-z0-9-]+)_(?P<department>[a-z0-9-]+)_(?P<team>[a-z0-9-]+)"
    r"_(?P<observer>[a-z0-9-]+)_(?P<stamp>\d{8}T\d{6})"
    rf"(?:{_CLASH})*\.json"
)


@dataclass(frozen=True, slots=True)
class FileName:
    task: str
    department: str
    team: str
    observer: str
    stamp: str  # factory-local start time as written, YYYYMMDDTHHMMSS


def parse_name(name: str) -> FileName | None:
    """The tokens of a contract file name (its last path part), or None if it is not one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return FileName(**match.groupdict())


def original_name(name: str) -> str:
    """`name` without the suffixes Dropbox adds to clashing uploads (any file, any name)."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    return re.sub(f"(?:{_CLASH})+$", "", stem) + dot + suffix

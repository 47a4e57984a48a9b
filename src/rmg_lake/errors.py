"""Errors a researcher can act on: each names the file, the field and what to do next."""

from __future__ import annotations

import re

__all__ = ["ConfigError", "LakeError", "LakeUnusable", "SourceError", "shown"]

# Control characters (C0, DEL, C1) and the marks that reorder text on screen.
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(text: str) -> str:
    """`text` safe to print on a terminal: control characters and bidi marks, which a file
    name may hold, become `\\xNN` / `\\uNNNN` instead of acting on the screen."""
    return _UNSHOWABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


class LakeError(Exception):
    """Base of every error rmg-lake raises on purpose.

    `file` and `field` say where the problem is; `hint` says what to do about it.
    """

    def __init__(
        self, message: str, *, file: str | None = None, field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        where = ": ".join(shown(part) for part in (self.file, self.field) if part)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class SourceError(LakeError):
    """The sync folder (or other source) cannot be read."""


class LakeUnusable(LakeError):
    """The lake folder cannot be used: missing, unwritable, or of a newer layout."""


class ConfigError(LakeError):
    """`rmg-lake.toml` is missing a value or holds a wrong one."""

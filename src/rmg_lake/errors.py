"""Errors a researcher can act on: each names the file, the field and what to do next."""

from __future__ import annotations

__all__ = ["ConfigError", "LakeError", "LakeUnusable", "SourceError"]


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
        where = ": ".join(part for part in (self.file, self.field) if part)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class SourceError(LakeError):
    """The sync folder (or other source) cannot be read."""


class LakeUnusable(LakeError):
    """The lake folder cannot be used: missing, unwritable, or of a newer layout."""


class ConfigError(LakeError):
    """`rmg-lake.toml` is missing a value or holds a wrong one."""

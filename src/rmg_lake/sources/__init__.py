"""Where files come from: anything that lists files with a stable identity and reads their bytes.

A source lists `SourceFile`s; `path` is the file's identity within the source and
`fingerprint` changes whenever its content may have changed (size and mtime for a local
folder, Dropbox's content hash for the API). Files already logged with the same path and
fingerprint are not read again, so an ingest reads only what is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rmg_lake.sources.base import (
    OUR_FOLDERS,
    FileDeferred,
    FileGone,
    FileRefused,
    Source,
    SourceFile,
    ours,
    printable,
    unprintable,
    utf8,
)
from rmg_lake.sources.local import LocalFolder

__all__ = [
    "OUR_FOLDERS", "FileDeferred", "FileGone", "FileRefused", "LocalFolder", "Source",
    "SourceFile", "open_source", "ours", "printable", "unprintable", "utf8",
]


def open_source(spec: str, *, exclude: Sequence[Path] = ()) -> Source:
    """The source a config value or `--source` names (today: a local folder).

    `exclude` names folders never to list, such as a lake kept inside the sync folder.
    """
    if spec.startswith("dropbox:"):
        from rmg_lake.sources.dropbox import DropboxFolder
        from rmg_lake.sources.dropbox_client import client_from_env

        return DropboxFolder(spec, client_from_env())
    return LocalFolder(spec, exclude=exclude)

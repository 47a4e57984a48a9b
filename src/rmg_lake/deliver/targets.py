"""Where backups and reports go: a local folder (a USB disk) or a Dropbox folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rmg_lake._internal.files import read_file, write_atomic
from rmg_lake.errors import LakeError, guarded
from rmg_lake.store.raw import sha256

__all__ = ["FolderTarget", "Target", "open_target"]


class Target(Protocol):
    """Where backups go: keys are `/`-separated paths below the target."""

    name: str

    def put(self, key: str, data: bytes) -> None:
        """Store `data` at `key`, checked after it is written."""
        ...

    def get(self, key: str) -> bytes: ...

    def keys(self, prefix: str) -> list[str]:
        """The files directly in `prefix`."""
        ...

    def objects(self) -> list[str]:
        """Every key under `backups/objects`."""
        ...

    def delete(self, key: str) -> None: ...


class FolderTarget:
    """A local folder: a USB disk, or the tests."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.name = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise LakeError("is a file, not a folder", file=str(root),
                            hint="give a folder")

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self.root / key, data)
        if sha256((self.root / key).read_bytes()) != sha256(data):
            raise LakeError("the backup copy does not match what was written", file=key)

    def get(self, key: str) -> bytes:
        return read_file(self.root / key)

    def keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(p.relative_to(self.root).as_posix() for p in folder.iterdir()
                      if p.is_file()) if folder.is_dir() else []

    def objects(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix()
                      for p in (self.root / "backups" / "objects").glob("*/*"))

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


@guarded
def open_target(spec: str) -> Target:
    """A folder to write to: `dropbox:/path` (signed in as `rmg-lake auth` left it), or
    a local one."""
    if spec.startswith("dropbox:"):  # (the SDK loads only when it is needed)
        from rmg_lake.deliver.dropbox_target import DropboxTarget
        from rmg_lake.sources.dropbox_client import client_from_env

        return DropboxTarget(spec, client_from_env())
    return FolderTarget(spec)

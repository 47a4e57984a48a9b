"""Dropbox sign-in, backups and restores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rmg_lake.cli.shell import (
    LakeOption,
    about,
    app,
    lake_from,
    lake_path,
    out,
    plural,
    track,
    warn,
)
from rmg_lake.config import load_config
from rmg_lake.deliver.targets import open_target
from rmg_lake.errors import LakeError

PLAIN = ("the backup is not encrypted: whoever can read that folder can read the "
         "observations, workers' codes and all")


@app.command()
def backup(
    to: Annotated[str | None, typer.Option(
        "--to", help="Backup folder: dropbox:/path, or a local one (a USB disk, say) "
                     "(default: `backup` from rmg-lake.toml).")] = None,
    lake: LakeOption = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Then delete old versions: keep all of the last --days, then one a "
        "week for --weeks-days.")] = False,
    days: Annotated[int, typer.Option(min=0)] = 14,
    weeks_days: Annotated[int, typer.Option(min=0)] = 365,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Not encrypted, on purpose (by default a backup is encrypted with "
                        "the study secret, if this computer has one).")] = False,
) -> None:
    """Write a timestamped, verifiable version of the lake, encrypted with the study
    secret; only new files are copied."""
    from rmg_lake.deliver.backup import backup as run
    from rmg_lake.deliver.backup import prune as run_prune

    config = load_config() if to is None or lake is None else None  # (both given: unread)
    own = about(config, lake_path(lake, config))
    to = to or (own.backup if own else None)
    plain = plain or bool(own and own.backup_plain)
    if to is None:
        raise LakeError("no backup folder given", hint="pass --to DIR (or dropbox:/path), "
                        "or set `backup` in rmg-lake.toml")
    target = open_target(to)
    result = run(lake_from(lake), target, track=track, plain=plain)
    how = f"encrypted, key id {result.key_id}" if result.key_id else "not encrypted"
    out.print(f"Backed up {plural(result.objects, 'file')} ({result.uploaded:,} new) as "
              f"{result.manifest} in {to} ({how}).")
    if result.key_id is None:
        warn(PLAIN if plain else f"{PLAIN}; with the study secret on this computer (copied "
             "from the computer that made it, or `rmg-lake secret init` if the study has "
             "none) the next backups are encrypted, to a new folder")
    if prune:
        pruned = run_prune(target, every_version_days=days, weekly_days=weeks_days)
        out.print(f"Kept {plural(len(pruned.kept), 'version')}; deleted "
                  f"{plural(len(pruned.deleted), 'version')} and "
                  f"{plural(pruned.objects_deleted, 'unused object')}.")


@app.command()
def restore(
    source: Annotated[str, typer.Argument(help="The backup folder (dropbox:/path or local).")],
    lake: Annotated[Path, typer.Option("--lake", help="A new, empty folder for the lake.")],
    version: Annotated[str | None, typer.Option(
        help="Which backup, by part of its time stamp (default: the newest).")] = None,
) -> None:
    """Make a lake again from a backup, and its frames and views from it."""
    from rmg_lake.deliver.backup import restore as run

    restored = run(open_target(source), lake.expanduser().resolve(), version=version,
                   track=track)
    out.print(f"Restored {plural(len(restored.batches()), 'batch')} into {restored.root}; "
              "`rmg-lake verify` finds every file whole.")


@app.command()
def auth(
    app_key: Annotated[str | None, typer.Option(
        "--app-key", help="The Dropbox app's key (default: DROPBOX_APP_KEY).")] = None,
    status: Annotated[bool, typer.Option(
        "--status", help="Say which account and folder are set up; change nothing.")] = False,
) -> None:
    """Sign in to Dropbox (OAuth 2, PKCE, offline access); the token stays private to you."""
    from rmg_lake.sources.dropbox_client import load_credentials, save_credentials, sign_in

    if status:
        credentials, config = load_credentials(), load_config()
        out.print(f"Dropbox: app {credentials.app_key}, account "
                  f"{credentials.account_id or 'not recorded'}, credentials from "
                  f"{credentials.origin}")
        out.print(f"Source: {config.source if config and config.source else 'not set'}")
        return
    key = app_key or os.environ.get("DROPBOX_APP_KEY")
    if not key:
        raise LakeError("no app key", hint="pass --app-key KEY (the key of the study's "
                        "Dropbox app; it is not a secret)")

    def ask(address: str) -> str:
        out.print("1. Open this address, sign in and allow the app:")
        out.print(address, highlight=False)
        answer: str = typer.prompt("2. Paste the code Dropbox shows")
        return answer

    credentials = sign_in(key, ask)
    path = save_credentials(credentials)
    out.print(f"Signed in (account {credentials.account_id}); the token is kept in {path}, "
              "readable by you only.")

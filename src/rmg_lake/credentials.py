"""Dropbox credentials: OAuth 2 with PKCE and offline access, kept private to the user.

The refresh token lives in `<config dir>/rmg-lake/dropbox.json` (0600; the platform's
config dir, e.g. ~/.config on Linux), or comes from `DROPBOX_APP_KEY` and
`DROPBOX_REFRESH_TOKEN` for unattended runs. It is never printed, logged, written to the
lake or put in an error message.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import typer

from rmg_lake.errors import SourceError
from rmg_lake.files import write_atomic

__all__ = [
    "Credentials", "credentials_path", "load_credentials", "save_credentials", "sign_in",
]


@dataclass(frozen=True)
class Credentials:
    app_key: str
    refresh_token: str
    account_id: str | None = None
    origin: str = "environment"  # or the file they came from

    def __repr__(self) -> str:  # the token stays out of tracebacks and logs
        return f"Credentials(app_key={self.app_key!r}, origin={self.origin!r})"


def credentials_path() -> Path:
    return Path(typer.get_app_dir("rmg-lake")) / "dropbox.json"


def load_credentials() -> Credentials:
    """From the environment if set there, else from the file `rmg-lake auth` wrote."""
    app_key, token = os.environ.get("DROPBOX_APP_KEY"), os.environ.get("DROPBOX_REFRESH_TOKEN")
    if app_key and token:
        return Credentials(app_key, token)
    path = credentials_path()
    try:
        stored: dict[str, Any] = orjson.loads(path.read_bytes())
        return Credentials(stored["app_key"], stored["refresh_token"],
                           stored.get("account_id"), origin=str(path))
    except FileNotFoundError:
        pass
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        raise SourceError("unreadable Dropbox credentials", file=str(path),
                          hint="run `rmg-lake auth` again") from None
    raise SourceError("no Dropbox credentials", hint="run `rmg-lake auth`, or set "
                      "DROPBOX_APP_KEY and DROPBOX_REFRESH_TOKEN")


def save_credentials(credentials: Credentials) -> Path:
    path = credentials_path()
    write_atomic(path, orjson.dumps(
        {"app_key": credentials.app_key, "refresh_token": credentials.refresh_token,
         "account_id": credentials.account_id}, option=orjson.OPT_INDENT_2))
    return path


def sign_in(app_key: str, ask: Callable[[str], str]) -> Credentials:
    """The PKCE flow: `ask` shows the user the authorisation address and returns the code
    Dropbox gave them. Only the app key is needed: the app has no secret to keep."""
    import dropbox
    import requests

    from rmg_lake.sources.dropbox import http_session

    flow = dropbox.DropboxOAuth2FlowNoRedirect(app_key, token_access_type="offline",
                                               use_pkce=True)
    flow.requests_session = http_session(pool=1)
    code = ask(flow.start()).strip()
    try:
        result = flow.finish(code)
    except (requests.exceptions.HTTPError, dropbox.oauth.NotApprovedException):
        raise SourceError("Dropbox did not accept that code",
                          hint="run `rmg-lake auth` again and paste the newest code") from None
    except requests.exceptions.RequestException:
        raise SourceError("cannot reach Dropbox",
                          hint="check the internet connection, then run again") from None
    return Credentials(app_key, result.refresh_token, result.account_id)

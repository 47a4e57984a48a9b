"""How rmg-lake reaches Dropbox: the user's credentials (OAuth 2 with PKCE and offline
access, kept private to the user), and the HTTPS session, client and retries the SDK uses.

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

import dropbox
import orjson
import requests
import typer
from dropbox.exceptions import HttpError
from requests.adapters import HTTPAdapter
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from rmg_lake._internal.files import write_atomic
from rmg_lake.errors import SourceError, passing

__all__ = [
    "CA_CERTS_VARIABLE", "DROPPED", "Credentials", "Retry", "call", "client_from_env",
    "credentials_path", "http_session", "load_credentials", "save_credentials", "sign_in",
]

CA_CERTS_VARIABLE = "RMG_LAKE_DROPBOX_CA_CERTS"


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
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as err:
        if passing(err):
            raise
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
    flow = dropbox.DropboxOAuth2FlowNoRedirect(app_key, token_access_type="offline",
                                               use_pkce=True)
    flow.requests_session = http_session(pool=1)
    code = ask(flow.start()).strip()
    try:
        result = flow.finish(code)
    except (requests.exceptions.HTTPError, dropbox.oauth.NotApprovedException):
        raise SourceError("Dropbox did not accept that code",
                          hint="run `rmg-lake auth` again and paste the newest code") from None
    return Credentials(app_key, result.refresh_token, result.account_id)


class Retry(Exception):
    """A fetch or an upload worth trying again: the connection dropped, the body was cut,
    the bytes differ from what was sent."""


DROPPED = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout, HttpError)

def call(function: Any, *args: Any, attempts: int, **kwargs: Any) -> Any:
    """Call the SDK's `function`, trying again (up to `attempts` times in all) on a dropped
    connection, a cut-short body or wrong bytes (`Retry`)."""
    caller = retry(
        retry=retry_if_exception_type((Retry, requests.exceptions.ConnectionError,
                                       requests.exceptions.ChunkedEncodingError)),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.05, max=2),
    )(function)
    return caller(*args, **kwargs)


class _TrustOnly(HTTPAdapter):
    """Verifies servers against one CA bundle, whatever `REQUESTS_CA_BUNDLE` says."""

    def __init__(self, ca_certs: str, pool: int) -> None:
        super().__init__(pool_maxsize=pool)
        self.ca_certs = ca_certs

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        return super().send(request, stream=stream, timeout=timeout,
                            verify=self.ca_certs if verify else verify, cert=cert,
                            proxies=proxies)


def http_session(pool: int = 16) -> requests.Session:
    """HTTPS connections for the SDK, `pool` of them kept open for parallel downloads.

    A testing aid: `RMG_LAKE_DROPBOX_CA_CERTS` names the only CA bundle to trust, for a
    loopback Dropbox (with `DROPBOX_API_HOST` and `DROPBOX_API_CONTENT_HOST`, which the SDK
    reads).
    """
    ca_certs = os.environ.get(CA_CERTS_VARIABLE)
    if not ca_certs:
        session: requests.Session = dropbox.create_session(max_connections=pool)
        return session
    if not Path(ca_certs).is_file():
        raise SourceError("no such CA bundle", file=ca_certs,
                          hint=f"unset {CA_CERTS_VARIABLE}, or point it at a PEM file")
    session = requests.Session()
    session.mount("https://", _TrustOnly(ca_certs, pool))
    return session


def client_from_env(session: requests.Session | None = None) -> dropbox.Dropbox:
    """A client with the user's credentials (environment, else `rmg-lake auth`'s file)."""
    credentials = load_credentials()
    return dropbox.Dropbox(oauth2_refresh_token=credentials.refresh_token,
                           app_key=credentials.app_key, session=session or http_session(),
                           max_retries_on_error=4, max_retries_on_rate_limit=8, timeout=60)

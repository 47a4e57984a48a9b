"""A loopback fake of the Dropbox API v2 subset rmg-lake uses (issue 3), for the real SDK.

The official `dropbox` SDK talks to it unchanged, over HTTPS on 127.0.0.1 with a certificate
from a throwaway test CA (`trustme`). Two ways to point the SDK at it:

- in this process, `FakeDropbox.session()`: a `requests.Session` whose transport adapter sends
  `https://api.dropboxapi.com/...` to `https://127.0.0.1:<port>/...` and
  `https://content.dropboxapi.com/...` to `https://localhost:<port>/...` (same path and
  query), trusting only the test CA, and refuses every other host:

      with FakeDropbox() as fake:
          fake.put("/Apps/RMG Observer/a.csv", b"...")
          dbx = dropbox.Dropbox(oauth2_refresh_token="good-refresh", app_key="test-app",
                                session=fake.session())

- in a subprocess, `FakeDropbox.env()`: `DROPBOX_API_HOST=127.0.0.1:<port>`,
  `DROPBOX_API_CONTENT_HOST=localhost:<port>` (which the SDK reads at import), the app key,
  and `RMG_LAKE_DROPBOX_CA_CERTS` naming the test CA's bundle.

The API and content hosts differ by name only, so the fake checks that each route was sent to
the right host (`Host` header), as Dropbox does.

Wire format, as the SDK (dropbox_client.py `request_json_string`) expects it:

- RPC routes: JSON request body, JSON response (`Content-Type: application/json`, exactly).
- download-style routes: argument in the `Dropbox-API-Arg` header, file bytes as the body,
  the metadata in the `Dropbox-API-Result` header (ASCII JSON). `Range` is honoured (206).
- upload-style routes: argument in `Dropbox-API-Arg`, bytes as the body, JSON response body.
- route errors: HTTP 409 `{"error_summary": "path/not_found/...", "error": {".tag": ...}}`;
  401 `{"error": {".tag": "invalid_access_token" | "expired_access_token"}}`; 400 plain text
  for malformed calls; 429 JSON `{"error": {"reason": ..., "retry_after": n}}` plus a
  `Retry-After` header; 500 plain text.

Faults (`Faults`, `FakeDropbox.inject`) are injected per HTTP request, seeded and counted in
`FakeDropbox.injected`; every request's URL path is appended to `FakeDropbox.requests`, and
with the Dropbox path it names to `FakeDropbox.calls`. A damaged upload is refused with
`content_hash_mismatch` when the call sent a `content_hash`, as Dropbox does
(`FakeDropbox.check_hashes`); the refusals are counted in `FakeDropbox.hash_mismatches`.
`FakeDropbox.peak_in_flight` is the most requests of each route served at once;
`FakeDropbox.gather` holds a route's requests until so many are in flight together, and
`FakeDropbox.hold` holds them after so many were served, until `release()`: counts and
orderings a test can assert, however loaded the machine.
`FakeDropbox.go_offline()` drops every request (and every long-poll held) until
`go_online()`: the link gone for a while.

`files/list_folder/longpoll` is served as on `notify.dropboxapi.com` (no authorisation, as
the SDK sends it): it is held until something changes under the cursor's folder (then
`changes: true`), the `timeout` passes, the link goes or the fake stops.
Only the Python standard library and `requests` are used; the content hash is computed here
independently of the SDK's helper so the tests can check one against the other.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import random
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
import trustme
from requests.adapters import HTTPAdapter

__all__ = [
    "ALL_FAULT_KINDS",
    "DEFAULT_FAULT_KINDS",
    "FakeDropbox",
    "FaultKind",
    "Faults",
    "dropbox_content_hash",
]

BLOCK_SIZE = 4 * 1024 * 1024

FaultKind = Literal["drop", "drop_after", "429", "500", "truncate", "corrupt"]
DEFAULT_FAULT_KINDS: tuple[FaultKind, ...] = ("drop", "429", "500", "truncate", "corrupt")
ALL_FAULT_KINDS: tuple[FaultKind, ...] = (
    "drop", "drop_after", "429", "500", "truncate", "corrupt",
)
# Kinds decided before the route runs (nothing changes on the server) ...
_BEFORE: frozenset[str] = frozenset({"drop", "429", "500"})
# ... and kinds that need a body to act on: a successful download's, or an upload's.
_BODY: frozenset[str] = frozenset({"truncate", "corrupt"})

API_HOST = "api.dropboxapi.com"
CONTENT_HOST = "content.dropboxapi.com"
NOTIFY_HOST = "notify.dropboxapi.com"
# Where each host is served on loopback: one port, told apart by the name it was called by.
LOOPBACK = {API_HOST: "127.0.0.1", CONTENT_HOST: "localhost", NOTIFY_HOST: "127.0.0.1"}

_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
_CURSOR_PREFIX = "AAFake"

# Route → (host it must be sent to, style).
_ROUTES: dict[str, tuple[str, str]] = {
    "/oauth2/token": (API_HOST, "oauth"),
    "/2/files/list_folder": (API_HOST, "rpc"),
    "/2/files/list_folder/continue": (API_HOST, "rpc"),
    "/2/files/list_folder/get_latest_cursor": (API_HOST, "rpc"),
    "/2/files/list_folder/longpoll": (NOTIFY_HOST, "notify"),
    "/2/files/get_metadata": (API_HOST, "rpc"),
    "/2/files/delete_v2": (API_HOST, "rpc"),
    "/2/files/download": (CONTENT_HOST, "download"),
    "/2/files/upload": (CONTENT_HOST, "upload"),
    "/2/files/upload_session/start": (CONTENT_HOST, "upload"),
    "/2/files/upload_session/append_v2": (CONTENT_HOST, "upload"),
    "/2/files/upload_session/finish": (CONTENT_HOST, "upload"),
}
_DOWNLOAD_ROUTES = frozenset(r for r, (_, style) in _ROUTES.items() if style == "download")
_UPLOAD_ROUTES = frozenset(r for r, (_, style) in _ROUTES.items() if style == "upload")


def dropbox_content_hash(data: bytes) -> str:
    """Dropbox's `content_hash`: SHA-256 of the concatenated SHA-256 digests of 4 MiB blocks."""
    overall = hashlib.sha256()
    for start in range(0, len(data), BLOCK_SIZE):
        overall.update(hashlib.sha256(data[start:start + BLOCK_SIZE]).digest())
    return overall.hexdigest()


@dataclass(frozen=True)
class Faults:
    """Random faults: each request fails with probability `rate`, in one of `kinds`.

    - ``drop``: the connection is closed without a response (the route does not run).
    - ``drop_after``: the route runs (an upload is committed), then the connection is closed
      without a response. Not in the default kinds.
    - ``429``: `Retry-After: retry_after` and the JSON `too_many_requests` error.
    - ``500``: a plain-text internal server error.
    - ``truncate``: on a download, the headers promise the full `Content-Length`, half the
      body is sent, then the connection is closed. On an upload (files/upload and the
      upload_session routes), only the first half of the body arrives, taken as the whole.
    - ``corrupt``: on a download, one byte of the body is flipped, headers (and the
      `content_hash` in `Dropbox-API-Result`) are those of the true content. On an upload,
      one byte of the body is flipped on the way in.

    A damaged upload is refused (409 `content_hash_mismatch`, nothing changes) when the call
    sent a `content_hash` and `FakeDropbox.check_hashes` is on, as Dropbox does; else the
    damaged bytes are what is stored (or appended to the session).

    `latency_s` is added to every request (faulted or not). `routes`, when given, limits the
    faults (not the latency) to those URL paths, e.g. ``{"/2/files/download"}``; by default
    every route, `/oauth2/token` included, can fail. The choice of faults is made under a lock
    from one `random.Random(seed)`, so a sequential client sees the same faults every run.
    """

    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = DEFAULT_FAULT_KINDS
    seed: int = 0
    latency_s: float = 0.0
    retry_after: int = 0
    routes: frozenset[str] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(ALL_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {ALL_FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if self.latency_s < 0 or self.retry_after < 0:
            raise ValueError("latency_s and retry_after must not be negative")
        if self.routes is not None:
            object.__setattr__(self, "routes", frozenset(self.routes))


@dataclass
class _Injection:
    kind: FaultKind
    remaining: int
    route: str | None
    path: str | None = None  # lower-cased: only requests naming this Dropbox path


@dataclass
class _Gate:
    """Requests of one route held: until `gather` of them are in flight at once and
    `linger` seconds more have passed (then the gate is open for good), or until `deadline`;
    or, with `after`, every one after the first `after` served, until released."""

    gather: int | None = None
    deadline: float = 0.0
    linger: float = 0.0
    opens: float | None = None  # when the gathering is done
    after: int | None = None
    held: int = 0


@dataclass(frozen=True)
class _File:
    id: str
    path_display: str
    data: bytes
    rev: str
    content_hash: str
    client_modified: datetime
    server_modified: datetime


@dataclass(frozen=True)
class _Folder:
    id: str
    path_display: str


_Node = _File | _Folder


@dataclass(frozen=True)
class _Cursor:
    root: str                   # path_lower of the listed folder, "" for the whole Dropbox
    recursive: bool
    generation: int             # cursors of an older generation answer `reset`
    seq: int                    # the journal position the listing reflects
    snapshot: tuple[dict[str, Any], ...] | None   # the initial listing, while being paged
    offset: int = 0
    limit: int | None = None


@dataclass
class _UploadSession:
    data: bytearray = field(default_factory=bytearray)
    closed: bool = False


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    is_file_body: bool = False   # a download body: truncate/corrupt may act on it


class _ApiError(Exception):
    """A route error, sent as HTTP 409 with the stone-encoded error union."""

    def __init__(self, summary: str, error: dict[str, Any]) -> None:
        super().__init__(summary)
        self.summary = summary
        self.error = error


class _BadRequest(Exception):
    """A malformed call, sent as HTTP 400 plain text (the SDK raises BadInputError)."""


class _Dropped(Exception):
    """The link went while a request was held: the connection is closed unanswered."""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_TIMESTAMP)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _json_reply(status: int, obj: object, headers: dict[str, str] | None = None) -> _Reply:
    # The SDK compares the content type with "application/json" exactly: no charset.
    return _Reply(status, json.dumps(obj).encode(),
                  {"Content-Type": "application/json", **(headers or {})})


def _text_reply(status: int, text: str) -> _Reply:
    return _Reply(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


def _lookup(tag: str) -> dict[str, Any]:
    return {".tag": tag}


def _tag(value: Any, default: str) -> str:
    """The tag of a stone union value given either as "tag" or {".tag": "tag", ...}."""
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get(".tag"), str):
        return str(value[".tag"])
    raise _BadRequest(f"expected a union tag, got {value!r}")


def _named_path(route: str, handler: BaseHTTPRequestHandler, body: bytes) -> str | None:
    """The Dropbox path a request names (lower-cased; an upload session's commit path), or
    None (no path, or a malformed call: the route says what is wrong with it)."""
    style = _ROUTES.get(route, ("", ""))[1]
    if style in ("download", "upload"):
        text = handler.headers.get("Dropbox-API-Arg") or ""
    elif style == "rpc":
        text = body.decode("utf-8", "replace")
    else:
        return None
    try:
        arg = json.loads(text)
    except ValueError:
        return None
    if isinstance(arg, dict) and isinstance(arg.get("commit"), dict):
        arg = arg["commit"]
    path = arg.get("path") if isinstance(arg, dict) else None
    return path.lower() if isinstance(path, str) else None


def _parent(lower: str) -> str:
    return lower.rsplit("/", 1)[0]


def _within(lower: str, root: str, recursive: bool) -> bool:
    if not recursive:
        return lower != root and _parent(lower) == root
    if not root:
        return lower != ""
    return lower == root or lower.startswith(root + "/")


class _LoopbackAdapter(HTTPAdapter):
    """Sends `https://<dropbox host>/<path>?<query>` to the fake on loopback, over HTTPS
    checked against the fake's test CA only."""

    def __init__(self, port: int, ca_path: str, pool_maxsize: int) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_maxsize)
        self._port = port
        self._ca_path = ca_path

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.scheme != "https" or parts.hostname not in LOOPBACK:
            raise requests.exceptions.ConnectionError(
                f"FakeDropbox session refuses {parts.scheme}://{parts.netloc}: "
                "only the Dropbox API hosts are routed to the fake", request=request)
        netloc = f"{LOOPBACK[parts.hostname]}:{self._port}"
        request.headers["Host"] = netloc
        request.url = urlunsplit(("https", netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, stream=stream, timeout=timeout, verify=self._ca_path,
                            cert=cert, proxies={})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeDropbox, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.tls = tls
        self._conns: dict[Any, threading.Thread] = {}
        self._conns_lock = threading.Lock()

    def get_request(self) -> tuple[Any, Any]:
        """Wrap in TLS here; the handshake runs in the connection's own thread."""
        sock, address = super().get_request()
        return self.tls.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), address

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address),
                                  name="fake-dropbox-connection", daemon=True)
        with self._conns_lock:
            self._conns[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.fake._record_error(traceback.format_exc())

    def close_connections(self, timeout: float) -> None:
        with self._conns_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in conns:
            thread.join(timeout)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as the SDK's connection pool expects
    server_version = "FakeDropbox/1"
    timeout = 60                    # an idle keep-alive connection is closed after this
    disable_nagle_algorithm = True  # else each reply waits ~40 ms for a delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.request.do_handshake()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.fake._serve(self, body)

    def do_GET(self) -> None:
        self.send_reply(_text_reply(405, "FakeDropbox: the Dropbox API only takes POST"))

    def send_reply(self, reply: _Reply, *, truncate: bool = False) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if truncate:
            self.wfile.write(reply.body[:len(reply.body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(reply.body)

    def drop(self) -> None:
        """Close the connection without sending anything."""
        self.close_connection = True


class FakeDropbox:
    """A Dropbox API v2 server on 127.0.0.1 for the real SDK; a context manager.

    Construct, then `with fake:` (or `start()`/`stop()`). State is in memory and every public
    method is thread-safe; the server answers each connection in its own thread.
    """

    def __init__(self, *, app_key: str = "test-app", refresh_token: str = "good-refresh",
                 page_size: int = 100, faults: Faults | None = None,
                 token_ttl_s: int = 4 * 3600) -> None:
        self.app_key = app_key
        self.refresh_token = refresh_token
        self.page_size = page_size
        # The SDK refreshes whenever a token has < 300 s left: keep the TTL well above that.
        self.token_ttl_s = token_ttl_s
        self.on_list_page: Callable[[int], None] | None = None
        self.requests: list[str] = []
        # (URL path, the Dropbox path the request names, lower-cased, or None) of each request
        self.calls: list[tuple[str, str | None]] = []
        self.check_hashes = True  # a sent content_hash is checked, as Dropbox does
        self.hash_mismatches = 0  # uploads refused for it
        self.peak_in_flight: Counter[str] = Counter()  # route → most served at once
        self.injected: Counter[str] = Counter()
        self.errors: list[str] = []
        self.tokens_issued = 0
        self._codes: dict[str, str] = {}  # authorisation code → PKCE challenge
        self.list_pages_served = 0
        self.offline = False  # the link is gone: every request is dropped
        self.dropped_offline = 0  # requests dropped for it

        self._lock = threading.RLock()
        self._changes = threading.Condition(self._lock)  # a change, the link, a stop
        self._flight = threading.Condition(self._lock)  # a request comes, goes or is let on
        self._in_flight: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        self._gates: dict[str, _Gate] = {}
        self._stopping = False
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._queued: list[_Injection] = []
        self._ids = itertools.count(1)
        self._nodes: dict[str, _Node] = {}
        self._by_id: dict[str, str] = {}
        self._revisions: dict[str, _File] = {}
        self._last_display: dict[str, str] = {}
        self._journal: list[tuple[int, str]] = []
        self._seq = 0
        self._generation = 0
        self._cursors: dict[str, _Cursor] = {}
        self._tokens: dict[str, float] = {}
        self._upload_sessions: dict[str, _UploadSession] = {}
        self._sessions: list[requests.Session] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # The test CA, and its bundle on disk for clients (removed with this object).
        self._ca = trustme.CA()
        with tempfile.NamedTemporaryFile("wb", prefix="fake-dropbox-ca-", suffix=".pem",
                                         delete=False) as bundle:
            bundle.write(self._ca.cert_pem.bytes())
        self.ca_path = bundle.name
        weakref.finalize(self, os.unlink, bundle.name)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeDropbox:
        if self._server is not None:
            raise RuntimeError("FakeDropbox already started")
        self._stopping = False
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
        self._server = _Server(self, tls)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.01},
                                        name="fake-dropbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the sessions made by `session()`, stop the server, join its threads."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
            self._stopping = True  # a held long-poll answers now, a held request goes on
            self._changes.notify_all()
            self._flight.notify_all()
        for session in sessions:
            session.close()
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections(timeout=5.0)
        server.server_close()
        thread.join(5.0)
        self._server = self._thread = None

    def __enter__(self) -> FakeDropbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeDropbox not started")
        return int(self._server.server_address[1])

    def env(self) -> dict[str, str]:
        """Environment for a subprocess whose SDK and rmg-lake should talk to this fake."""
        return {"DROPBOX_API_HOST": f"{LOOPBACK[API_HOST]}:{self.port}",
                "DROPBOX_API_CONTENT_HOST": f"{LOOPBACK[CONTENT_HOST]}:{self.port}",
                "DROPBOX_API_NOTIFY_HOST": f"{LOOPBACK[NOTIFY_HOST]}:{self.port}",
                "DROPBOX_APP_KEY": self.app_key,
                "RMG_LAKE_DROPBOX_CA_CERTS": self.ca_path}

    def session(self, pool_maxsize: int = 16) -> requests.Session:
        """A `requests.Session` that routes the Dropbox API hosts to this fake (closed on stop).

        Anything else raises ConnectionError, so a test cannot reach the network. Proxies and
        CA bundles from the environment are ignored.
        """
        adapter = _LoopbackAdapter(self.port, self.ca_path, pool_maxsize)
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        with self._lock:
            self._sessions.append(session)
        return session

    def client(self, *, sdk_hashes: bool = True, **kwargs: Any) -> Any:
        """A `dropbox.Dropbox` with the good refresh token, app key and a fresh `session()`.

        `sdk_hashes=False`: the SDK adds no `content_hash` of its own to uploads (newer
        versions add one unless told not to), so only the hashes its caller sends are sent.
        """
        import inspect

        import dropbox

        if not sdk_hashes and "auto_content_hash" in inspect.signature(dropbox.Dropbox).parameters:
            kwargs["auto_content_hash"] = False
        kwargs.setdefault("oauth2_refresh_token", self.refresh_token)
        kwargs.setdefault("app_key", self.app_key)
        if kwargs.get("session") is None:
            kwargs["session"] = self.session()
        return dropbox.Dropbox(**kwargs)

    # ---------------------------------------------------------------- faults

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        with self._lock:
            self._faults = faults or Faults()
            self._rng = random.Random(self._faults.seed)

    def inject(self, kind: FaultKind, *, times: int = 1, route: str | None = None,
               path: str | None = None) -> None:
        """Queue `times` faults of `kind` for the next matching requests (before `faults`).

        `route` is a URL path such as "/2/files/download" (None: any route the kind applies
        to); `path`, a Dropbox path the request must name (any case; an upload session's
        start and appends name none). A truncate/corrupt fault waits for a successful,
        non-empty download body, or a non-empty upload body.
        """
        if kind not in ALL_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        if route is not None and route not in _ROUTES:
            raise ValueError(f"unknown route {route!r}; use one of {sorted(_ROUTES)}")
        with self._lock:
            self._queued.append(_Injection(kind, times, route,
                                           None if path is None else path.lower()))

    def _choose_fault(self, route: str, path: str | None,
                      body: bytes) -> tuple[FaultKind | None, _Injection | None]:
        damageable = route in _DOWNLOAD_ROUTES or (route in _UPLOAD_ROUTES and bool(body))
        with self._lock:
            for injection in self._queued:
                if injection.remaining > 0 and injection.route in (None, route) and (
                        injection.path in (None, path)) and (
                        injection.kind not in _BODY or damageable):
                    return injection.kind, injection
            faults = self._faults
            if faults.rate <= 0 or (faults.routes is not None and route not in faults.routes):
                return None, None
            if self._rng.random() >= faults.rate:
                return None, None
            kinds = [k for k in faults.kinds if k not in _BODY or damageable]
            return (self._rng.choice(kinds), None) if kinds else (None, None)

    def _count_fault(self, kind: FaultKind, injection: _Injection | None) -> bool:
        """Count an injected fault; False if its queued injection was used up meanwhile."""
        with self._lock:
            if injection is not None:
                if injection.remaining <= 0:
                    return False
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._queued.remove(injection)
            self.injected[kind] += 1
            return True

    # ---------------------------------------------------------------- tokens, cursors

    def expire_tokens(self) -> None:
        """Every access token issued so far now answers 401 `expired_access_token`."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def expire_cursors(self) -> None:
        """Every list_folder cursor issued so far now answers 409 `reset`."""
        with self._lock:
            self._generation += 1
            self._changes.notify_all()

    # ---------------------------------------------------------------- the link

    def go_offline(self) -> None:
        """The link is gone: every request from now on, and every long-poll held, is
        dropped unanswered (files may still be `put`: they arrive at Dropbox meanwhile)."""
        with self._lock:
            self.offline = True
            self._changes.notify_all()

    def go_online(self) -> None:
        """The link is back."""
        with self._lock:
            self.offline = False

    # ---------------------------------------------------------------- holding requests

    def gather(self, route: str, n: int, *, timeout_s: float = 10.0,
               linger_s: float = 0.0) -> None:
        """Hold each request of `route` until `n` of them are in flight at once, and
        `linger_s` more (a request beyond `n` arriving meanwhile is held too), then let
        them and every later one through; after `timeout_s` without, let all through.
        `peak_in_flight[route]` then tells how many there were."""
        self._gate(route, _Gate(gather=n, deadline=time.monotonic() + timeout_s,
                                linger=linger_s))

    def hold(self, route: str, *, after: int) -> None:
        """Serve `after` more requests of `route`, then hold every later one until
        `release()` (or the fake stops): a client stopped at a known point."""
        with self._lock:
            self._gate(route, _Gate(after=self._served[route] + after))

    def held(self, route: str) -> int:
        """How many requests of `route` are held just now."""
        with self._lock:
            gate = self._gates.get(route)
            return gate.held if gate is not None else 0

    def release(self) -> None:
        """Let every held request through, and hold no more."""
        with self._lock:
            self._gates.clear()
            self._flight.notify_all()

    def _gate(self, route: str, gate: _Gate) -> None:
        if route not in _ROUTES:
            raise ValueError(f"unknown route {route!r}; use one of {sorted(_ROUTES)}")
        with self._lock:
            self._gates[route] = gate

    def _arrive(self, route: str) -> None:
        """Count a request of `route` in flight; wait while its route's gate holds it."""
        with self._lock:
            self._in_flight[route] += 1
            self.peak_in_flight[route] = max(self.peak_in_flight[route],
                                             self._in_flight[route])
            self._flight.notify_all()
            gate = self._gates.get(route)
            if gate is not None:
                gate.held += 1
                while self._gates.get(route) is gate and not self._stopping:
                    if gate.gather is None:
                        if self._served[route] < (gate.after or 0):
                            break
                        self._flight.wait()
                        continue
                    now = time.monotonic()
                    if gate.opens is None and self._in_flight[route] >= gate.gather:
                        gate.opens = now + gate.linger
                    until = gate.deadline if gate.opens is None else gate.opens
                    if now >= until:
                        del self._gates[route]  # open for good
                        self._flight.notify_all()
                        break
                    self._flight.wait(until - now)
                gate.held -= 1
            self._served[route] += 1

    def _leave(self, route: str) -> None:
        with self._lock:
            self._in_flight[route] -= 1
            self._flight.notify_all()

    # ---------------------------------------------------------------- the tree

    def put(self, path: str, data: bytes, modified: datetime | None = None) -> dict[str, Any]:
        """Create or replace a file (a new rev each time); missing parent folders are made.

        `modified` (timezone-aware) sets both client_modified and server_modified; by default
        both are now. Returns the file's metadata as the API would send it.
        """
        if modified is not None and modified.tzinfo is None:
            raise ValueError("modified must be timezone-aware")
        with self._lock:
            try:
                node = self._write_file(self._checked_path(path), bytes(data), modified, modified)
            except _ApiError as e:
                raise ValueError(f"cannot put {path!r}: {e.summary}") from None
            return self._metadata(node, tagged=True)

    def delete(self, path: str) -> None:
        """Delete a file, or a folder and everything under it (one `deleted` change)."""
        with self._lock:
            lower = self._checked_path(path).lower()
            if lower not in self._nodes:
                raise KeyError(path)
            self._remove(lower)
            self._record(lower)

    def move(self, src: str, dst: str) -> None:
        """Move a file or folder (ids kept, new revs): `deleted` at src, new entries at dst."""
        with self._lock:
            src_lower = self._checked_path(src).lower()
            dst_display = self._checked_path(dst)
            dst_lower = dst_display.lower()
            if src_lower not in self._nodes:
                raise KeyError(src)
            if dst_lower in self._nodes or dst_lower.startswith(src_lower + "/"):
                raise ValueError(f"cannot move {src!r} to {dst!r}")
            try:
                self._make_parents(dst_display)
            except _ApiError as e:
                raise ValueError(f"cannot move to {dst!r}: {e.summary}") from None
            moved = [self._nodes[k] for k in sorted(self._nodes)
                     if k == src_lower or k.startswith(src_lower + "/")]
            depth = src_lower.count("/")
            self._remove(src_lower)
            self._record(src_lower)
            for node in moved:
                display = "/".join([dst_display, *node.path_display.split("/")[depth + 1:]])
                if isinstance(node, _File):
                    node = replace(node, path_display=display, rev=self._new_rev(),
                                   server_modified=_now())
                    self._revisions[node.rev] = node
                else:
                    node = replace(node, path_display=display)
                self._set(node)

    def read(self, path: str) -> bytes:
        """The current content of a file (by path or id)."""
        with self._lock:
            node = self._resolve(path)
            if not isinstance(node, _File):
                raise KeyError(path)
            return node.data

    def metadata(self, path: str) -> dict[str, Any]:
        """The current metadata of a file or folder, as `get_metadata` would send it."""
        with self._lock:
            node = self._resolve(path)
            if node is None:
                raise KeyError(path)
            return self._metadata(node, tagged=True)

    def files(self) -> dict[str, bytes]:
        """Every file: path_display → content."""
        with self._lock:
            return {n.path_display: n.data for n in self._nodes.values() if isinstance(n, _File)}

    def _checked_path(self, path: str) -> str:
        if not path.startswith("/") or path.endswith("/") or "//" in path:
            raise ValueError(f"not an absolute Dropbox path: {path!r}")
        if any(part in (".", "..") for part in path.split("/")[1:]):
            raise ValueError(f"'.' and '..' are not names: {path!r}")
        return path

    def _new_id(self) -> str:
        return f"id:fake{next(self._ids):017d}"

    def _new_rev(self) -> str:
        return f"{next(self._ids):012x}"

    def _record(self, lower: str) -> None:
        self._seq += 1
        self._journal.append((self._seq, lower))
        self._changes.notify_all()  # (called with the lock held)

    def _set(self, node: _Node) -> None:
        lower = node.path_display.lower()
        self._nodes[lower] = node
        self._by_id[node.id] = lower
        self._last_display[lower] = node.path_display
        self._record(lower)

    def _remove(self, lower: str) -> None:
        for key in [k for k in self._nodes if k == lower or k.startswith(lower + "/")]:
            node = self._nodes.pop(key)
            self._by_id.pop(node.id, None)

    def _make_parents(self, display: str) -> None:
        parts = display.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            folder = "/" + "/".join(parts[:i])
            existing = self._nodes.get(folder.lower())
            if isinstance(existing, _File):
                raise _ApiError("path/conflict/file_ancestor/",
                                {".tag": "conflict", "conflict": _lookup("file_ancestor")})
            if existing is None:
                self._set(_Folder(self._new_id(), folder))

    def _write_file(self, display: str, data: bytes, client_modified: datetime | None,
                    server_modified: datetime | None) -> _File:
        lower = display.lower()
        existing = self._nodes.get(lower)
        if isinstance(existing, _Folder):
            raise _ApiError("path/conflict/folder/",
                            {".tag": "conflict", "conflict": _lookup("folder")})
        self._make_parents(display)
        now = _now()
        node = _File(
            id=existing.id if existing is not None else self._new_id(),
            path_display=existing.path_display if existing is not None else display,
            data=data, rev=self._new_rev(), content_hash=dropbox_content_hash(data),
            client_modified=client_modified or now, server_modified=server_modified or now)
        self._revisions[node.rev] = node
        self._set(node)
        return node

    def _resolve(self, path: str) -> _Node | None:
        if path.startswith("id:"):
            lower = self._by_id.get(path)
            return None if lower is None else self._nodes.get(lower)
        if path.startswith("rev:"):
            return self._revisions.get(path[4:])
        return self._nodes.get(path.lower())

    def _metadata(self, node: _Node, *, tagged: bool) -> dict[str, Any]:
        name = node.path_display.rsplit("/", 1)[1]
        md: dict[str, Any] = {
            "name": name, "path_lower": node.path_display.lower(),
            "path_display": node.path_display, "id": node.id,
        }
        if isinstance(node, _File):
            md.update({
                "client_modified": _ts(node.client_modified),
                "server_modified": _ts(node.server_modified),
                "rev": node.rev, "size": len(node.data), "is_downloadable": True,
                "content_hash": node.content_hash,
            })
            return {".tag": "file", **md} if tagged else md
        return {".tag": "folder", **md}

    def _deleted_metadata(self, lower: str) -> dict[str, Any]:
        display = self._last_display.get(lower, lower)
        return {".tag": "deleted", "name": display.rsplit("/", 1)[1],
                "path_lower": lower, "path_display": display}

    # ---------------------------------------------------------------- serving

    def _record_error(self, text: str) -> None:
        if any(name in text for name in ("BrokenPipeError", "ConnectionResetError",
                                         "ConnectionAbortedError", "SSLEOFError")):
            return  # the client went away first: normal with drops and truncation
        with self._lock:
            self.errors.append(text)

    def _serve(self, handler: _Handler, body: bytes) -> None:
        url = urlsplit(handler.path)
        route = url.path
        path = _named_path(route, handler, body)
        with self._lock:
            self.requests.append(route)
            self.calls.append((route, path))
            request_id = f"fake{len(self.requests):08d}"
            latency = self._faults.latency_s
            if self.offline:
                self.dropped_offline += 1
                handler.drop()
                return
        self._arrive(route)
        try:
            if latency:
                time.sleep(latency)
            self._answer(handler, route, url.query, path, body, request_id)
        finally:
            self._leave(route)

    def _answer(self, handler: _Handler, route: str, query: str, path: str | None,
                body: bytes, request_id: str) -> None:
        kind, injection = self._choose_fault(route, path, body) if route in _ROUTES \
            else (None, None)
        if kind in _BEFORE and kind is not None and self._count_fault(kind, injection):
            if kind == "drop":
                handler.drop()
                return
            if kind == "429":
                retry = self._faults.retry_after
                reply = _json_reply(429, {
                    "error_summary": "too_many_requests/...",
                    "error": {"reason": _lookup("too_many_requests"), "retry_after": retry},
                }, {"Retry-After": str(retry)})
            else:
                reply = _text_reply(500, "FakeDropbox: injected internal server error")
            reply.headers["X-Dropbox-Request-Id"] = request_id
            handler.send_reply(reply)
            return
        if (kind in _BODY and kind is not None and route in _UPLOAD_ROUTES and body
                and self._count_fault(kind, injection)):
            body = self._damaged(body, kind)  # on the way in

        try:
            reply = self._dispatch(route, query, handler, body)
        except _Dropped:
            handler.drop()
            return
        except _ApiError as e:
            reply = _json_reply(409, {"error_summary": e.summary, "error": e.error})
        except _BadRequest as e:
            reply = _text_reply(400, f'Error in call to API function "{route[3:]}": {e}')
        reply.headers["X-Dropbox-Request-Id"] = request_id

        truncate = False
        if kind == "drop_after" and self._count_fault(kind, injection):
            handler.drop()
            return
        if (kind in _BODY and kind is not None and reply.is_file_body and reply.body
                and 200 <= reply.status < 300 and self._count_fault(kind, injection)):
            if kind == "truncate":
                truncate = True
            else:
                reply.body = self._damaged(reply.body, kind)
        handler.send_reply(reply, truncate=truncate)

    def _damaged(self, data: bytes, kind: FaultKind) -> bytes:
        """`data` with one byte flipped (corrupt), or its first half only (truncate)."""
        if kind == "truncate":
            return data[:len(data) // 2]
        with self._lock:
            where = self._rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[where] ^= 0xFF
        return bytes(flipped)

    def _dispatch(self, route: str, query: str, handler: _Handler, body: bytes) -> _Reply:
        if route not in _ROUTES:
            raise _BadRequest(f"Unknown API function: {route!r}")
        host, style = _ROUTES[route]
        sent_to = (handler.headers.get("Host") or "").split(":")[0]
        if sent_to != LOOPBACK[host]:
            raise _BadRequest(f"this route must be called on {host}, not {sent_to}")
        if style == "oauth":
            return self._oauth_token(body, query)
        if style == "notify":  # no authorisation: the cursor is the credential
            return self._longpoll(self._parse_arg(body.decode("utf-8", "replace"),
                                                  "request body"))

        auth = self._check_auth(handler.headers.get("Authorization"))
        if auth is not None:
            return auth
        if style == "rpc":
            if (handler.headers.get("Content-Type") or "").split(";")[0] != "application/json":
                raise _BadRequest("Bad HTTP \"Content-Type\" header: expected application/json")
            arg = self._parse_arg(body.decode("utf-8", "replace"), "request body")
            payload = b""
        else:
            header = handler.headers.get("Dropbox-API-Arg")
            if header is None:
                raise _BadRequest('Must provide HTTP header "Dropbox-API-Arg"')
            arg = self._parse_arg(header, 'HTTP header "Dropbox-API-Arg"')
            payload = body

        if route == "/2/files/list_folder":
            return self._list_folder(arg)
        if route == "/2/files/list_folder/continue":
            return self._list_folder_continue(arg)
        if route == "/2/files/list_folder/get_latest_cursor":
            return self._latest_cursor(arg)
        if route == "/2/files/get_metadata":
            return self._get_metadata(arg)
        if route == "/2/files/delete_v2":
            return self._delete_v2(arg)
        if route == "/2/files/download":
            return self._download(arg, handler.headers.get("Range"))
        if route == "/2/files/upload":
            return self._upload(arg, payload)
        if route == "/2/files/upload_session/start":
            return self._session_start(arg, payload)
        if route == "/2/files/upload_session/append_v2":
            return self._session_append(arg, payload)
        return self._session_finish(arg, payload)

    @staticmethod
    def _parse_arg(text: str, where: str) -> dict[str, Any]:
        try:
            arg = json.loads(text)
        except ValueError:
            raise _BadRequest(f"{where}: could not decode input as JSON") from None
        if not isinstance(arg, dict):
            raise _BadRequest(f"{where}: expected an object")
        return arg

    def grant_code(self, code: str, code_challenge: str) -> None:
        """Register the code the user would paste after approving the app in a browser,
        bound to the PKCE challenge of the authorisation URL the app printed."""
        with self._lock:
            self._codes[code] = code_challenge

    def _authorization_code(self, form: dict[str, str]) -> _Reply:
        with self._lock:
            challenge = self._codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge is None or form.get("client_id") != self.app_key or expected != challenge:
            return _json_reply(400, {"error": "invalid_grant",
                                     "error_description": "code doesn't exist or has expired"})
        return _json_reply(200, {"access_token": self._issue_token(), "token_type": "bearer",
                                 "expires_in": self.token_ttl_s,
                                 "refresh_token": self.refresh_token,
                                 "account_id": "dbid:fake-account", "uid": "12345"})

    def _oauth_token(self, body: bytes, query: str) -> _Reply:
        form = {k: v[-1] for k, v in parse_qs(query).items()}
        form.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        if form.get("grant_type") == "authorization_code":
            return self._authorization_code(form)
        if form.get("grant_type") != "refresh_token":
            return _json_reply(400, {"error": "unsupported_grant_type",
                                     "error_description": "only refresh_token is faked"})
        if form.get("client_id") != self.app_key:
            return _json_reply(400, {"error": "invalid_client",
                                     "error_description": "Invalid client_id or client_secret"})
        if form.get("refresh_token") != self.refresh_token:
            return _json_reply(400, {"error": "invalid_grant",
                                     "error_description": "refresh token is invalid or revoked"})
        return _json_reply(200, {"access_token": self._issue_token(), "token_type": "bearer",
                                 "expires_in": self.token_ttl_s})

    def _issue_token(self) -> str:
        with self._lock:
            self.tokens_issued += 1
            token = f"fake-access-{self.tokens_issued}-{secrets.token_hex(8)}"
            self._tokens[token] = time.monotonic() + self.token_ttl_s
        return token

    def _check_auth(self, header: str | None) -> _Reply | None:
        if header is None:
            raise _BadRequest('Must provide HTTP header "Authorization" or URL parameter '
                              '"authorization".')
        scheme, _, token = header.partition(" ")
        with self._lock:
            expires = self._tokens.get(token) if scheme == "Bearer" else None
        if expires is None:
            tag = "invalid_access_token"
        elif expires <= time.monotonic():
            tag = "expired_access_token"
        else:
            return None
        return _json_reply(401, {"error_summary": f"{tag}/...", "error": _lookup(tag)})

    # list_folder ---------------------------------------------------------------

    def _listing_root(self, path: str) -> str:
        if path == "":
            return ""
        if path.startswith("id:"):
            node = self._resolve(path)
        elif not path.startswith("/") or path.endswith("/") or "//" in path:
            raise _ApiError("path/malformed_path/",
                            {".tag": "path", "path": _lookup("malformed_path")})
        else:
            node = self._nodes.get(path.lower())
        if node is None:
            raise _ApiError("path/not_found/", {".tag": "path", "path": _lookup("not_found")})
        if isinstance(node, _File):
            raise _ApiError("path/not_folder/",
                            {".tag": "path", "path": _lookup("not_folder")})
        return node.path_display.lower()

    def _list_folder(self, arg: dict[str, Any]) -> _Reply:
        path = arg.get("path", "")
        if not isinstance(path, str):
            raise _BadRequest("path: expected a string")
        with self._lock:
            root = self._listing_root(path)
            recursive = bool(arg.get("recursive", False))
            snapshot = tuple(self._metadata(self._nodes[k], tagged=True)
                             for k in sorted(self._nodes) if _within(k, root, recursive))
            cursor = _Cursor(root, recursive, self._generation, self._seq, snapshot,
                             limit=arg.get("limit"))
        return self._page(cursor)

    def _list_folder_continue(self, arg: dict[str, Any]) -> _Reply:
        token = arg.get("cursor")
        if not isinstance(token, str) or not token.startswith(_CURSOR_PREFIX):
            raise _BadRequest("cursor: invalid")
        with self._lock:
            cursor = self._cursors.get(token)
            if cursor is None or cursor.generation != self._generation:
                # An unknown cursor of our own shape was issued by an earlier fake: reset too.
                raise _ApiError("reset/", _lookup("reset"))
            if cursor.snapshot is None and cursor.root and cursor.root not in self._nodes:
                raise _ApiError("path/not_found/", {".tag": "path", "path": _lookup("not_found")})
        return self._page(cursor)

    def _page(self, cursor: _Cursor) -> _Reply:
        with self._lock:
            size = max(1, min(self.page_size, cursor.limit or self.page_size))
            if cursor.snapshot is not None:
                end = cursor.offset + size
                entries = list(cursor.snapshot[cursor.offset:end])
                if end < len(cursor.snapshot):
                    nxt = replace(cursor, offset=end)
                else:
                    nxt = replace(cursor, snapshot=None, offset=0)
            else:
                changed = [(seq, lower) for seq, lower in self._journal
                           if seq > cursor.seq and _within(lower, cursor.root, cursor.recursive)]
                taken = changed[:size]
                seen: dict[str, None] = {}
                for _, lower in taken:
                    seen.pop(lower, None)
                    seen[lower] = None    # each path once, at its last change in this page
                entries = [self._metadata(self._nodes[k], tagged=True) if k in self._nodes
                           else self._deleted_metadata(k) for k in seen]
                nxt = replace(cursor, seq=taken[-1][0] if taken else self._seq)
            has_more = nxt.snapshot is not None or self._changed_since(nxt)
            token = f"{_CURSOR_PREFIX}{len(self._cursors) + 1:08d}-{secrets.token_hex(6)}"
            self._cursors[token] = nxt
            self.list_pages_served += 1
            pages = self.list_pages_served
        hook = self.on_list_page
        if hook is not None:
            hook(pages)
        return _json_reply(200, {"entries": entries, "cursor": token, "has_more": has_more})

    def _latest_cursor(self, arg: dict[str, Any]) -> _Reply:
        path = arg.get("path", "")
        if not isinstance(path, str):
            raise _BadRequest("path: expected a string")
        with self._lock:
            cursor = _Cursor(self._listing_root(path), bool(arg.get("recursive", False)),
                             self._generation, self._seq, None)
            token = f"{_CURSOR_PREFIX}{len(self._cursors) + 1:08d}-{secrets.token_hex(6)}"
            self._cursors[token] = cursor
        return _json_reply(200, {"cursor": token})

    def _longpoll(self, arg: dict[str, Any]) -> _Reply:
        """Held until the cursor's folder changes (`changes: true`), `timeout` seconds
        pass, the link goes (dropped) or the fake stops."""
        token, timeout = arg.get("cursor"), arg.get("timeout", 30)
        if not isinstance(token, str) or not token.startswith(_CURSOR_PREFIX):
            raise _BadRequest("cursor: invalid")
        if not isinstance(timeout, int) or not 30 <= timeout <= 480:
            raise _BadRequest("timeout: between 30 and 480")
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                cursor = self._cursors.get(token)
                if cursor is None or cursor.generation != self._generation:
                    raise _ApiError("reset/", _lookup("reset"))
                if self.offline:
                    self.dropped_offline += 1
                    raise _Dropped
                changes = cursor.snapshot is not None or self._changed_since(cursor)
                left = deadline - time.monotonic()
                if changes or left <= 0 or self._stopping:
                    return _json_reply(200, {"changes": changes})
                self._changes.wait(left)

    def _changed_since(self, cursor: _Cursor) -> bool:
        for seq, lower in reversed(self._journal):
            if seq <= cursor.seq:
                return False
            if _within(lower, cursor.root, cursor.recursive):
                return True
        return False

    # metadata, delete ----------------------------------------------------------

    def _get_metadata(self, arg: dict[str, Any]) -> _Reply:
        path = arg.get("path")
        if not isinstance(path, str):
            raise _BadRequest("path: expected a string")
        if path == "":
            raise _BadRequest("path: The root folder is unsupported.")
        with self._lock:
            node = self._resolve(path) if not path.startswith("rev:") else None
            if node is not None:
                return _json_reply(200, self._metadata(node, tagged=True))
            lower = path.lower()
            if arg.get("include_deleted") and lower in self._last_display:
                return _json_reply(200, self._deleted_metadata(lower))
        raise _ApiError("path/not_found/", {".tag": "path", "path": _lookup("not_found")})

    def _delete_v2(self, arg: dict[str, Any]) -> _Reply:
        path = arg.get("path")
        if not isinstance(path, str):
            raise _BadRequest("path: expected a string")
        with self._lock:
            node = self._resolve(path) if not path.startswith("rev:") else None
            if node is None:
                raise _ApiError("path_lookup/not_found/",
                                {".tag": "path_lookup", "path_lookup": _lookup("not_found")})
            parent_rev = arg.get("parent_rev")
            if parent_rev is not None and (not isinstance(node, _File) or node.rev != parent_rev):
                raise _ApiError("path_write/conflict/file/", {
                    ".tag": "path_write",
                    "path_write": {".tag": "conflict", "conflict": _lookup("file")}})
            md = self._metadata(node, tagged=True)
            lower = node.path_display.lower()
            self._remove(lower)
            self._record(lower)
        return _json_reply(200, {"metadata": md})

    # download --------------------------------------------------------------------

    def _download(self, arg: dict[str, Any], range_header: str | None) -> _Reply:
        path = arg.get("path")
        if not isinstance(path, str):
            raise _BadRequest("path: expected a string")
        rev = arg.get("rev")
        with self._lock:
            node = self._revisions.get(rev) if isinstance(rev, str) else self._resolve(path)
            if node is None:
                raise _ApiError("path/not_found/", {".tag": "path", "path": _lookup("not_found")})
            if not isinstance(node, _File):
                raise _ApiError("path/not_file/", {".tag": "path", "path": _lookup("not_file")})
            result = json.dumps(self._metadata(node, tagged=False))   # ASCII-only JSON
            data = node.data
        headers = {"Content-Type": "application/octet-stream", "Dropbox-API-Result": result}
        if range_header is None:
            return _Reply(200, data, headers, is_file_body=True)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
        if match is None or match.group(1) == match.group(2) == "":
            raise _BadRequest(f"invalid Range header {range_header!r}")
        first, last = match.group(1), match.group(2)
        if first == "":
            start, stop = max(0, len(data) - int(last)), len(data)
        else:
            start, stop = int(first), len(data) if last == "" else min(int(last) + 1, len(data))
        if start >= len(data) or start >= stop:
            return _Reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        return _Reply(206, data[start:stop], headers, is_file_body=True)

    # upload ----------------------------------------------------------------------

    def _commit(self, commit: dict[str, Any], data: bytes, *, session_id: str | None) -> _File:
        """Write `data` as the CommitInfo/UploadArg `commit` says; returns the file."""
        path = commit.get("path")
        if not isinstance(path, str):
            raise _BadRequest("path: expected a string")

        def failed(summary: str, reason: dict[str, Any]) -> _ApiError:
            if session_id is None:   # /upload: UploadError.path(UploadWriteFailed)
                return _ApiError(f"path/{summary}",
                                 {".tag": "path", "reason": reason, "upload_session_id": ""})
            return _ApiError(f"path/{summary}", {".tag": "path", "path": reason})

        if not path.startswith("/") or path.endswith("/") or "//" in path:
            raise failed("malformed_path/", {".tag": "malformed_path"})
        mode = commit.get("mode")
        mode_tag = _tag(mode, "add")
        client_modified = None
        if commit.get("client_modified"):
            client_modified = datetime.strptime(
                commit["client_modified"], _TIMESTAMP).replace(tzinfo=UTC)
        strict = bool(commit.get("strict_conflict", False))
        conflict_file = {".tag": "conflict", "conflict": _lookup("file")}
        existing = self._nodes.get(path.lower())
        if isinstance(existing, _Folder):
            raise failed("conflict/folder/", {".tag": "conflict", "conflict": _lookup("folder")})
        if isinstance(existing, _File):
            if mode_tag == "add":
                if existing.data == data and not strict:
                    return existing    # same content: no conflict, nothing written
                if not commit.get("autorename", False):
                    raise failed("conflict/file/", conflict_file)
                path = self._free_name(path)
            elif mode_tag == "update":
                wanted = mode.get("update") if isinstance(mode, dict) else None
                if wanted != existing.rev:
                    raise failed("conflict/file/", conflict_file)
            elif mode_tag != "overwrite":
                raise _BadRequest(f"mode: unknown tag {mode_tag!r}")
        elif mode_tag == "update" and strict:
            raise failed("conflict/file/", conflict_file)
        try:
            return self._write_file(path, data, client_modified, None)
        except _ApiError as e:
            raise failed(e.summary, e.error) from None

    def _free_name(self, path: str) -> str:
        folder, name = path.rsplit("/", 1)
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ext = name, "", ""
        for n in itertools.count(1):
            candidate = f"{folder}/{stem} ({n}){dot}{ext}"
            if candidate.lower() not in self._nodes:
                return candidate
        raise AssertionError("unreachable")

    def _check_hash(self, arg: dict[str, Any], data: bytes) -> None:
        """The bytes of this call against the `content_hash` it sent, if it sent one."""
        claimed = arg.get("content_hash")
        if self.check_hashes and claimed is not None and claimed != dropbox_content_hash(data):
            with self._lock:
                self.hash_mismatches += 1
            raise _ApiError("content_hash_mismatch/", _lookup("content_hash_mismatch"))

    def _upload(self, arg: dict[str, Any], data: bytes) -> _Reply:
        self._check_hash(arg, data)
        with self._lock:
            node = self._commit(arg, data, session_id=None)
            return _json_reply(200, self._metadata(node, tagged=False))

    def _session_start(self, arg: dict[str, Any], data: bytes) -> _Reply:
        self._check_hash(arg, data)
        if _tag(arg.get("session_type"), "sequential") != "sequential":
            raise _BadRequest("session_type: only sequential sessions are faked")
        with self._lock:
            session_id = f"fake-session-{next(self._ids)}"
            self._upload_sessions[session_id] = _UploadSession(bytearray(data),
                                                               bool(arg.get("close", False)))
        return _json_reply(200, {"session_id": session_id})

    def _lookup_session(self, cursor: Any, data: bytes,
                        wrap: str | None) -> tuple[str, _UploadSession]:
        def failed(summary: str, error: dict[str, Any]) -> _ApiError:
            if wrap is None:
                return _ApiError(summary, error)
            return _ApiError(f"{wrap}/{summary}", {".tag": wrap, wrap: error})

        if not isinstance(cursor, dict) or not isinstance(cursor.get("session_id"), str):
            raise _BadRequest("cursor: expected {session_id, offset}")
        session_id: str = cursor["session_id"]
        session = self._upload_sessions.get(session_id)
        if session is None:
            raise failed("not_found/", _lookup("not_found"))
        if cursor.get("offset") != len(session.data):
            raise failed("incorrect_offset/", {".tag": "incorrect_offset",
                                              "correct_offset": len(session.data)})
        if session.closed and data:
            raise failed("closed/", _lookup("closed"))
        return session_id, session

    def _session_append(self, arg: dict[str, Any], data: bytes) -> _Reply:
        self._check_hash(arg, data)
        with self._lock:
            _, session = self._lookup_session(arg.get("cursor"), data, None)
            session.data += data
            session.closed = session.closed or bool(arg.get("close", False))
        return _json_reply(200, None)

    def _session_finish(self, arg: dict[str, Any], data: bytes) -> _Reply:
        self._check_hash(arg, data)
        commit = arg.get("commit")
        if not isinstance(commit, dict):
            raise _BadRequest("commit: expected an object")
        with self._lock:
            session_id, session = self._lookup_session(arg.get("cursor"), data, "lookup_failed")
            node = self._commit(commit, bytes(session.data) + data, session_id=session_id)
            del self._upload_sessions[session_id]
            return _json_reply(200, self._metadata(node, tagged=False))


"""The loopback Dropbox fake, driven by the real `dropbox` SDK (issue 3)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from types import SimpleNamespace

import dropbox
import pytest
import requests
from dropbox import dropbox_client, files
from dropbox.content_hash import content_hash as sdk_content_hash
from dropbox.exceptions import (
    ApiError,
    AuthError,
    BadInputError,
    InternalServerError,
    RateLimitError,
)
from dropbox_fake import FakeDropbox, FaultKind, Faults, dropbox_content_hash

ROOT = "/Apps/RMG Observer"


def block_hash(data: bytes) -> str:
    """content_hash by hand: SHA-256 over the SHA-256 digests of 4 MiB blocks."""
    block = 4 * 1024 * 1024
    digests = b"".join(hashlib.sha256(data[i:i + block]).digest()
                       for i in range(0, len(data), block))
    return hashlib.sha256(digests).hexdigest()


def fetch(dbx: dropbox.Dropbox, path: str) -> tuple[files.FileMetadata, bytes]:
    md, resp = dbx.files_download(path)
    with closing(resp):
        return md, resp.content


def list_all(dbx: dropbox.Dropbox, path: str) -> tuple[list[files.Metadata], str, int]:
    """Every entry of a recursive listing, the final cursor and the number of pages."""
    result = dbx.files_list_folder(path, recursive=True)
    entries, pages = list(result.entries), 1
    while result.has_more:
        result = dbx.files_list_folder_continue(result.cursor)
        entries += result.entries
        pages += 1
    return entries, result.cursor, pages


@pytest.fixture
def fake() -> Iterator[FakeDropbox]:
    with FakeDropbox() as server:
        yield server
        assert server.errors == []


@pytest.fixture
def dbx(fake: FakeDropbox) -> dropbox.Dropbox:
    return dropbox.Dropbox(oauth2_refresh_token="good-refresh", app_key="test-app",
                           session=fake.session())


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's retry sleeps, recorded instead of slept (its 5xx backoff is random)."""
    slept: list[float] = []
    monkeypatch.setattr(dropbox_client, "time", SimpleNamespace(sleep=slept.append))
    return slept


# ------------------------------------------------------------------ tokens


def test_token_refresh_and_reuse(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    dbx.files_get_metadata(f"{ROOT}/a.csv")
    dbx.files_get_metadata(f"{ROOT}/a.csv")
    assert fake.requests[0] == "/oauth2/token"
    assert fake.tokens_issued == 1

    fake.expire_tokens()     # 401 expired_access_token: the SDK refreshes once and retries
    dbx.files_get_metadata(f"{ROOT}/a.csv")
    assert fake.tokens_issued == 2
    assert fake.requests[-3:] == ["/2/files/get_metadata", "/oauth2/token",
                                  "/2/files/get_metadata"]


def test_bad_refresh_token_and_bad_access_token(fake: FakeDropbox) -> None:
    bad_refresh = dropbox.Dropbox(oauth2_refresh_token="revoked", app_key="test-app",
                                  session=fake.session())
    with pytest.raises(AuthError) as refused:
        bad_refresh.files_list_folder("")
    assert refused.value.error.is_invalid_access_token()   # the SDK's view of invalid_grant

    bad_token = dropbox.Dropbox(oauth2_access_token="not-a-token", session=fake.session())
    with pytest.raises(AuthError) as unauthorised:
        bad_token.files_list_folder("")
    assert unauthorised.value.status_code == 401
    assert unauthorised.value.error.is_invalid_access_token()

    wrong_app = dropbox.Dropbox(oauth2_refresh_token="good-refresh", app_key="other-app",
                                session=fake.session())
    with pytest.raises(BadInputError):
        wrong_app.files_list_folder("")
    assert fake.tokens_issued == 0


# ------------------------------------------------------------------ listing


def test_list_folder_pages_over_250_files(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    expected = {f"{ROOT}/day{i % 5}/obs-{i:03d}.csv" for i in range(250)}
    for path in expected:
        fake.put(path, path.encode())
    fake.put("/elsewhere/not-listed.csv", b"x")

    entries, _, pages = list_all(dbx, ROOT)

    files_seen = [e.path_display for e in entries if isinstance(e, files.FileMetadata)]
    folders = [e.path_display for e in entries if isinstance(e, files.FolderMetadata)]
    assert sorted(files_seen) == sorted(expected)          # each file exactly once
    assert folders == [ROOT] + [f"{ROOT}/day{d}" for d in range(5)]   # the root itself too
    assert pages == 3                                     # 256 entries, 100 a page
    assert fake.requests.count("/2/files/list_folder/continue") == 2
    by_case = dbx.files_list_folder(ROOT.upper())          # paths are case-insensitive
    assert [e.path_display for e in by_case.entries] == [f"{ROOT}/day{d}" for d in range(5)]
    with pytest.raises(ApiError) as missing:
        dbx.files_list_folder("/no/such/folder")
    assert missing.value.error.get_path().is_not_found()


def test_changes_after_the_snapshot(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    for name in ("keep", "change", "remove", "rename"):
        fake.put(f"{ROOT}/{name}.csv", name.encode())
    fake.put(f"{ROOT}/Sub/inside.csv", b"inside")
    _, cursor, _ = list_all(dbx, ROOT)
    before = fake.metadata(f"{ROOT}/change.csv")

    fake.put(f"{ROOT}/new/added.csv", b"added")
    fake.put(f"{ROOT}/change.csv", b"changed")
    fake.delete(f"{ROOT}/remove.csv")
    fake.move(f"{ROOT}/rename.csv", f"{ROOT}/renamed.csv")
    fake.delete(f"{ROOT}/sub")                             # one entry for the folder only
    fake.put("/elsewhere/ignored.csv", b"not under the listed folder")

    changes = dbx.files_list_folder_continue(cursor)
    assert not changes.has_more
    kinds = {e.path_display: type(e).__name__ for e in changes.entries}
    assert kinds == {
        f"{ROOT}/new": "FolderMetadata", f"{ROOT}/new/added.csv": "FileMetadata",
        f"{ROOT}/change.csv": "FileMetadata", f"{ROOT}/remove.csv": "DeletedMetadata",
        f"{ROOT}/rename.csv": "DeletedMetadata", f"{ROOT}/renamed.csv": "FileMetadata",
        f"{ROOT}/Sub": "DeletedMetadata",
    }
    changed = next(e for e in changes.entries if e.path_display == f"{ROOT}/change.csv")
    assert changed.id == before["id"] and changed.rev != before["rev"]
    assert changed.content_hash == block_hash(b"changed")

    quiet = dbx.files_list_folder_continue(changes.cursor)
    assert quiet.entries == [] and not quiet.has_more
    assert dbx.files_list_folder_continue(cursor).entries == changes.entries  # cursors replay


def test_files_added_while_a_listing_is_paged(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    fake.page_size = 10
    for i in range(30):
        fake.put(f"{ROOT}/f{i:02d}.csv", b"%d" % i)

    def add_one(page: int) -> None:
        if page == 1:
            fake.put(f"{ROOT}/late.csv", b"arrived mid-listing")

    fake.on_list_page = add_one
    entries, cursor, _ = list_all(dbx, ROOT)
    paths = [e.path_display for e in entries]
    assert paths.count(f"{ROOT}/late.csv") == 1            # after the snapshot, as a change
    assert paths.index(f"{ROOT}/late.csv") == len(paths) - 1
    assert len(paths) == 32
    assert dbx.files_list_folder_continue(cursor).entries == []


def test_expired_cursor_is_reset(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    _, cursor, _ = list_all(dbx, ROOT)
    fake.expire_cursors()
    with pytest.raises(ApiError) as expired:
        dbx.files_list_folder_continue(cursor)
    assert isinstance(expired.value.error, files.ListFolderContinueError)
    assert expired.value.error.is_reset()
    entries, _, _ = list_all(dbx, ROOT)                    # a full listing works again
    assert [e.path_display for e in entries] == [ROOT, f"{ROOT}/a.csv"]


def test_a_longpoll_is_held_until_something_changes(
    fake: FakeDropbox, dbx: dropbox.Dropbox,
) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    latest = dbx.files_list_folder_get_latest_cursor(ROOT, recursive=True).cursor
    assert dbx.files_list_folder_continue(latest).entries == []  # nothing listed: now
    fake.put("/elsewhere/b.csv", b"not under the folder")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(dbx.files_list_folder_longpoll, latest, 30)
        time.sleep(0.3)
        assert not held.done()
        fake.put(f"{ROOT}/sub/c.csv", b"c")
        assert held.result(timeout=5).changes
    assert dbx.files_list_folder_longpoll(latest, 30).changes  # at once: changes are there
    assert [e.name for e in dbx.files_list_folder_continue(latest).entries] == ["sub", "c.csv"]


def test_a_longpoll_on_an_expired_cursor_is_reset(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    latest = dbx.files_list_folder_get_latest_cursor("", recursive=True).cursor
    fake.expire_cursors()
    with pytest.raises(ApiError) as expired:
        dbx.files_list_folder_longpoll(latest, 30)
    assert isinstance(expired.value.error, files.ListFolderLongpollError)
    assert expired.value.error.is_reset()


def test_offline_drops_every_request_and_the_held_longpoll(
    fake: FakeDropbox, dbx: dropbox.Dropbox,
) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    latest = dbx.files_list_folder_get_latest_cursor(ROOT).cursor
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(dbx.files_list_folder_longpoll, latest, 30)
        time.sleep(0.3)
        fake.go_offline()
        with pytest.raises(requests.exceptions.ConnectionError):
            held.result(timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        dbx.files_get_metadata(f"{ROOT}/a.csv")
    fake.put(f"{ROOT}/b.csv", b"arrived while the link was gone")
    fake.go_online()
    assert dbx.files_list_folder_longpoll(latest, 30).changes
    assert fake.dropped_offline == 2


# ------------------------------------------------------------------ content


def test_download_bytes_and_content_hash(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    big = os.urandom(4 * 1024 * 1024 + 1234)               # two 4 MiB blocks
    when = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    put = fake.put(f"{ROOT}/Big.BIN", big, modified=when)

    md, data = fetch(dbx, f"{ROOT.lower()}/big.bin")
    assert data == big
    assert md.size == len(big) and md.path_display == f"{ROOT}/Big.BIN"
    assert md.content_hash == block_hash(big) == sdk_content_hash(big)
    assert md.content_hash == dropbox_content_hash(big)
    assert md.content_hash != hashlib.sha256(big).hexdigest()
    assert md.server_modified == when.replace(tzinfo=None)  # the SDK gives naive UTC
    assert fetch(dbx, put["id"])[1] == big                  # by id
    assert dbx.files_get_metadata(put["id"]).rev == md.rev

    empty_md, empty = fetch(dbx, fake.put(f"{ROOT}/empty.csv", b"")["path_display"])
    assert empty == b"" and empty_md.content_hash == block_hash(b"")

    _, resp = dbx.files_download(f"{ROOT}/Big.BIN", extra_headers={"Range": "bytes=10-19"})
    with closing(resp):
        assert resp.status_code == 206 and resp.content == big[10:20]

    with pytest.raises(ApiError) as missing:
        dbx.files_download(f"{ROOT}/nothing.csv")
    assert missing.value.error.get_path().is_not_found()
    with pytest.raises(ApiError) as folder:
        dbx.files_download(ROOT)
    assert folder.value.error.get_path().is_not_file()


def test_upload_round_trip(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    data = os.urandom(70_000)
    md = dbx.files_upload(data, "/backups/objects/ab/cdef")
    assert md.content_hash == block_hash(data)
    assert fetch(dbx, "/backups/objects/ab/cdef")[1] == data
    assert fake.read("/backups/objects/ab/cdef") == data

    again = dbx.files_upload(data, "/backups/objects/ab/cdef")   # add, same bytes: no conflict
    assert again.rev == md.rev
    with pytest.raises(ApiError) as conflict:
        dbx.files_upload(b"other", "/backups/objects/ab/cdef")
    assert conflict.value.error.get_path().reason.get_conflict().is_file()
    with pytest.raises(ApiError) as mismatch:
        dbx.files_upload(b"bytes", "/backups/x", content_hash="0" * 64)
    assert mismatch.value.error.is_content_hash_mismatch()
    over = dbx.files_upload(b"other", "/backups/objects/ab/cdef",
                            mode=files.WriteMode.overwrite)
    assert over.rev != md.rev and fake.read("/backups/objects/ab/cdef") == b"other"

    chunks = [os.urandom(1000), os.urandom(2000), os.urandom(500)]
    start = dbx.files_upload_session_start(chunks[0])
    cursor = files.UploadSessionCursor(start.session_id, len(chunks[0]))
    dbx.files_upload_session_append_v2(chunks[1], cursor)
    with pytest.raises(ApiError) as offset:                 # a replayed append
        dbx.files_upload_session_append_v2(chunks[1], cursor)
    assert offset.value.error.get_incorrect_offset().correct_offset == 3000
    cursor.offset = 3000
    final = dbx.files_upload_session_finish(chunks[2], cursor,
                                            files.CommitInfo("/backups/2025-03-01T00:00:00Z.json"))
    whole = b"".join(chunks)
    assert final.content_hash == block_hash(whole) and final.size == len(whole)
    assert fetch(dbx, "/backups/2025-03-01T00:00:00Z.json")[1] == whole

    deleted = dbx.files_delete_v2("/backups/objects/ab/cdef")
    assert deleted.metadata.path_display == "/backups/objects/ab/cdef"
    with pytest.raises(ApiError) as gone:
        dbx.files_get_metadata("/backups/objects/ab/cdef")
    assert gone.value.error.get_path().is_not_found()
    with pytest.raises(ApiError) as twice:
        dbx.files_delete_v2("/backups/objects/ab/cdef")
    assert twice.value.error.get_path_lookup().is_not_found()


def test_concurrent_downloads(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    blobs = {f"{ROOT}/c{i:02d}.bin": os.urandom(1000 + i) for i in range(48)}
    for path, data in blobs.items():
        fake.put(path, data)
    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(blobs, pool.map(lambda p: fetch(dbx, p)[1], blobs), strict=True))
    assert got == blobs


# ------------------------------------------------------------------ faults


def test_drop_is_a_connection_error(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    dbx.files_get_metadata(f"{ROOT}/a.csv")
    fake.inject("drop", route="/2/files/download")
    with pytest.raises(requests.exceptions.ConnectionError):
        dbx.files_download(f"{ROOT}/a.csv")
    assert fetch(dbx, f"{ROOT}/a.csv")[1] == b"a"          # the next attempt goes through
    assert fake.injected == {"drop": 1}


def test_drop_after_commit_then_retry(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    dbx.files_list_folder("")
    fake.inject("drop_after", route="/2/files/upload")
    with pytest.raises(requests.exceptions.ConnectionError):
        dbx.files_upload(b"payload", "/backups/p")
    assert fake.read("/backups/p") == b"payload"            # committed, though unanswered
    assert dbx.files_upload(b"payload", "/backups/p").content_hash == block_hash(b"payload")
    assert fake.injected == {"drop_after": 1}


def test_truncated_body(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    data = os.urandom(100_000)
    fake.put(f"{ROOT}/t.bin", data)
    fake.inject("truncate")
    md, resp = dbx.files_download(f"{ROOT}/t.bin")          # headers arrive intact
    assert md.size == len(data)
    with closing(resp), pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = resp.content                                    # urllib3 IncompleteRead inside
    assert fetch(dbx, f"{ROOT}/t.bin")[1] == data
    assert fake.injected == {"truncate": 1}


@pytest.mark.parametrize("kind", ["truncate", "corrupt"])
def test_an_upload_damaged_on_the_way_is_stored_unless_its_hash_was_sent(
    fake: FakeDropbox, dbx: dropbox.Dropbox, kind: FaultKind,
) -> None:
    data = os.urandom(10_000)
    fake.inject(kind, route="/2/files/upload")
    with pytest.raises(ApiError) as refused:                # as Dropbox does: nothing stored
        dbx.files_upload(data, "/backups/u", content_hash=block_hash(data))
    assert isinstance(refused.value.error, files.UploadError)
    assert refused.value.error.is_content_hash_mismatch()
    assert "/backups/u" not in fake.files() and fake.hash_mismatches == 1

    fake.inject(kind, route="/2/files/upload")              # no hash sent: what arrived
    md = fake.client(sdk_hashes=False).files_upload(data, "/backups/u")
    stored = fake.read("/backups/u")
    assert stored != data and md.content_hash == block_hash(stored) != block_hash(data)
    if kind == "truncate":
        assert stored == data[:5_000]
    else:
        assert sum(a != b for a, b in zip(stored, data, strict=True)) == 1

    fake.check_hashes = False                               # a server that does not look
    fake.inject(kind, route="/2/files/upload")
    md = dbx.files_upload(data, "/backups/v", content_hash=block_hash(data))
    assert md.content_hash != block_hash(data) and fake.hash_mismatches == 1
    assert fake.injected == {kind: 3}


@pytest.mark.parametrize("kind", ["truncate", "corrupt"])
def test_an_upload_session_checks_each_part_it_is_sent_the_hash_of(
    fake: FakeDropbox, dbx: dropbox.Dropbox, kind: FaultKind,
) -> None:
    parts = [os.urandom(1000), os.urandom(2000), os.urandom(500)]
    fake.inject(kind, route="/2/files/upload_session/start")
    with pytest.raises(ApiError) as at_start:
        dbx.files_upload_session_start(parts[0], content_hash=block_hash(parts[0]))
    assert at_start.value.error.is_content_hash_mismatch()
    start = dbx.files_upload_session_start(parts[0], content_hash=block_hash(parts[0]))
    cursor = files.UploadSessionCursor(start.session_id, 1000)
    fake.inject(kind, route="/2/files/upload_session/append_v2")
    with pytest.raises(ApiError) as appended:
        dbx.files_upload_session_append_v2(parts[1], cursor, content_hash=block_hash(parts[1]))
    assert isinstance(appended.value.error, files.UploadSessionAppendError)
    assert appended.value.error.is_content_hash_mismatch()
    dbx.files_upload_session_append_v2(parts[1], cursor,     # refused: the same offset again
                                       content_hash=block_hash(parts[1]))
    cursor.offset = 3000
    fake.inject(kind, route="/2/files/upload_session/finish")
    commit = files.CommitInfo("/backups/s")
    with pytest.raises(ApiError) as finished:
        dbx.files_upload_session_finish(parts[2], cursor, commit,
                                        content_hash=block_hash(parts[2]))
    assert isinstance(finished.value.error, files.UploadSessionFinishError)
    assert finished.value.error.is_content_hash_mismatch()
    assert "/backups/s" not in fake.files()
    md = dbx.files_upload_session_finish(parts[2], cursor, commit,
                                         content_hash=block_hash(parts[2]))
    assert md.content_hash == block_hash(b"".join(parts)) and fake.hash_mismatches == 3

    raw = fake.client(sdk_hashes=False)              # no hashes: what arrived
    start = raw.files_upload_session_start(parts[0])
    fake.inject(kind, route="/2/files/upload_session/append_v2")
    raw.files_upload_session_append_v2(parts[1], files.UploadSessionCursor(start.session_id,
                                                                           1000))
    if kind == "truncate":                                  # the session is short of bytes
        with pytest.raises(ApiError) as short:
            raw.files_upload_session_finish(
                parts[2], files.UploadSessionCursor(start.session_id, 3000), commit)
        assert short.value.error.get_lookup_failed().get_incorrect_offset().correct_offset \
            == 2000
    else:
        md = raw.files_upload_session_finish(
            parts[2], files.UploadSessionCursor(start.session_id, 3000),
            files.CommitInfo("/backups/t"))
        assert md.size == 3500 and md.content_hash != block_hash(b"".join(parts))
    assert fake.injected == {kind: 4}


def test_corrupt_body(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    data = os.urandom(10_000)
    fake.put(f"{ROOT}/c.bin", data)
    fake.inject("corrupt")
    md, body = fetch(dbx, f"{ROOT}/c.bin")
    assert len(body) == len(data) and body != data
    assert sum(a != b for a, b in zip(body, data, strict=True)) == 1
    assert md.content_hash == block_hash(data) != block_hash(body)
    assert fake.injected == {"corrupt": 1}


def test_500_is_retried_by_the_sdk(fake: FakeDropbox, sleeps: list[float]) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    dbx = fake.client(max_retries_on_error=2)
    fake.inject("500", times=2, route="/2/files/download")
    assert fetch(dbx, f"{ROOT}/a.csv")[1] == b"a"           # two 500s, then success
    assert len(sleeps) == 2

    fake.inject("500", times=3, route="/2/files/download")
    with pytest.raises(InternalServerError) as failed:
        dbx.files_download(f"{ROOT}/a.csv")
    assert failed.value.status_code == 500
    assert fake.requests.count("/2/files/download") == 6
    assert fake.injected == {"500": 5}


def test_429_honours_retry_after(fake: FakeDropbox, sleeps: list[float]) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    fake.faults = Faults(retry_after=1)
    dbx = fake.client(max_retries_on_rate_limit=2)
    fake.inject("429", times=2, route="/2/files/get_metadata")
    assert dbx.files_get_metadata(f"{ROOT}/a.csv").size == 1
    assert sleeps == [1, 1]                                 # the server's retry_after

    fake.inject("429", times=3, route="/2/files/get_metadata")
    with pytest.raises(RateLimitError) as limited:
        dbx.files_get_metadata(f"{ROOT}/a.csv")
    assert limited.value.backoff == 1
    assert fake.injected == {"429": 5}


def test_random_faults_are_seeded_and_counted(fake: FakeDropbox, sleeps: list[float]) -> None:
    for i in range(20):
        fake.put(f"{ROOT}/r{i:02d}.bin", os.urandom(200 + i))

    def run(seed: int) -> tuple[list[str], dict[str, int]]:
        fake.faults = Faults(rate=0.4, seed=seed, routes=frozenset({"/2/files/download"}))
        fake.injected.clear()
        dbx = fake.client(max_retries_on_error=0, max_retries_on_rate_limit=0)
        outcomes = []
        for i in range(20):
            path = f"{ROOT}/r{i:02d}.bin"
            try:
                md, body = fetch(dbx, path)
            except requests.exceptions.ConnectionError:
                outcomes.append("drop")
            except requests.exceptions.ChunkedEncodingError:
                outcomes.append("truncate")
            except RateLimitError:
                outcomes.append("429")
            except InternalServerError:
                outcomes.append("500")
            else:
                outcomes.append("ok" if block_hash(body) == md.content_hash else "corrupt")
        return outcomes, dict(fake.injected)

    first, counted = run(seed=7)
    assert run(seed=7) == (first, counted)                 # same seed, same faults
    assert {k: first.count(k) for k in counted} == counted  # every fault seen by the client
    assert first.count("ok") == 20 - sum(counted.values())
    assert len(counted) >= 3 and 0 < sum(counted.values()) < 20


def test_latency_is_per_request_and_requests_are_served_side_by_side(
    fake: FakeDropbox, dbx: dropbox.Dropbox,
) -> None:
    for i in range(8):
        fake.put(f"{ROOT}/l{i}.csv", b"%d" % i)
    dbx.files_get_metadata(f"{ROOT}/l0.csv")
    fake.faults = Faults(latency_s=0.1)
    started = time.monotonic()
    dbx.files_get_metadata(f"{ROOT}/l0.csv")
    assert time.monotonic() - started >= 0.1
    fake.gather("/2/files/download", 8)      # none answered before 8 are in the server
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: fetch(dbx, f"{ROOT}/l{i}.csv")[1], range(8)))
    assert got == [b"%d" % i for i in range(8)]
    assert fake.peak_in_flight["/2/files/download"] == 8   # one at a time: 1


def test_a_gathering_that_never_comes_lets_the_requests_through(
    fake: FakeDropbox, dbx: dropbox.Dropbox,
) -> None:
    fake.put(f"{ROOT}/a.csv", b"a")
    fake.gather("/2/files/download", 2, timeout_s=0.2)
    assert [fetch(dbx, f"{ROOT}/a.csv")[1] for _ in range(3)] == [b"a"] * 3  # one at a time
    assert fake.peak_in_flight["/2/files/download"] == 1


def test_hold_stops_a_client_after_so_many_requests(
    fake: FakeDropbox, dbx: dropbox.Dropbox,
) -> None:
    for i in range(5):
        fake.put(f"{ROOT}/h{i}.csv", b"%d" % i)
    fake.hold("/2/files/download", after=3)
    with ThreadPoolExecutor(1) as pool:
        fetched = pool.submit(lambda: [fetch(dbx, f"{ROOT}/h{i}.csv")[1] for i in range(5)])
        while not fake.held("/2/files/download"):
            assert not fetched.done(), fetched.result()
            time.sleep(0.01)
        assert fake.requests.count("/2/files/download") == 4  # the fourth is held
        assert fake.held("/2/files/download") == 1 and not fetched.done()
        dbx.files_get_metadata(f"{ROOT}/h0.csv")              # other routes go on
        fake.release()
        assert fetched.result(timeout=10) == [b"%d" % i for i in range(5)]


def test_an_injected_fault_can_name_the_file(fake: FakeDropbox, dbx: dropbox.Dropbox) -> None:
    for name in ("a", "b"):
        fake.put(f"{ROOT}/{name}.bin", name.encode() * 100)
    fake.inject("corrupt", path=f"{ROOT.upper()}/B.BIN")     # any case, as Dropbox's paths
    assert fetch(dbx, f"{ROOT}/a.bin")[1] == b"a" * 100      # another file: untouched
    assert fetch(dbx, f"{ROOT}/b.bin")[1] != b"b" * 100
    assert fake.calls[-2:] == [("/2/files/download", f"{ROOT}/a.bin".lower()),
                               ("/2/files/download", f"{ROOT}/b.bin".lower())]
    assert fake.injected == {"corrupt": 1}


# ------------------------------------------------------------------ plumbing


def test_session_reaches_only_the_dropbox_hosts(fake: FakeDropbox) -> None:
    session = fake.session()
    with pytest.raises(requests.exceptions.ConnectionError, match="refuses"):
        session.get("https://example.com/")
    with pytest.raises(requests.exceptions.ConnectionError, match="refuses"):
        session.post("http://api.dropboxapi.com/2/files/list_folder")
    wrong_host = session.post("https://api.dropboxapi.com/2/files/download",
                              headers={"Dropbox-API-Arg": '{"path": "/a"}'})
    assert wrong_host.status_code == 400 and "content.dropboxapi.com" in wrong_host.text


def test_stops_cleanly() -> None:
    with FakeDropbox() as fake:
        fake.put("/a.csv", b"a")
        dbx = fake.client()
        assert fetch(dbx, "/a.csv")[1] == b"a"
        _, open_resp = dbx.files_download("/a.csv")        # a connection left in use
        port = fake.port
    open_resp.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("fake-dropbox")]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_concurrent_downloads_through_random_faults(fake: FakeDropbox) -> None:
    blobs = {f"{ROOT}/s{i:03d}.bin": os.urandom(500 + i) for i in range(200)}
    for path, data in blobs.items():
        fake.put(path, data)
    fake.faults = Faults(rate=0.25, seed=3, kinds=("drop", "429", "500", "truncate", "corrupt"))
    dbx = fake.client(max_retries_on_error=0, max_retries_on_rate_limit=0)
    failures: list[str] = []
    lock = threading.Lock()

    def verified(path: str) -> bytes:
        while True:
            try:
                md, body = fetch(dbx, path)
                if block_hash(body) == md.content_hash:
                    return body
                reason = "corrupt"
            except (requests.exceptions.RequestException, RateLimitError,
                    InternalServerError, AuthError) as e:
                reason = type(e).__name__
            with lock:
                failures.append(reason)

    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(blobs, pool.map(verified, blobs), strict=True))
    assert got == blobs
    assert len(failures) == sum(fake.injected.values()) > 0
    assert set(fake.injected) == {"drop", "429", "500", "truncate", "corrupt"}

"""Uploads to Dropbox (backups, reports): the real SDK against the loopback fake, bytes
damaged on the way in, upload sessions failing part way."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from dropbox_fake import FakeDropbox, FaultKind

from rmg_lake import SourceError
from rmg_lake.deliver.dropbox_target import DropboxTarget

ROOT = "/Apps/RMG Observer"
KEY = "backups/objects/ab/cdef"
PATH = f"{ROOT}/{KEY}"
CHUNK = 1024  # the parts of an upload session, small: a session without big data
LARGE = 4 * CHUNK + 100  # a start, three appends and a finish
START, APPEND, FINISH = (f"/2/files/upload_session/{step}"
                         for step in ("start", "append_v2", "finish"))
UPLOAD = "/2/files/upload"
SESSION = Counter({START: 1, APPEND: 3, FINISH: 1})  # the calls of one LARGE upload


def target(fake: FakeDropbox, attempts: int = 5) -> DropboxTarget:
    """A target whose client adds no content hash of its own: the hashes Dropbox checks
    are the ones the target sends."""
    return DropboxTarget(f"dropbox:{ROOT}", fake.client(sdk_hashes=False),
                         attempts=attempts, chunk=CHUNK)


def sent(fake: FakeDropbox) -> Counter[str]:
    """The upload calls the fake received, by route."""
    return Counter(r for r in fake.requests if r in (UPLOAD, START, APPEND, FINISH))


@pytest.mark.parametrize("route", [UPLOAD, START, APPEND, FINISH])
@pytest.mark.parametrize("kind", ["truncate", "corrupt"])
def test_bytes_damaged_on_the_way_are_refused_by_their_hash_and_sent_again(
    fake: FakeDropbox, kind: FaultKind, route: str,
) -> None:
    data = os.urandom(500 if route == UPLOAD else LARGE)
    fake.inject(kind, route=route)
    target(fake).put(KEY, data)
    assert fake.read(PATH) == data
    assert fake.injected == {kind: 1}
    assert fake.hash_mismatches == 1  # the target sent the hash: Dropbox checked on arrival
    normal = Counter({UPLOAD: 1}) if route == UPLOAD else SESSION
    assert sent(fake) == normal + Counter({route: 1})  # that one call again, no more


@pytest.mark.parametrize(("kind", "route"), [
    ("corrupt", UPLOAD), ("truncate", UPLOAD), ("corrupt", APPEND), ("truncate", APPEND),
    ("corrupt", FINISH),
])
def test_a_server_that_stores_damaged_bytes_is_caught_by_the_hash_it_reports(
    fake: FakeDropbox, kind: FaultKind, route: str,
) -> None:
    """A Dropbox that checks no hash stores what arrived: the hash it reports for the file
    differs, the wrong file is deleted and the upload made again."""
    fake.check_hashes = False
    data = os.urandom(500 if route == UPLOAD else LARGE)
    fake.inject(kind, route=route)
    target(fake).put(KEY, data)
    assert fake.read(PATH) == data
    assert fake.injected == {kind: 1} and fake.hash_mismatches == 0
    if (kind, route) == ("truncate", APPEND):  # half a part lost: resumed where it stopped
        assert sent(fake) == SESSION + Counter({APPEND: 1})  # the one told incorrect_offset
    else:  # stored wrong: deleted, then all of it again
        assert (("/2/files/delete_v2", PATH.lower()) in fake.calls)
        normal = Counter({UPLOAD: 1}) if route == UPLOAD else SESSION
        assert sent(fake) == normal + normal


@pytest.mark.parametrize("check_hashes", [True, False])
def test_an_upload_that_never_arrives_whole_is_an_error_naming_it(
    fake: FakeDropbox, check_hashes: bool,
) -> None:
    fake.check_hashes = check_hashes
    fake.inject("corrupt", times=3, route=UPLOAD)
    with pytest.raises(SourceError, match="cannot upload it to Dropbox") as failed:
        target(fake, attempts=3).put(KEY, b"the manifest")
    assert failed.value.file == KEY and failed.value.retryable
    assert "(sent 3 times)" in str(failed.value) and "check the connection" in str(failed.value)
    assert fake.requests.count(UPLOAD) == 3
    assert PATH not in fake.files()  # no wrong file left for a later backup to trust


@pytest.mark.parametrize("route", [START, APPEND, FINISH])
@pytest.mark.parametrize("kind", ["drop", "drop_after", "500", "429"])
def test_an_upload_session_failing_part_way_ends_in_the_right_file(
    fake: FakeDropbox, kind: FaultKind, route: str,
) -> None:
    data = os.urandom(LARGE)
    fake.put(PATH, b"an older version")
    fake.inject(kind, route=route)
    target(fake).put(KEY, data)
    assert fake.read(PATH) == data and list(fake.files()) == [PATH]
    assert fake.injected == {kind: 1}
    # The failed call once more (an append that went through unanswered is told
    # `incorrect_offset` then, and the session goes on from where Dropbox says it is) ...
    expected = SESSION + Counter({route: 1})
    if (kind, route) == ("drop_after", FINISH):  # ... but a finish that went through
        expected += SESSION  # unanswered leaves no session to go on with: all again
    assert sent(fake) == expected

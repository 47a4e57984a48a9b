"""Ingest from Dropbox: the real SDK against the loopback fake, faults and all."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import tenacity
from dropbox import dropbox_client
from dropbox_fake import ALL_FAULT_KINDS, FakeDropbox, FaultKind, Faults

from rmg_lake import SimulationManifest, open_lake, simulate
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.sources import printable
from rmg_lake.sources.dropbox import DropboxFolder

ROOT = "/Apps/RMG Observer"
FAULTS = ("drop", "429", "500", "truncate", "corrupt")
LINK = frozenset({  # the routes a backup and a restore use, once signed in
    "/2/files/list_folder", "/2/files/list_folder/continue", "/2/files/download",
    "/2/files/upload", "/2/files/upload_session/start", "/2/files/upload_session/append_v2",
    "/2/files/upload_session/finish", "/2/files/delete_v2"})


def upload(fake: FakeDropbox, folder: Path, under: str = "") -> None:
    """Put every file of a simulated sync folder into the fake, with its saved time."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
            fake.put(f"{ROOT}/{under}{path.relative_to(folder).as_posix()}", path.read_bytes(),
                     modified=modified)


def source(fake: FakeDropbox) -> DropboxFolder:
    return DropboxFolder(f"dropbox:{ROOT}", fake.client(), attempts=6)


@pytest.fixture
def study(tmp_path: Path) -> SimulationManifest:
    return simulate(tmp_path / "inbox", days=4, seed=21)


def test_a_dropbox_folder_is_ingested_like_a_local_one(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    result = lake.ingest(source(fake))
    counts = result.counts
    assert counts["seen"] == study.files
    assert counts["added"] == study.observation_files - study.duplicates
    assert counts["quarantined"] == len(study.bad)
    assert counts["attachment"] == study.photos
    current = dict(lake.table("observations").select("observation_id", "source_path")
                   .iter_rows())
    assert current == study.current
    assert result.batch is not None and result.batch.cursor


@pytest.mark.parametrize("days", [4, pytest.param(11, marks=pytest.mark.slow)])  # ~450, ~1,100
def test_every_file_arrives_once_through_a_failing_link(
    fake: FakeDropbox, tmp_path: Path, days: int,
) -> None:
    study = simulate(tmp_path / "inbox", days=days, seed=21)
    upload(fake, tmp_path / "inbox")
    fake.faults = Faults(rate=0.2, kinds=FAULTS, seed=3)
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(source(fake))
    assert sum(fake.injected.values()) > 50
    runs = [first]
    if first.counts["deferred"]:
        runs.append(lake.ingest(source(fake)))  # at most one rerun for deferred files
    assert runs[-1].counts["deferred"] == 0
    kept = [f for run in runs if run.batch for f in run.batch.files]
    assert sorted(f.path for f in kept) == sorted(
        p.relative_to(tmp_path / "inbox").as_posix()
        for p in (tmp_path / "inbox").rglob("*") if p.is_file())
    for record in kept:  # hash-checked: the kept bytes are what was uploaded
        assert (lake.root / record.stored).read_bytes() == \
            (tmp_path / "inbox" / record.path).read_bytes()
    assert lake.table("observations").height == len(study.current)


def test_the_next_run_lists_only_what_changed(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(source(fake))
    later = simulate(tmp_path / "later", days=1, seed=22, start=date(2026, 11, 8))
    upload(fake, tmp_path / "later", under="later/")
    fake.delete(f"{ROOT}/{next(iter(study.current.values()))}")
    fake.requests.clear()
    second = lake.ingest(source(fake))
    assert second.counts["seen"] == later.files
    assert "/2/files/list_folder" not in fake.requests  # resumed from the stored cursor
    assert len(second.gone) == 1  # reported; nothing leaves the lake
    assert lake.table("observations").height == len(study.current) + len(later.current)


def test_a_large_import_records_the_cursor_with_its_last_part_only(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    """Only the last part's batch says where the listing ended: a run stopped between
    parts lists again from the cursor before it, and skips the parts it committed."""
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    result = lake.ingest(source(fake), batch_files=-(-study.files // 4))
    assert len(result.batches) == 4
    assert [b.cursor is not None for b in result.batches] == [False, False, False, True]
    assert sum(len(b.files) for b in result.batches) == study.files


def test_an_expired_cursor_falls_back_to_a_full_listing(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(source(fake))
    fake.expire_cursors()
    again = lake.ingest(source(fake))
    assert again.relisted and again.batch is None  # everything listed again, nothing new


def test_a_run_killed_mid_sync_resumes_from_the_committed_cursor(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    import signal
    import time

    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(source(fake))
    later = simulate(tmp_path / "later", days=2, seed=26, start=date(2026, 11, 8))
    upload(fake, tmp_path / "later", under="later/")
    fake.requests.clear()
    fake.hold("/2/files/download", after=40)  # well into the downloads, the run waits
    run = subprocess.Popen([sys.executable, "-m", "rmg_lake", "ingest", "--source",
                            f"dropbox:{ROOT}", "--lake", str(lake.root), "--workers", "2"],
                           env=_env(fake, fake.refresh_token), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not fake.held("/2/files/download"):
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run never got to its 41st download"
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    fake.release()
    assert fake.requests.count("/2/files/download") in (41, 42)  # 40 served, 1 or 2 held
    assert len(lake.batches()) == 1  # the killed run committed nothing
    fake.requests.clear()
    result = lake.ingest(source(fake))
    assert "/2/files/list_folder" not in fake.requests  # resumed from batch 1's cursor
    assert result.counts["seen"] == later.files
    paths = [f.path for batch in lake.batches() for f in batch.files]
    assert len(paths) == len(set(paths)) == study.files + later.files
    assert lake.table("observations").height == len(study.current) + len(later.current)


def _timed_sync(fake: FakeDropbox, lake_dir: Path, workers: int) -> float:
    """Seconds to list and fetch every file (the sync itself, without deriving frames)."""
    import time

    from rmg_lake.store.ingest import Index, collect
    from rmg_lake.store.raw import RawStore

    started = time.monotonic()
    [got] = collect(source(fake), RawStore(lake_dir), Index(), workers=workers)
    assert not got.deferred and len(got.records) == len(fake.files())
    return time.monotonic() - started


@pytest.mark.slow  # the acceptance, timed: `just slow` (about a minute)
def test_downloads_overlap_on_a_slow_link(fake: FakeDropbox, tmp_path: Path) -> None:
    for n in range(1000):
        fake.put(f"{ROOT}/obs01/photo_{n:04d}.jpg", b"\xff\xd8" + n.to_bytes(4, "big"))
    fake.faults = Faults(rate=0.0, latency_s=0.05)
    one_at_a_time = _timed_sync(fake, tmp_path / "serial", workers=1)
    together = _timed_sync(fake, tmp_path / "parallel", workers=16)
    assert one_at_a_time >= 5 * together, (one_at_a_time, together)


def test_downloads_run_side_by_side_and_are_kept_in_order(
    fake: FakeDropbox, tmp_path: Path,
) -> None:
    from rmg_lake.store.ingest import Index, collect
    from rmg_lake.store.raw import RawStore

    for n in range(60):
        fake.put(f"{ROOT}/obs01/photo_{n:04d}.jpg", b"\xff\xd8" + n.to_bytes(4, "big"),
                 modified=datetime(2026, 11, 1, 8, n, tzinfo=UTC))
    # None answered before 8 are asked for at once (and a while more: a 9th would show).
    fake.gather("/2/files/download", 8, linger_s=0.2)
    [got] = collect(DropboxFolder(f"dropbox:{ROOT}", fake.client()),
                    RawStore(tmp_path / "lake"), Index(), workers=8)
    assert fake.peak_in_flight["/2/files/download"] == 8  # as many as allowed, no more
    assert [r.path for r in got.records] == [f"obs01/photo_{n:04d}.jpg" for n in range(60)]


@pytest.mark.parametrize("kind", ["truncate", "corrupt"])
def test_one_damaged_download_is_fetched_again_and_kept_whole(
    fake: FakeDropbox, kind: FaultKind,
) -> None:
    sent = {f"obs01/photo_{n}.jpg": os.urandom(50_000) for n in range(4)}
    for path, data in sent.items():
        fake.put(f"{ROOT}/{path}", data)
    fake.inject(kind, path=f"{ROOT}/obs01/photo_2.jpg")  # once, that file only
    folder = source(fake)
    read = {file.path: folder.read(file) for file in folder.list()}
    assert {path: hashlib.sha256(data).hexdigest() for path, data in read.items()} == \
        {path: hashlib.sha256(data).hexdigest() for path, data in sent.items()}
    assert fake.injected == {kind: 1}
    downloads = Counter(path for route, path in fake.calls if route == "/2/files/download")
    assert downloads == {f"{ROOT}/{path}".lower(): 2 if path.endswith("_2.jpg") else 1
                         for path in sent}


def _env(fake: FakeDropbox, token: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a real `rmg-lake` run whose Dropbox is the fake (over HTTPS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DROPBOX_")}
    env.update(fake.env(), **extra)
    if token is not None:
        env["DROPBOX_REFRESH_TOKEN"] = token
    return env


def _cli_against(fake: FakeDropbox, cwd: Path, *args: str,
                 token: str) -> subprocess.CompletedProcess[str]:
    """`rmg-lake ARGS` in a subprocess, signed in with `token`, talking to the fake."""
    return subprocess.run([sys.executable, "-m", "rmg_lake", *args], cwd=cwd,
                          env=_env(fake, token), capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_token_appears_nowhere(fake: FakeDropbox, tmp_path: Path) -> None:
    secret = "rt-5ecret-0123456789abcdef"
    fake.refresh_token = secret
    simulate(tmp_path / "inbox", days=2, seed=23)
    upload(fake, tmp_path / "inbox")
    fake.faults = Faults(rate=0.1, kinds=FAULTS, seed=4)
    spec = f"dropbox:{ROOT}"
    runs = [_cli_against(fake, tmp_path, "ingest", "--source", spec, "--lake", "lake",
                         token=secret),
            _cli_against(fake, tmp_path, "report", "--lake", "lake", token=secret),
            _cli_against(fake, tmp_path, "ingest", "--source", spec, "--lake", "lake",
                         token="rt-wrong-" + secret)]
    assert [run.returncode for run in runs] == [0, 0, 1], runs[-1].stderr
    assert "Dropbox refused the credentials" in runs[-1].stderr
    said = "".join(run.stdout + run.stderr for run in runs)
    assert "files seen" in said
    stored = b"".join(p.read_bytes() for p in (tmp_path / "lake").rglob("*") if p.is_file())
    for needle in (secret, "fake-access-"):
        assert needle not in said
        assert needle.encode() not in stored


def test_no_network_ends_quickly_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A few tries, a few seconds' pauses between them in all (counted, not slept)."""
    from rmg_lake import SourceError

    paused: list[float] = []
    monkeypatch.setattr(dropbox_client, "time", SimpleNamespace(sleep=paused.append))
    monkeypatch.setattr(tenacity.nap, "time", SimpleNamespace(sleep=paused.append))
    with FakeDropbox() as gone:
        client = gone.client()
    lake = open_lake(tmp_path / "lake", create=True)
    with pytest.raises(SourceError, match="cannot reach Dropbox"):
        lake.ingest(DropboxFolder(f"dropbox:{ROOT}", client))
    assert 0 < len(paused) <= 8 and sum(paused) < 10
    assert lake.batches() == []


def test_auth_signs_in_with_pkce_and_keeps_the_token_private(
    fake: FakeDropbox, tmp_path: Path,
) -> None:
    import re
    import stat

    secret = "rt-5ecret-fedcba9876543210"
    fake.refresh_token = secret
    env = _env(fake, XDG_CONFIG_HOME=str(tmp_path / "config"))
    with subprocess.Popen([sys.executable, "-m", "rmg_lake", "auth", "--app-key",
                           fake.app_key],
                          cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as login:
        assert login.stdout is not None and login.stdin is not None
        address = ""
        while "code_challenge=" not in address:
            address = login.stdout.readline()
            assert address, login.stderr.read() if login.stderr else ""
        challenge = re.search(r"code_challenge=([^&\s]+)", address)
        assert challenge is not None
        fake.grant_code("the-code", challenge.group(1))
        rest, errors = login.communicate("the-code\n", timeout=60)
    assert login.returncode == 0, errors
    stored = tmp_path / "config" / "rmg-lake" / "dropbox.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert secret in stored.read_text()
    simulate(tmp_path / "inbox", days=1, seed=24, bad_files=False)
    upload(fake, tmp_path / "inbox")
    runs = [subprocess.run([sys.executable, "-m", "rmg_lake", *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
            for args in (["auth", "--status"],
                         ["ingest", "--source", f"dropbox:{ROOT}", "--lake", "lake"])]
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    assert f"app {fake.app_key}, account dbid:fake-account" in runs[0].stdout
    assert "files seen" in runs[1].stdout
    said = address + rest + errors + "".join(run.stdout + run.stderr for run in runs)
    assert secret not in said and "fake-access-" not in said


def test_backups_to_dropbox_round_trip(fake: FakeDropbox, tmp_path: Path) -> None:
    from rmg_lake import backup, restore
    from rmg_lake.deliver.dropbox_target import DropboxTarget

    simulate(tmp_path / "inbox", days=2, seed=25)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    big = tmp_path / "inbox" / "video.mp4"  # larger than one upload: a session
    big.write_bytes(bytes(range(256)) * 40_000)
    lake.ingest(tmp_path / "inbox")
    fake.faults = Faults(rate=0.3, kinds=ALL_FAULT_KINDS, seed=5, routes=LINK)  # 30% fail
    target = DropboxTarget(f"dropbox:{ROOT}", fake.client(), attempts=8, chunk=1024 * 1024)
    first = backup(lake, target, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert first.uploaded == first.objects
    assert "/2/files/upload_session/append_v2" in fake.requests
    assert set(fake.injected) == set(ALL_FAULT_KINDS)  # each kind, uploads damaged too
    assert fake.hash_mismatches == fake.injected["truncate"] + fake.injected["corrupt"]
    objects = {path: data for path, data in fake.files().items() if "/objects/" in path}
    assert len(objects) == first.objects  # each whole, under its own hash, and no other
    assert all(hashlib.sha256(data).hexdigest() == "".join(path.split("/")[-2:])
               for path, data in objects.items())
    fake.faults = Faults()
    fake.requests.clear()
    again = backup(lake, target, now=datetime(2026, 11, 21, tzinfo=UTC))
    assert again.uploaded == 0
    assert fake.requests.count("/2/files/upload") == 1  # the manifest, and nothing else
    assert "/2/files/get_metadata" not in fake.requests  # one listing, not a call per file
    fake.faults = Faults(rate=0.3, kinds=ALL_FAULT_KINDS, seed=6, routes=LINK)
    fake.injected.clear()
    restored = restore(target, tmp_path / "restored", version="2026-11-20")
    assert set(fake.injected) == set(ALL_FAULT_KINDS)

    def kept(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for part in ("_log", "raw", "quarantine", "attachments")
                for p in (root / part).rglob("*") if p.is_file()}

    assert kept(restored.root) == kept(lake.root)
    assert all(path.lower().startswith(f"{ROOT}/backups/".lower()) for path in fake.files())


def test_files_added_while_the_listing_is_paged_arrive_exactly_once(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    added: list[str] = []

    def during_listing(page: int) -> None:
        if page == 2 and not added:  # the tablet uploads while rmg-lake pages
            added.append("obs01/photo_late.jpg")
            fake.put(f"{ROOT}/obs01/photo_late.jpg", b"\xff\xd8late")

    fake.on_list_page = during_listing
    lake = open_lake(tmp_path / "lake", create=True)
    runs = [lake.ingest(source(fake)), lake.ingest(source(fake))]
    paths = [f.path for run in runs if run.batch for f in run.batch.files]
    assert sorted(paths).count("obs01/photo_late.jpg") == 1
    assert len(paths) == study.files + 1


def test_odd_remote_names_are_ingested_by_content_and_never_used_as_paths(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    valid = next(p for p in sorted((tmp_path / "inbox").rglob("wip_*.json")))
    odd = {f"{ROOT}/..\u202eevil\x07/{valid.name}": valid.read_bytes(),  # in an odd folder
           f"{ROOT}/obs01/..\\..\\photo\u0301\U0001f9f6.jpg": b"\xff\xd8odd",
           f"{ROOT}/obs01/{'x' * 200}\x1b[31m.json": b"{}"}
    for path, data in odd.items():
        fake.put(path, data)
    run = _cli_against(fake, tmp_path, "ingest", "--source", f"dropbox:{ROOT}", "--lake",
                       "lake", token=fake.refresh_token)
    assert run.returncode == 0, run.stderr
    assert "quarantined obs01/xxx" in run.stdout  # named, with its control codes taken out
    assert not {"\x07", "\x1b", "\u202e"} & set(run.stdout + run.stderr)
    lake = open_lake(tmp_path / "lake")
    batch = lake.batches()[0]
    outcomes = {f.sha256: f for f in batch.files}
    for data in odd.values():  # each is in the batch, kept under its content's hash
        record = outcomes[hashlib.sha256(data).hexdigest()]
        assert hashlib.sha256(data).hexdigest() in record.stored
        assert (lake.root / record.stored).read_bytes() == data
    assert outcomes[hashlib.sha256(valid.read_bytes()).hexdigest()].outcome in {
        "added", "duplicate"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inbox", "lake"]  # nothing outside
    assert {f.path for f in batch.files} >= {printable(p.removeprefix(f"{ROOT}/")) for p in odd}


def test_every_kind_of_bad_file_is_quarantined_from_dropbox_too(
    fake: FakeDropbox, tmp_path: Path,
) -> None:
    from test_hostile import BAD, _case

    expected = {}
    for case in BAD:
        name, data, reasons = _case(case)
        fake.put(f"{ROOT}/{case.name}/{name}", data)
        expected[printable(f"{case.name}/{name}")] = reasons
    lake = open_lake(tmp_path / "lake", create=True)
    batch = lake.ingest(source(fake)).batch
    assert batch is not None and batch.counts["quarantined"] == len(BAD)
    for record in batch.files:
        reasons = expected[record.path]
        assert (record.field or "") == reasons["field"], record.path
        assert reasons["reason"] in (record.reason or ""), record.path


def test_a_deferred_file_that_changed_is_not_tried_again(
    fake: FakeDropbox, tmp_path: Path,
) -> None:
    """Deferred at one version, taken at the next: the old deferral is done with."""
    from test_hostile import DATA, _case

    name, data, _ = _case(DATA / "good" / "knitting-wip")
    fake.put(f"{ROOT}/obs03/{name}", data)
    fake.inject("corrupt", times=6, route="/2/files/download")  # every try of the first run
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(source(fake))
    assert first.counts["deferred"] == 1
    fake.put(f"{ROOT}/obs03/{name}", data.replace(b'"complete"', b'"partial"'))
    second = lake.ingest(source(fake))
    assert second.counts["added"] == 1 and second.vanished == 0
    third = lake.ingest(source(fake))
    assert third.batch is None and third.vanished == 0  # nothing left to try


def test_reports_go_to_dropbox_and_are_never_ingested(fake: FakeDropbox, tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=2, seed=23)
    upload(fake, tmp_path / "inbox")
    long_ago = datetime.now(FACTORY_TZ).date() - timedelta(days=100)
    fake.put(f"{ROOT}/Reports/{long_ago}-report.html", b"a report long gone")  # any case
    fake.put(f"{ROOT}/reports/{long_ago}-flags.csv", b"its flags")
    for n in range(1, 30):  # 30 earlier days in all: the oldest goes
        fake.put(f"{ROOT}/reports/{long_ago + timedelta(days=n)}-report.html", b"older")
    first = _cli_against(fake, tmp_path, "ingest", "--source", f"dropbox:{ROOT}", "--lake",
                         "lake", "--report", token=fake.refresh_token)
    assert first.returncode == 0, first.stderr
    assert f"delivered to dropbox:{ROOT}/reports" in first.stdout
    assert "deleted 2 older report files" in first.stdout
    (page,) = (tmp_path / "lake/reports").glob("*-report.html")
    stored = {path.lower(): data for path, data in fake.files().items()}
    for name in (page.name, page.name.replace("report.html", "flags.csv")):
        assert stored[f"{ROOT}/reports/{name}".lower()] == \
            (tmp_path / "lake/reports" / name).read_bytes()
    assert f"{ROOT}/reports/{long_ago}-report.html".lower() not in stored
    assert f"{ROOT}/reports/{long_ago + timedelta(days=1)}-report.html".lower() in stored
    fake.inject("corrupt", times=5, route="/2/files/upload")  # every try of the first object
    fake.calls.clear()
    refused = _cli_against(fake, tmp_path, "backup", "--lake", "lake", "--to",
                           f"dropbox:{ROOT}", token=fake.refresh_token)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    first_object = next(call for call in fake.calls if call[0] == "/2/files/upload")[1]
    assert first_object is not None and "/backups/objects/" in first_object
    assert first_object.split("/backups/", 1)[1] in " ".join(refused.stderr.split()).lower()
    assert "the bytes arrived damaged (sent 5 times)" in " ".join(refused.stderr.split())
    assert fake.hash_mismatches == 5
    fake.inject("corrupt", route="/2/files/upload")  # damaged twice on the way, then whole
    fake.inject("truncate", route="/2/files/upload")
    backed = _cli_against(fake, tmp_path, "backup", "--lake", "lake", "--to", f"dropbox:{ROOT}",
                          token=fake.refresh_token)
    assert backed.returncode == 0, backed.stderr
    assert fake.injected == {"corrupt": 6, "truncate": 1} and fake.hash_mismatches == 7
    again = _cli_against(fake, tmp_path, "ingest", "--source", f"dropbox:{ROOT}", "--lake",
                         "lake", token=fake.refresh_token)
    assert again.returncode == 0, again.stderr
    assert "Nothing new" in again.stdout and "deleted or moved" not in again.stdout
    paths = {row[0] for row in open_lake(tmp_path / "lake").table("history")
             .select("path").iter_rows()}
    assert not any(p.startswith(("reports/", "backups/")) for p in paths)

"""Encrypted backups: with a study secret, a backup folder (a USB disk, Dropbox) holds
nothing its holder can read or recognise, and restores byte for byte only with that
secret; a damaged or swapped file is refused by name; plain and encrypted never mix.
And CSV files quote what a spreadsheet would run as a formula."""

from __future__ import annotations

import hashlib
import io
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import polars as pl
import pytest
from conftest import run_in
from dropbox_fake import FakeDropbox

from rmg_lake import LakeError, backup, open_lake, prune, restore, simulate, versions
from rmg_lake.contract.models import PERSONAL
from rmg_lake.contract.schema import contract_schemas
from rmg_lake.deliver.backup_kind import ENCRYPTED
from rmg_lake.deliver.cells import csv_safe
from rmg_lake.deliver.sealed import MAGIC
from rmg_lake.deliver.secret import StudySecret, init_secret
from rmg_lake.deliver.targets import FolderTarget

ROOT = "/Apps/RMG Observer"
KEPT = ("_log", "raw", "quarantine", "attachments", "events", "records")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake of two days: observations, a quarantined file and photos."""
    root = tmp_path_factory.mktemp("sealed")
    simulate(root / "inbox", days=2, observers=2, seed=41)
    open_lake(root / "lake", create=True).ingest(root / "inbox")
    return root / "lake"


@pytest.fixture
def secret() -> StudySecret:
    return init_secret()  # (in this test's own config folder: conftest)


def kept(lake: Path) -> dict[str, bytes]:
    """What a backup keeps of a lake, by path."""
    return {p.relative_to(lake).as_posix(): p.read_bytes()
            for part in ("_meta.json", *KEPT) for p in sorted([lake / part,
                                                               *(lake / part).rglob("*")])
            if p.is_file()}


def telltales(lake: Path) -> set[bytes]:
    """What must appear nowhere in an encrypted backup: every worker's and supervisor's
    code, every key of the contract's JSON, and the SHA-256 of every file it backs up."""
    codes = {code for task in ("roster", "wip", "interactions")
             for frame in [open_lake(lake).table(task)]
             for column in sorted(PERSONAL & set(frame.columns))
             for code in frame[column].drop_nulls().unique()}
    assert len(codes) > 20
    keys: set[str] = set()

    def properties(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node.get("properties", {}))
            for value in node.values():
                properties(value)
        elif isinstance(node, list):
            for value in node:
                properties(value)

    properties(contract_schemas())
    digests = {hashlib.sha256(data).hexdigest() for data in kept(lake).values()}
    return ({c.encode() for c in codes} | {f'"{k}"'.encode() for k in keys}
            | {d.encode() for d in digests})


def found(files: dict[str, bytes], lake: Path) -> list[str]:
    """The telltales of `lake` in the names (without their slashes) or the bytes of
    `files`."""
    return sorted({tell.decode() for tell in telltales(lake) for name, data in files.items()
                   if tell in name.replace("/", "").encode() or tell in data})


def folder_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_encrypted_backup_restores_byte_for_byte(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    target = FolderTarget(tmp_path / "usb")
    done = backup(open_lake(study), target)
    assert done.key_id == secret.key_id and done.manifest.endswith(".enc")
    assert done.uploaded == done.objects == len(kept(study))
    restored = restore(target, tmp_path / "restored")
    assert kept(restored.root) == kept(study)


def test_the_backup_folder_shows_nothing_of_the_study(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    backup(open_lake(study), FolderTarget(tmp_path / "usb"))
    files = folder_files(tmp_path / "usb")
    assert found(files, study) == []
    sealed = {name for name, data in files.items() if data.startswith(MAGIC)}
    assert sealed == set(files) - {ENCRYPTED}  # every object and the manifest
    plain = FolderTarget(tmp_path / "plain")  # (what the same lake shows unencrypted)
    backup(open_lake(study), plain, plain=True)
    assert len(found(folder_files(tmp_path / "plain"), study)) > 100


def test_a_second_encrypted_backup_uploads_only_its_manifest(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    target = FolderTarget(tmp_path / "usb")
    backup(open_lake(study), target, now=datetime(2026, 11, 20, tzinfo=UTC))
    before = set(folder_files(tmp_path / "usb"))
    again = backup(open_lake(study), target, now=datetime(2026, 11, 21, tzinfo=UTC))
    assert again.uploaded == 0
    assert set(folder_files(tmp_path / "usb")) - before == {again.manifest}
    assert len(versions(target)) == 2


def _damage(usb: Path, how: str) -> str:
    """Damage the backup in `usb` (`how`); the key of the file damaged."""
    objects = sorted((usb / "backups" / "objects").glob("*/*"))
    manifest = next((usb / "backups").glob("*.enc"))
    if how == "swap":  # one object's bytes under another's name
        shutil.copyfile(objects[0], objects[1])
        victim = objects[1]
    else:
        victim = objects[len(objects) // 2] if how == "object" else manifest
        data = bytearray(victim.read_bytes())
        data[-20] ^= 1
        victim.write_bytes(bytes(data))
    return victim.relative_to(usb).as_posix()


@pytest.mark.parametrize("how", ["object", "manifest", "swap"])
def test_a_damaged_or_swapped_file_is_refused_by_name(
    study: Path, secret: StudySecret, tmp_path: Path, how: str,
) -> None:
    backup(open_lake(study), FolderTarget(tmp_path / "usb"))
    damaged = _damage(tmp_path / "usb", how)
    with pytest.raises(LakeError, match="fails authentication") as refused:
        restore(FolderTarget(tmp_path / "usb"), tmp_path / "restored")
    assert damaged in str(refused.value)
    assert not (tmp_path / "restored").exists()  # nothing half-made is left


def test_without_the_secret_or_with_another_restore_is_one_line(
    study: Path, secret: StudySecret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backup(open_lake(study), FolderTarget(tmp_path / "usb"))
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "none"))
    without = run_in(capsys, "restore", str(tmp_path / "usb"), "--lake", str(tmp_path / "a"))
    assert without.returncode == 1
    assert without.stderr.splitlines() == [
        f"error: {tmp_path / 'usb'}: this backup is encrypted, and this computer has no "
        f"study secret to open it — copy the study's secret to {tmp_path / 'none'} (then "
        "chmod 600), or name it in RMG_LAKE_SECRET"]
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "another"))
    other = init_secret()
    wrong = run_in(capsys, "restore", str(tmp_path / "usb"), "--lake", str(tmp_path / "b"))
    assert wrong.returncode == 1
    assert len(wrong.stderr.splitlines()) == 1
    assert (f"was encrypted with another study secret (key id {secret.key_id}; this "
            f"computer's is {other.key_id})") in wrong.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_plain_and_encrypted_never_mix(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    lake = ["--lake", str(study)]
    plain = run_in(capsys, "backup", "--to", str(tmp_path / "plain"), *lake)  # no secret yet
    assert plain.returncode == 0, plain.stderr
    assert "(not encrypted)" in plain.stdout
    assert "warning: the backup is not encrypted" in plain.stderr
    assert "`rmg-lake secret init`" in plain.stderr  # … and how to make it so
    init_secret()
    mixed = run_in(capsys, "backup", "--to", str(tmp_path / "plain"), *lake)
    assert mixed.returncode == 1
    assert "holds plain (unencrypted) backups: an encrypted one is not mixed in" in \
        mixed.stderr
    on_purpose = run_in(capsys, "backup", "--to", str(tmp_path / "plain"), "--plain", *lake)
    assert on_purpose.returncode == 0, on_purpose.stderr
    assert "warning: the backup is not encrypted" in on_purpose.stderr
    assert "secret init" not in on_purpose.stderr
    sealed = run_in(capsys, "backup", "--to", str(tmp_path / "sealed"), *lake)
    assert sealed.returncode == 0, sealed.stderr
    assert "(encrypted, key id" in sealed.stdout and sealed.stderr == ""
    refused = run_in(capsys, "backup", "--to", str(tmp_path / "sealed"), "--plain", *lake)
    assert refused.returncode == 1
    assert "holds encrypted backups: a plain one is not mixed in" in refused.stderr
    assert len(versions(FolderTarget(tmp_path / "plain"))) == 2
    assert len(versions(FolderTarget(tmp_path / "sealed"))) == 1


def test_prune_reads_the_encrypted_versions(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    target = FolderTarget(tmp_path / "usb")
    for day in (1, 2, 3):
        backup(open_lake(study), target, now=datetime(2026, 11, day, tzinfo=UTC))
    stray = tmp_path / "usb" / "backups" / "objects" / "00" / ("0" * 62)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"an object no version names")
    pruned = prune(target, now=datetime(2026, 12, 1, tzinfo=UTC), every_version_days=0,
                   weekly_days=0)
    assert len(pruned.deleted) == 2 and pruned.objects_deleted == 1
    assert kept(restore(target, tmp_path / "restored").root) == kept(study)


def test_a_file_cut_short_or_a_manifest_renamed_is_refused_by_name(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    usb = tmp_path / "usb"
    for day in (1, 2):
        backup(open_lake(study), FolderTarget(usb), now=datetime(2026, 11, day, tzinfo=UTC))
    first, second = sorted((usb / "backups").glob("*.enc"))
    whole = second.read_bytes()
    shutil.copyfile(first, second)  # version 1 under version 2's name
    with pytest.raises(LakeError, match="fails authentication") as refused:
        restore(FolderTarget(usb), tmp_path / "a")
    assert second.name in str(refused.value)
    second.write_bytes(whole)
    victim = sorted((usb / "backups" / "objects").glob("*/*"))[3]
    for cut in (40, 20):  # below the tag; below the header
        victim.write_bytes(victim.read_bytes()[:cut])
        with pytest.raises(LakeError, match="is damaged") as refused:
            restore(FolderTarget(usb), tmp_path / "b")
        assert victim.relative_to(usb).as_posix() in str(refused.value)


def test_what_anyone_with_the_folder_puts_there_is_never_restored(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    """A plain version planted in an encrypted folder, naming a file outside the lake."""
    usb = tmp_path / "usb"
    backup(open_lake(study), FolderTarget(usb), now=datetime(2026, 11, 1, tzinfo=UTC))
    planted = b"planted"
    digest = hashlib.sha256(planted).hexdigest()
    (usb / "backups" / "objects" / digest[:2]).mkdir(exist_ok=True)
    (usb / "backups" / "objects" / digest[:2] / digest[2:]).write_bytes(planted)
    (usb / "backups" / "2026-11-02T000000.000000Z.json").write_bytes(orjson.dumps(
        {"format": 1, "objects": [{"path": "../planted.txt", "sha256": digest, "size": 7}]}))
    with pytest.raises(LakeError, match="both plain and encrypted"):
        restore(FolderTarget(usb), tmp_path / "restored")
    with pytest.raises(LakeError, match="both plain and encrypted"):
        backup(open_lake(study), FolderTarget(usb))
    (usb / "backups" / "2026-11-02T000000.000000Z.json").rename(tmp_path / "plain.json")
    (usb / ENCRYPTED).unlink()  # the mark gone: the sealed version still says what it is
    with pytest.raises(LakeError, match="holds encrypted backups"):
        backup(open_lake(study), FolderTarget(usb), plain=True)
    assert kept(restore(FolderTarget(usb), tmp_path / "restored").root) == kept(study)
    plain = FolderTarget(tmp_path / "plain")  # and in a plain folder, a path leaving the lake
    (tmp_path / "plain" / "backups").mkdir(parents=True)
    (tmp_path / "plain.json").rename(tmp_path / "plain" / "backups" /
                                     "2026-11-02T000000.000000Z.json")
    with pytest.raises(LakeError, match="manifest is damaged"):
        restore(plain, tmp_path / "elsewhere" / "lake")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "planted.txt").exists()


def test_another_secret_neither_joins_nor_prunes_a_folder(
    study: Path, secret: StudySecret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = FolderTarget(tmp_path / "usb")
    for day in (1, 2, 3):
        backup(open_lake(study), target, now=datetime(2026, 11, day, tzinfo=UTC))
    before = folder_files(tmp_path / "usb")
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "another"))
    other = init_secret()
    with pytest.raises(LakeError, match=f"another study secret .key id {secret.key_id}; "
                                        f"this computer's is {other.key_id}"):
        backup(open_lake(study), target)
    with pytest.raises(LakeError, match="another study secret"):
        prune(target, now=datetime(2026, 12, 1, tzinfo=UTC), every_version_days=0,
              weekly_days=0)
    (tmp_path / "another").unlink()
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "none"))
    with pytest.raises(LakeError, match="no study secret"):
        prune(target, now=datetime(2026, 12, 1, tzinfo=UTC), every_version_days=0,
              weekly_days=0)
    assert folder_files(tmp_path / "usb") == before  # nothing deleted, nothing added


def test_a_sealed_file_s_size_is_padded(
    study: Path, secret: StudySecret, tmp_path: Path,
) -> None:
    """Sizes in buckets (Padmé, at most 12% more): a file's exact size does not single it
    out in the folder."""
    from rmg_lake.deliver.sealed import padded

    backup(open_lake(study), FolderTarget(tmp_path / "usb"))
    sealed = sorted(p.stat().st_size for p in (tmp_path / "usb" / "backups" / "objects")
                    .glob("*/*"))
    plain = sorted(len(data) for data in kept(study).values())
    overhead = len(MAGIC) + 13 + 12 + 16  # header, nonce, tag
    assert sealed == sorted(overhead + padded(size + 8) for size in plain)
    assert len(set(sealed)) < len(set(plain)) * 3 // 4


def test_no_message_shows_the_secret(
    study: Path, secret: StudySecret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    said = [run_in(capsys, "backup", "--to", str(tmp_path / "usb"), "--lake", str(study))]
    _damage(tmp_path / "usb", "object")
    said.append(run_in(capsys, "restore", str(tmp_path / "usb"), "--lake", str(tmp_path / "a")))
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "another"))
    init_secret()
    said.append(run_in(capsys, "restore", str(tmp_path / "usb"), "--lake", str(tmp_path / "b")))
    said.append(run_in(capsys, "backup", "--to", str(tmp_path / "usb"), "--lake", str(study)))
    assert [run.returncode for run in said] == [0, 1, 1, 1]
    text = "".join(run.stdout + run.stderr for run in said)
    assert secret.key.hex() not in text and "Traceback" not in text
    assert secret.key_id in text  # (only its key id)


def test_an_encrypted_backup_to_dropbox_holds_nothing_dropbox_can_read(
    study: Path, secret: StudySecret, fake: FakeDropbox, tmp_path: Path,
) -> None:
    from rmg_lake.deliver.dropbox_target import DropboxTarget

    target = DropboxTarget(f"dropbox:{ROOT}", fake.client())
    done = backup(open_lake(study), target)
    assert done.key_id == secret.key_id
    assert found(fake.files(), study) == []
    assert kept(restore(target, tmp_path / "restored").root) == kept(study)
    fake.requests.clear()
    assert backup(open_lake(study), target).uploaded == 0
    assert fake.requests.count("/2/files/upload") == 1  # the manifest, and nothing else


def test_a_text_a_spreadsheet_would_run_is_quoted_in_every_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """A folder or a file named like a formula (anyone with the sync folder can name one):
    in CSV, the cell starts with `'`, which Excel and LibreOffice show as text."""
    simulate(tmp_path / "made", days=1, observers=1, seed=43, bad_files=False)
    first = sorted((tmp_path / "made").rglob("wip_*.json"))[0]
    (tmp_path / "inbox" / "=1+2").mkdir(parents=True)
    shutil.copy2(first, tmp_path / "inbox" / "=1+2" / first.name)
    (tmp_path / "inbox" / "@SUM(A1).json").write_text("not json")
    lake = ["--lake", str(tmp_path / "lake")]
    assert run_in(capsys, "ingest", "--source", str(tmp_path / "inbox"), *lake).returncode == 0
    exported = run_in(capsys, "export", *lake, "--out", str(tmp_path / "out"), "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    observations = pd.read_csv(tmp_path / "out" / "observations.csv")
    assert observations["source_path"].tolist() == [f"'=1+2/{first.name}"]
    flags = run_in(capsys, "check", *lake, "--all", "--format", "csv")
    details = pd.read_csv(io.StringIO(flags.stdout))["detail"]
    assert any(d.startswith("'@SUM(A1).json") for d in details)
    assert not any(d.startswith(("=", "+", "-", "@")) for d in details)


@pytest.mark.parametrize("text", ["=1+2", "+880 1711", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_each_start_of_a_formula_is_quoted(text: str) -> None:
    frame = pl.DataFrame({"text": [text, "a = b", None], "n": [-1, 2, 3]})
    assert csv_safe(frame).to_dict(as_series=False) == {
        "text": ["'" + text, "a = b", None], "n": [-1, 2, 3]}



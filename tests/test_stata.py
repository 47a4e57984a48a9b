"""`rmg-lake export --format dta`: Stata files, read back with pandas and held against the
lake's frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from conftest import Ingested

from rmg_lake import export, init_secret
from rmg_lake.deliver.stata import CODES


@pytest.fixture(scope="module")
def exported(ingested: Ingested, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(ingested.lake, tmp_path_factory.mktemp("stata") / "out", fmt="dta").folder


def test_each_frame_reads_back_in_stata_as_it_is_in_the_lake(exported: Path,
                                                              ingested: Ingested) -> None:
    wip = ingested.lake.frame("wip", "knitting", "treatment")
    back = pd.read_stata(exported / "wip_knitting_treatment.dta")
    assert len(back) == wip.height > 0
    assert list(back["observation_id"]) == wip["observation_id"].to_list()
    assert list(back["mc_status"].astype(str)) == wip["mc_status"].to_list()  # labelled
    assert [None if pd.isna(v) else int(v) for v in back["back"]] == wip["back"].to_list()
    started = [t.to_pydatetime() for t in back["started_at"]]  # a Stata datetime, UTC
    assert started == [t.replace(tzinfo=None) for t in wip["started_at"]]
    assert list(back["day"].dt.date) == wip["day"].to_list()
    completion = pd.read_stata(exported / "completion.dta")
    assert list(completion["status"].astype(str)) == \
        ingested.lake.completion()["status"].to_list()


def test_variables_are_labelled_and_coded_fields_the_same_numbers_in_every_file(
        exported: Path) -> None:
    for name in ("observations.dta", "wip_knitting_treatment.dta", "completion.dta"):
        with pd.io.stata.StataReader(exported / name) as reader:
            labels, values = reader.variable_labels(), reader.value_labels()
        assert all(labels.values()), name  # every variable says what it is
        for column, codes in values.items():
            assert codes == dict(enumerate(CODES[column], 1)), (name, column)
    assert "status" in values


def test_a_pseudonymised_stata_export_holds_no_code(ingested: Ingested, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "secret"))
    done = export(ingested.lake, tmp_path / "out", fmt="dta", secret=init_secret())
    codes = {c for c in ingested.lake.table("wip")["worker_id"] if c}
    for file in done.folder.glob("*.dta"):
        frame = pd.read_stata(file, convert_categoricals=False)
        cells = {str(v) for column in frame.columns for v in frame[column]}
        assert not codes & cells, file.name
    assert pl.from_pandas(pd.read_stata(done.folder / "wip_knitting_treatment.dta"))[
        "worker_id"].str.starts_with("p_").any()

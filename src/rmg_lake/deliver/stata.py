"""A frame as a Stata 118 `.dta` file, for analysts who work in Stata.

Each variable is labelled with its meaning from the data dictionary; the coded fields
(`status`, `mc_status`, `component`, `initiator`, `topic`) are numbers with value labels,
the same numbers in every file; instants are Stata datetimes (`%tc`, UTC: Stata keeps no
time zone) and days Stata dates (`%td`). Written by pandas' `to_stata`.
"""

from __future__ import annotations

import io
from importlib.util import find_spec
from typing import Any, get_args

import polars as pl

from rmg_lake.contract.models import Interaction, KnittingWipMachine, RosterMachine
from rmg_lake.deliver.dictionary import described
from rmg_lake.errors import LakeError

__all__ = ["CODES", "dta_bytes"]


def _literal(annotation: Any) -> tuple[str, ...]:
    """The values of a `Literal[...]` (or of one in `… | None`)."""
    found = [a for a in get_args(annotation) if isinstance(a, str)]
    return tuple(found) or tuple(v for arg in get_args(annotation) for v in _literal(arg))


# coded field → its values, numbered from 1 in this order in every file
CODES: dict[str, tuple[str, ...]] = {
    "status": ("complete", "partial", "aborted", "done", "missing", "off"),  # observations,
    "mc_status": _literal(RosterMachine.model_fields["mc_status"].annotation),  # completion
    "component": _literal(KnittingWipMachine.model_fields["component"].annotation),
    "initiator": _literal(Interaction.model_fields["initiator"].annotation),
    "topic": _literal(Interaction.model_fields["topic"].annotation),
}
_LABEL = 80  # characters: Stata's longest variable label


def dta_bytes(frame: pl.DataFrame, name: str) -> bytes:
    """`frame` (the export's file `name`, list columns already joined as text) as .dta."""
    if find_spec("pandas") is None:  # (to_pandas and to_stata need it)
        raise LakeError("a Stata export needs pandas", hint="pip install 'rmg-lake[pandas]'")
    coded = {column: _values(frame[column], CODES[column])
             for column in frame.columns if column in CODES}
    times = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    days = [c for c, t in frame.schema.items() if t == pl.Date]
    table = frame.with_columns(
        *(pl.col(c).replace_strict(list(values), range(1, len(values) + 1), default=None,
                                   return_dtype=pl.Int32) for c, values in coded.items()),
        *(pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for c in times),
        *(pl.col(c).cast(pl.Int8) for c, t in frame.schema.items() if t == pl.Boolean))
    buffer = io.BytesIO()
    table.to_pandas().to_stata(
        buffer, version=118, write_index=False,
        convert_dates={**dict.fromkeys(times, "tc"), **dict.fromkeys(days, "td")},
        variable_labels={c: _label(c, name) for c in frame.columns},
        value_labels={c: dict(enumerate(values, 1)) for c, values in coded.items()})
    return buffer.getvalue()


def _values(column: pl.Series, known: tuple[str, ...]) -> tuple[str, ...]:
    """The coded values: the contract's, then any other the column holds (none should)."""
    return known + tuple(sorted(v for v in column.unique() if v is not None and v not in known))


def _label(column: str, name: str) -> str:
    """A variable's label: its meaning, as the data dictionary says it, cut to fit."""
    meaning = described(column, name)[0] or column
    return meaning if len(meaning) <= _LABEL else meaning[:_LABEL - 1] + "…"

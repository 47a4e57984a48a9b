"""Cells a spreadsheet must not run: a text starting with `=`, `+`, `-` or `@` (or a tab
or a carriage return before one) is a formula to Excel and LibreOffice when they open a
CSV file. Such a text is written with a `'` before it, which they show as the text it is
(OWASP's advice on CSV injection). Texts come from the field: a file's name, a note.
"""

from __future__ import annotations

import polars as pl

__all__ = ["FORMULA_STARTS", "csv_safe"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every text that a spreadsheet would run as a formula quoted by `'`."""
    texts = [c for c, dtype in frame.schema.items() if dtype == pl.String]
    starts = "^[" + "".join(FORMULA_STARTS).replace("-", "\\-") + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(starts)).then("'" + pl.col(c)).otherwise(pl.col(c))
        .alias(c) for c in texts)

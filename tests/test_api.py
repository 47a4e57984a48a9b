"""The public API is what `__all__` says, and every name in it exists."""

from __future__ import annotations

import rmg_lake


def test_public_names() -> None:
    assert sorted(rmg_lake.__all__) == sorted(
        name for name in dir(rmg_lake)
        if not name.startswith("_") and not isinstance(getattr(rmg_lake, name), type(rmg_lake))
    )

"""How the library reports progress on long work without knowing who is watching.

A `Track` wraps an iterable of known length with a description and yields the same
items; the CLI passes one that draws a rich progress bar, a notebook may pass none.
When the work is moving bytes (downloads), `size` tells how many bytes each item carries
and `total_size` how many there are in all, so the bar can show both files and bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ["Track"]


class Track(Protocol):
    def __call__(self, items: Iterable[Any], total: int, what: str, *,
                 size: Callable[[Any], int] | None = None,
                 total_size: int = 0) -> Iterable[Any]: ...

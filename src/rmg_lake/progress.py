"""How the library reports progress on long work without knowing who is watching.

A `Track` wraps an iterable of known length with a description and yields the same
items; the CLI passes one that draws a rich progress bar, a notebook may pass none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Track"]

Track = Callable[[Iterable[Any], int, str], Iterable[Any]]

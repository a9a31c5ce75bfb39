"""Many requests at once (to a model's server, to a judge), with results in a fixed order, so that what
is recorded never depends on how many ran at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_order(function: Callable[[T], R], items: Sequence[T], concurrency: int) -> Iterator[tuple[T, R]]:
    """(item, function(item)) for each item, in the order of `items`, up to `concurrency` running at once.
    An error stops the walk at its item; what has not started then never does."""

    pool = ThreadPoolExecutor(max(concurrency, 1))
    try:
        yield from zip(items, pool.map(function, items), strict=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

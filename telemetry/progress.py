"""Progress of long offline work (replay, evaluate, benches, training on request): a bar or a
spinner on a terminal, else none.

Shared by analytics and bench/ (device_sims, which imports nothing of ours, draws its own with
the same library: rich).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def progress(items: Sequence[T] | Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items``, drawing a rich progress bar on stderr only when it is a terminal
    (logs, CI and pipes stay clean)."""
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    size = total if total is not None else (len(items) if isinstance(items, Sequence) else None)
    yield from track(items, description=label, total=size, console=Console(stderr=True))


@contextmanager
def spinner(label: str) -> Iterator[None]:
    """A spinner with the elapsed time while the block runs (work of unknown length, such as a
    fit the service runs on request), on stderr only when it is a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn(label), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        bar.add_task(label, total=None)
        yield

"""Progress on long batched work: the batch solved in equal chunks under a progress bar.

A compiled call cannot report how far it has got; work over many independent problems
(bootstrap resamples, proposal budgets) is split into ten chunks of one shape (one
compilation: the last chunk padded by repeating its final problem), and a ``tqdm`` bar
advances after each. The bar shows where stderr is a terminal only; the chunks are solved
either way, so a command's results do not depend on where its output goes. Against one
call over the whole batch, results agree to rounding (XLA may vectorise a batch of another
size differently; measured: 2e-16 on proposal weights, bit-identical bootstraps).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["in_chunks"]

#: Chunks a batch is split into when progress is shown.
CHUNKS = 10


def in_chunks(solve: Callable, n: int, progress: bool, desc: str, unit: str) -> tuple:
    """``solve(rows) -> tuple of arrays with a leading axis of len(rows)`` over rows
    ``0..n-1``: in one call, or with ``progress`` in :data:`CHUNKS` equal chunks under a
    progress bar; the arrays joined."""
    if not progress or n < 2 * CHUNKS:
        return tuple(solve(np.arange(n)))
    from tqdm.auto import tqdm

    size = -(-n // CHUNKS)
    parts = []
    with tqdm(total=n, desc=desc, unit=unit, disable=None, leave=False) as bar:
        for first in range(0, n, size):
            real = min(size, n - first)
            out = solve(np.minimum(np.arange(first, first + size), n - 1))
            parts.append(tuple(np.asarray(a)[:real] for a in out))
            bar.update(real)
    return tuple(np.concatenate(p) for p in zip(*parts))

"""Starting points of a multi-start fit, as rows of optimiser coordinates.

Starts come from the law's published grid, from random draws over the ranges declared with
its parameters' constraints (uniform in the optimiser's coordinate: log-uniform for positive
ranges), from a grid of values per parameter, from a table with one start per row, or from
``init`` alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws.laws import Law
from jaxlaws.problem import Layout

__all__ = ["make_starts", "draws_starts", "DEFAULT_RANDOM_STARTS"]

#: Random starts drawn when a law has no published grid and ``starts`` is not given.
DEFAULT_RANDOM_STARTS = 64


def _u(c, values) -> np.ndarray:
    return np.asarray(c.inverse(np.asarray(values, np.float64)))


def _random_ranges(law: Law, layout: Layout, init_map) -> list[tuple[float, float]]:
    """The range in optimiser coordinates random starts of each free field draw from."""
    grid = dict(zip(law.param_names, law.start_grid)) if law.start_grid is not None else {}
    out, missing = [], []
    for name, _, c, _ in layout.free_fields():
        if c.range is not None:
            lo, hi = sorted(float(v) for v in _u(c, c.range))
        elif name in grid:
            u = _u(c, grid[name])
            lo, hi = float(np.min(u)), float(np.max(u))
        elif name in init_map:
            u0 = _u(c, init_map[name])
            lo, hi = float(np.min(u0)) - 1.0, float(np.max(u0)) + 1.0
        else:
            missing.append(name)
            continue
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        box_lo, box_hi = c.box
        out.append((max(lo, box_lo), min(hi, box_hi)))
    if missing:
        raise ValueError(
            f"law {law.name!r} has no range for random starts of {missing}: declare one with the "
            "constraint (constraints.positive.within(lo, hi), constraints.interval(lo, hi)), or pass "
            "init= with a value for each, or starts= as a mapping of values per parameter"
        )
    return out


def draws_starts(law: Law, starts) -> bool:
    """Whether ``starts`` asks jaxlaws to draw random starts (an int, or ``None`` for a law
    without a published grid): such a multi-start may draw more while its stopping rule
    does not hold."""
    if starts is None:
        return law.start_grid is None
    return isinstance(starts, int | np.integer) and not isinstance(starts, bool)


def make_starts(law: Law, layout: Layout, starts, *, seed: int = 0, init=None, stream: int = 0) -> np.ndarray:
    """Starts as rows of the law's free optimiser coordinates, shape ``(S, P_free)``.

    Args:
        starts: ``None`` (the law's published grid if it has one, else
            :data:`DEFAULT_RANDOM_STARTS` random starts), ``"grid"``, ``"init"`` (only
            ``init``), an int (that many random starts from ``seed``, drawn uniformly in the
            optimiser's coordinates over each parameter's declared range, else the range of
            the law's grid, else ``init`` +- 1), a mapping of parameter name to values (their
            product is the grid; missing free fields take ``init``), a DataFrame with one
            start per row (paper parametrisation), or an array ``(S, P_free)`` of optimiser
            coordinates.
        seed: for random starts.
        init: parameters (paper parametrisation) for fields a grid does not set.
        stream: ``0`` for the first random starts of ``seed``; ``k > 0`` for the ``k``-th
            batch drawn after them (an independent stream of the same seed).

    Raises:
        ValueError: in one line, naming what is missing (a parameter with no range, a
            column of the starts table, ...).
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    free = [(n, s, c) for n, s, c, _ in layout.free_fields()]
    init_map = dict(zip(law.param_names, init)) if init is not None else {}
    if starts is None:
        starts = "grid" if law.start_grid is not None else DEFAULT_RANDOM_STARTS
    if isinstance(starts, str) and starts == "init":
        if init is None:
            raise ValueError("starts='init' needs init= (--init on the command line)")
        return layout.pack(init)[None, :]
    if isinstance(starts, np.ndarray | jnp.ndarray) and np.ndim(starts) == 2:
        arr = np.asarray(starts, np.float64)
        if arr.shape[1] != layout.law_size:
            raise ValueError(f"starts has {arr.shape[1]} columns; the free parameters need {layout.law_size}")
        return arr
    if isinstance(starts, pd.DataFrame):
        missing = [n for n, _, _ in free if n not in starts.columns]
        if missing:
            raise ValueError(f"starts lacks columns {missing} for free parameters")
        rows = []
        for _, row in starts.iterrows():
            vals = [
                np.broadcast_to(np.asarray(row[n], np.float64), s) if f else None
                for n, s, f in zip(layout.names, layout.shapes, layout.free)
            ]
            rows.append(layout.pack(vals))
        return np.stack(rows)
    grid = dict(zip(law.param_names, law.start_grid)) if law.start_grid is not None else {}
    if isinstance(starts, str) and starts == "grid":
        if not grid:
            raise ValueError(
                f"law {law.name!r} has no published start grid: pass starts= (an int for random "
                "starts, a mapping of grids, or a DataFrame)"
            )
        starts = {n: grid[n] for n, _, _ in free}
    if isinstance(starts, Mapping):
        unknown = sorted(set(starts) - set(layout.free_names))
        if unknown:
            raise ValueError(
                f"starts names {unknown}, which are not free parameters {list(layout.free_names)}"
            )
        axes = []
        for n, s, c in free:
            if n in starts:
                vals = np.atleast_1d(np.asarray(starts[n], np.float64))
            elif n in init_map:
                vals = np.asarray(init_map[n], np.float64)[None]
            else:
                raise ValueError(f"no start value for free parameter {n!r}: give it in starts or init")
            axes.append([np.ravel(np.broadcast_to(_u(c, v), s)) for v in vals])
        return np.stack([np.concatenate(combo) for combo in itertools.product(*axes)])
    if isinstance(starts, int | np.integer) and not isinstance(starts, bool):
        if starts < 1:
            raise ValueError(f"starts must be at least 1, got {starts}")
        ranges = _random_ranges(law, layout, init_map)
        rng = np.random.default_rng(seed if stream == 0 else (seed, stream))
        cols = [
            rng.uniform(lo, hi, size=(int(starts), math.prod(s))) for (lo, hi), (_, s, _) in zip(ranges, free)
        ]
        return np.concatenate(cols, axis=1) if cols else np.zeros((int(starts), 0))
    raise ValueError(f"cannot make starts from {starts!r}")

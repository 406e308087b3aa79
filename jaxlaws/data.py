"""Tables in: column mapping and validation at the Python boundary.

Every check raises ``ValueError`` with a one-line message that names the column, the row
(the table's own index label) and the offending value, so a user mistake never surfaces as
a traceback from inside JAX.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jaxlaws.laws._law import Law

__all__ = ["LawData", "prepare", "mixture_inputs"]

#: Inputs that may be zero (a pool left out of a mixture); all others must be positive.
NONNEGATIVE_INPUTS = frozenset({"weights"})


class LawData:
    """Validated inputs and target of one table, as float64 NumPy arrays.

    Attributes:
        inputs: tuple of arrays in the law's input order.
        y: the target, shape ``(n,)``.
        columns: the table columns used for each law input, and for the target.
        index: the table's row labels (for messages and for joining results back).
    """

    def __init__(self, inputs, y, columns, index):
        self.inputs = inputs
        self.y = y
        self.columns = columns
        self.index = index

    def __len__(self) -> int:
        return int(self.y.shape[0])


def _column_error(name: str, role: str, available) -> ValueError:
    close = difflib.get_close_matches(name, [str(c) for c in available], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(
        f"missing column {name!r} for {role}{hint}; the table has columns {[str(c) for c in available]}"
    )


def _as_float(values, column: str, index) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr[:, None]
    out = np.empty(flat.shape, dtype=np.float64)
    for i in range(flat.shape[0]):
        for j in range(flat.shape[1]):
            v = flat[i, j]
            try:
                out[i, j] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"column {column!r}, row {index[i]!r}: {v!r} is not a number") from None
    return out.reshape(arr.shape)


def _check_values(arr: np.ndarray, column: str, index, *, positive: bool, nonnegative: bool):
    rows = arr.reshape(arr.shape[0], -1)
    bad = ~np.isfinite(rows)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"column {column!r}, row {index[i]!r}: value {float(rows[i][bad[i]][0])!r} is not finite"
        )
    if positive and (rows <= 0).any():
        i = int(np.argwhere(rows <= 0)[0][0])
        raise ValueError(
            f"column {column!r}, row {index[i]!r}: value {float(rows[i][rows[i] <= 0][0])!r} must be positive"
        )
    if nonnegative and (rows < 0).any():
        i = int(np.argwhere(rows < 0)[0][0])
        raise ValueError(
            f"column {column!r}, row {index[i]!r}: value {float(rows[i][rows[i] < 0][0])!r} "
            "must be non-negative"
        )


def prepare(
    law: Law,
    data: pd.DataFrame | Mapping[str, Any],
    *,
    columns: Mapping[str, str] | None = None,
    target: str | None = None,
    positive_target: bool = True,
) -> LawData:
    """Pick and validate the columns a law needs.

    Args:
        law: the law to be fitted.
        data: a ``pandas.DataFrame``, or a mapping of column name to array (per-pool inputs
            such as ``sizes`` and ``weights`` of ``filtering_mixture`` are 2-D arrays).
        columns: law input name -> column name, for tables whose names differ from the
            law's (``{"N": "params", "D": "tokens"}``).
        target: the column to fit (default: the law's target, e.g. ``"loss"``).
        positive_target: require a positive target (log-space objectives).

    Returns:
        :class:`LawData`.

    Raises:
        ValueError: a missing or misspelt column, text in a number column, a NaN or
            infinite value, a non-positive size, or an empty table; the message names the
            column, the row and the value.
    """
    if isinstance(data, pd.DataFrame):
        table = data
        index = list(data.index)
        available = list(data.columns)
        get = lambda c: data[c].to_numpy()  # noqa: E731
    elif isinstance(data, Mapping):
        table = data
        available = list(data.keys())
        wanted = [columns.get(n, n) for n in law.inputs] if columns else list(law.inputs)
        wanted.append(target or (columns or {}).get(law.target, law.target))
        lengths = {c: len(np.atleast_1d(data[c])) for c in wanted if c in data}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns have different numbers of rows: {lengths}")
        index = list(range(max(lengths.values(), default=0)))
        get = lambda c: np.atleast_1d(np.asarray(table[c]))  # noqa: E731
    else:
        raise ValueError(
            f"data must be a pandas DataFrame or a mapping of columns, got {type(data).__name__}"
        )
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(law.inputs) - {law.target})
    if unknown:
        raise ValueError(
            f"columns maps {unknown}, which are not inputs of law {law.name!r}: {list(law.inputs)}"
        )
    target = target or columns.get(law.target, law.target)
    used = {}
    inputs = []
    for name in law.inputs:
        col = columns.get(name, name)
        if col not in available:
            raise _column_error(col, f"input {name!r} of law {law.name!r}", available)
        arr = _as_float(get(col), col, index)
        _check_values(
            arr,
            col,
            index,
            positive=name not in NONNEGATIVE_INPUTS,
            nonnegative=name in NONNEGATIVE_INPUTS,
        )
        used[name] = col
        inputs.append(arr)
    if target not in available:
        raise _column_error(target, f"the target of law {law.name!r}", available)
    y = _as_float(get(target), target, index)
    if y.ndim != 1:
        raise ValueError(f"target column {target!r} must be one-dimensional, got shape {y.shape}")
    _check_values(y, target, index, positive=positive_target, nonnegative=False)
    used["target"] = target
    if len(y) == 0:
        raise ValueError("the table has no rows")
    return LawData(tuple(inputs), y, used, index)


def mixture_inputs(
    data: pd.DataFrame,
    *,
    pool: str = "pool",
    samples: str = "samples",
    pool_size: str = "pool_size",
    target: str = "error",
    pools: list | None = None,
) -> dict[str, np.ndarray]:
    """Rows of single-pool runs as inputs of ``filtering_mixture`` (one-hot weights).

    Fitting pools jointly with shared ``n0`` and ``d`` and per-pool ``b``, ``tau`` is
    fitting ``filtering_mixture`` where row ``i`` trained on pool ``k`` alone has weights
    ``e_k``: the mixture law then reduces to the single-pool law of pool ``k``.

    Args:
        data: one row per evaluation, with a pool label, samples seen, the pool's size and
            the measured error.
        pool, samples, pool_size, target: column names.
        pools: the order of pools (default: order of first appearance).

    Returns:
        ``{"samples": (n,), "sizes": (n, P), "weights": (n, P), target: (n,)}`` ready for
        ``jaxlaws.fit("filtering_mixture", ...)``; pool ``j`` is ``pools[j]`` (by default the
        ``j``-th label in order of first appearance).
    """
    for col in (pool, samples, pool_size, target):
        if col not in data.columns:
            raise _column_error(col, "mixture_inputs", list(data.columns))
    labels = list(pools) if pools is not None else list(dict.fromkeys(data[pool].tolist()))
    missing = sorted(set(data[pool]) - set(labels), key=str)
    if missing:
        raise ValueError(f"column {pool!r} has pools {missing} that are not in pools={labels}")
    k = np.array([labels.index(v) for v in data[pool]])
    n = len(data)
    weights = np.zeros((n, len(labels)))
    weights[np.arange(n), k] = 1.0
    sizes = np.ones((n, len(labels)))
    size_values = _as_float(data[pool_size].to_numpy(), pool_size, list(data.index))
    sizes[np.arange(n), k] = size_values
    # a pool's size also fills the rows where it is absent (weight 0), so every entry is positive
    for j in range(len(labels)):
        if (k == j).any():
            sizes[k != j, j] = size_values[k == j][0]
    return {
        "samples": _as_float(data[samples].to_numpy(), samples, list(data.index)),
        "sizes": sizes,
        "weights": weights,
        target: _as_float(data[target].to_numpy(), target, list(data.index)),
    }

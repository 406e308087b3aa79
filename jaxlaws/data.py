"""Tables in: column mapping and validation at the Python boundary.

Every check raises ``ValueError`` with a one-line message that names the column, the row
(the table's own index label) and the offending value, so a user mistake never surfaces as
a traceback from inside JAX.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jaxlaws import domains as _domains
from jaxlaws.laws._law import Law

__all__ = ["LawData", "prepare", "mixture_inputs", "fitted_input_columns"]


class LawData:
    """Validated inputs and target of one table, as NumPy arrays.

    Attributes:
        inputs: tuple of arrays in the law's input order (float64; int64 for ``index``
            inputs); a vector input (proportions, per-pool sizes) has shape ``(n, k)``.
        y: the target, shape ``(n,)``, or ``(n, k)`` for a law with ``k`` outputs (``None``
            when no target was asked for).
        columns: the table column(s) used for each law input, and for the target (a list
            where several columns make one input or the target).
        index: the table's row labels (for messages and for joining results back).
    """

    def __init__(self, inputs, y, columns, index):
        self.inputs = inputs
        self.y = y
        self.columns = columns
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def n_outputs(self) -> int:
        """Target columns: 1 for a scalar target."""
        return 1 if self.y is None or self.y.ndim == 1 else int(self.y.shape[1])


def _column_error(name: str, role: str, available) -> ValueError:
    close = difflib.get_close_matches(str(name), [str(c) for c in available], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(
        f"missing column {name!r} for {role}{hint}; the table has columns {[str(c) for c in available]}"
    )


def _as_float(values, column: str, index) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        raise ValueError(f"column {column!r} holds true/false values, not numbers")
    if arr.dtype.kind in "iuf":
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


def _names(spec, available, role: str) -> list[str] | str:
    """Resolve a column spec: a name, a list of names, or a glob (``"p_*"``), in table order."""
    if isinstance(spec, list | tuple):
        if not spec:
            raise ValueError(f"no columns given for {role}")
        for c in spec:
            if c not in available:
                raise _column_error(c, role, available)
        return [str(c) for c in spec]
    if spec in available:
        return spec
    if isinstance(spec, str) and any(ch in spec for ch in "*?["):
        hits = [str(c) for c in available if fnmatch.fnmatchcase(str(c), spec)]
        if not hits:
            raise ValueError(
                f"no column matches {spec!r} for {role}; the table has columns {[str(c) for c in available]}"
            )
        return hits
    raise _column_error(spec, role, available)


def prepare(
    law: Law,
    data: pd.DataFrame | Mapping[str, Any],
    *,
    columns: Mapping[str, Any] | None = None,
    target: str | list[str] | None = None,
    positive_target: bool = True,
    require_target: bool = True,
) -> LawData:
    """Pick and validate the columns a law needs, following its declared input domains.

    Args:
        law: the law to be fitted.
        data: a ``pandas.DataFrame``, a mapping of column name to array (a vector input
            such as the proportions of a mixture may be one 2-D array), or a
            :class:`~jaxlaws.swarm.Swarm` (its proportions feed the law's simplex input and
            its metrics the target, unless ``columns`` or ``target`` say otherwise).
        columns: law input name -> column name where the table's names differ
            (``{"N": "params", "D": "tokens"}``); a list of columns, or a glob such as
            ``"p_*"``, makes one vector input of shape ``(n, k)`` (columns in table order).
        target: the column to fit (default: the law's target); a list of columns or a glob
            makes a target of shape ``(n, k)`` for a law with ``k`` outputs.
        positive_target: require a positive target (log-space objectives).
        require_target: read the target too (``False`` for predictions).

    Returns:
        :class:`LawData`.

    Raises:
        ValueError: a missing or misspelt column, text in a number column, a NaN or
            infinite value, a value outside its input's domain, or an empty table; the
            message names the column, the row and the value.
    """
    from jaxlaws.swarm import Swarm

    if isinstance(data, Swarm):  # the law's simplex input reads the proportions, its target the metrics
        fc = data.fit_columns(law)
        if columns is None or isinstance(columns, Mapping):
            columns = {**fc["columns"], **dict(columns or {})}
            if target is None and "target" not in columns:
                target = fc["target"]
        data = data.frame
    if columns is not None and not isinstance(columns, Mapping):
        raise ValueError(
            f"columns must map law inputs to table columns, such as {{'N': 'params'}}, got {columns!r}"
        )
    columns = dict(columns or {})
    default_target = law.target if isinstance(law.target, str) else list(law.target)
    allowed = set(law.inputs) | {"target"} | ({law.target} if isinstance(law.target, str) else set())
    if _pooled(law):
        allowed |= set(POOL_KEYS)
    unknown = sorted(set(columns) - allowed)
    if unknown:
        raise ValueError(
            f"columns maps {unknown}, which are not inputs of law {law.name!r}: {list(law.inputs)}"
        )
    if target is None:
        target = columns.get(
            "target",
            columns.get(default_target, default_target)
            if isinstance(default_target, str)
            else default_target,
        )
    long_pools = None
    if _pooled(law) and isinstance(data, pd.DataFrame) and _is_long(data, columns):
        long_pools = {k: columns.pop(k) for k in POOL_KEYS if k in columns}
        pool, size = long_pools.get("pool", "pool"), long_pools.get("pool_size", "pool_size")
        samples = columns.pop("samples", "samples")
        tcol = target if require_target and isinstance(target, str) else None
        data, labels = _pool_inputs(data, pool, samples, size, tcol, long_pools.get("pools"))
        long_pools.update(pool=pool, pool_size=size, pools=labels, samples=samples)
    if isinstance(data, pd.DataFrame):
        if data.columns.duplicated().any():
            dup = str(data.columns[data.columns.duplicated()][0])
            raise ValueError(f"the table has two columns named {dup!r}")
        index = list(data.index)
        available = list(data.columns)

        def get(c):
            if isinstance(c, list):
                return np.stack([data[k].to_numpy() for k in c], axis=1)
            return data[c].to_numpy()

    elif isinstance(data, Mapping):
        available = list(data.keys())
        lengths = {str(c): len(np.atleast_1d(v)) for c, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns have different numbers of rows: {lengths}")
        index = list(range(max(lengths.values(), default=0)))

        def get(c):
            if isinstance(c, list):
                return np.stack([np.atleast_1d(np.asarray(data[k])) for k in c], axis=1)
            return np.atleast_1d(np.asarray(data[c]))

    else:
        raise ValueError(
            f"data must be a pandas DataFrame or a mapping of columns, got {type(data).__name__}"
        )
    if not index:
        raise ValueError("the table has no rows")
    used: dict[str, Any] = {}
    inputs = []
    for name in law.inputs:
        dom = law.domain(name)
        col = _names(columns.get(name, name), available, f"input {name!r} of law {law.name!r}")
        cols = col if isinstance(col, list) else [col]
        arr = _as_float(get(col), cols[0] if len(cols) == 1 else cols, index)
        inputs.append(dom.validate(arr, cols, index))
        used[name] = col
    y = None
    if require_target:
        tcol = _names(target, available, f"the target of law {law.name!r}")
        if not isinstance(tcol, list) and any("outputs" in dims for _, dims in law.shapes):
            tcol = [tcol]  # a law with one output per target column, given one column
        tcols = tcol if isinstance(tcol, list) else [tcol]
        y = _as_float(get(tcol), tcols[0] if len(tcols) == 1 else tcols, index)
        if y.ndim > 2 or (y.ndim == 2 and not isinstance(tcol, list)):
            raise ValueError(
                f"target column {tcol!r} must hold one number per row, got shape {y.shape}: "
                "name one column per output"
            )
        (_domains.positive if positive_target else _domains.real).validate(y, tcols, index)
        used["target"] = tcol
    if long_pools is not None:  # the long table's own columns, and the pools' order
        used.update({k: long_pools[k] for k in ("samples", *POOL_KEYS)})
        del used["sizes"], used["weights"]
    return LawData(tuple(inputs), y, used, index)


#: Keys of ``columns`` for a long table of pool runs (one row per run on one pool): the
#: pool's label column, its size column, and the pools' order (kept with a saved fit).
POOL_KEYS = ("pool", "pool_size", "pools")


def _pooled(law: Law) -> bool:
    """A law over several pools with per-pool sizes and weights (``filtering_mixture``)."""
    return bool(law.pool_params) and {"sizes", "weights"} <= set(law.inputs)


def _is_long(data: pd.DataFrame, columns: Mapping[str, Any]) -> bool:
    """A long table of pool runs: a pool-label column and no sizes or weights columns."""
    if "sizes" in columns or "weights" in columns or {"sizes", "weights"} & set(data.columns):
        return False
    return columns.get("pool", "pool") in data.columns


def fitted_input_columns(law: Law, fitted: Mapping[str, Any], data) -> dict:
    """The columns a fit read each input from, where ``data`` has them, else the law's own
    names (to predict for a new table with either naming)."""
    have = set(data.columns if isinstance(data, pd.DataFrame) else data.keys())
    out = {k: fitted[k] for k in POOL_KEYS if k in fitted}  # a long table of pool runs
    for name in law.inputs:
        if out and name in ("sizes", "weights"):  # made from the pool columns
            continue
        col = fitted.get(name, name)
        cols = col if isinstance(col, list) else [col]
        out[name] = col if all(c in have for c in cols) else name
    return out


def mixture_inputs(
    data: pd.DataFrame,
    *,
    pool: str = "pool",
    samples: str = "samples",
    pool_size: str = "pool_size",
    target: str | None = "error",
    pools: list | None = None,
) -> dict[str, np.ndarray]:
    """Rows of single-pool runs as inputs of ``filtering_mixture`` (one-hot weights).

    Fitting pools jointly with shared ``n0`` and ``d`` and per-pool ``b``, ``tau`` is
    fitting ``filtering_mixture`` where row ``i`` trained on pool ``k`` alone has weights
    ``e_k``: the mixture law then reduces to the single-pool law of pool ``k``.

    Args:
        data: one row per evaluation, with a pool label, samples seen, the pool's size and
            the measured error.
        pool, samples, pool_size, target: column names (``target=None``: no target, for
            predictions).
        pools: the order of pools (default: order of first appearance).

    Returns:
        ``{"samples": (n,), "sizes": (n, P), "weights": (n, P), target: (n,)}`` ready for
        ``jaxlaws.fit("filtering_mixture", ...)``; pool ``j`` is ``pools[j]`` (by default the
        ``j``-th label in order of first appearance). ``jaxlaws.fit("filtering_mixture",
        table)`` converts such a table itself (``columns={"pool": ..., "pool_size": ...,
        "samples": ...}`` where the names differ) and keeps the pools' order with the fit.
    """
    return _pool_inputs(data, pool, samples, pool_size, target, pools)[0]


def _pool_inputs(data, pool, samples, pool_size, target, pools) -> tuple[dict, list]:
    """:func:`mixture_inputs` and the pools' labels in order."""
    for col in (c for c in (pool, samples, pool_size, target) if c is not None):
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
    out = {
        "samples": _as_float(data[samples].to_numpy(), samples, list(data.index)),
        "sizes": sizes,
        "weights": weights,
    }
    if target is not None:
        out[target] = _as_float(data[target].to_numpy(), target, list(data.index))
    return out, [v.item() if isinstance(v, np.generic) else v for v in labels]

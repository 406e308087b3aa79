"""Domains of a law's inputs, declared with the law as constraints are with its parameters.

An input's domain says which values a table may hold for it, and validation follows the
declaration, with a one-line error naming the column, the row and the value:

- ``positive`` (the default: sizes, compute, tokens), ``nonnegative`` (counts that may be
  zero), ``real`` (any finite value);
- ``simplex``: one vector per row, non-negative and summing to one (mixture proportions,
  shape ``(n, k)``, zeros allowed); ``open_simplex``: the same with every proportion
  positive (a law that divides by a proportion);
- ``index``: a whole number ``>= 0`` per row (a domain or model-family id), passed to the
  law as integers.

Example:
    >>> from jaxlaws import domains
    >>> domains.get("simplex")
    simplex
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Domain", "positive", "nonnegative", "real", "simplex", "open_simplex", "index", "get", "DOMAINS"]

#: How far a row of proportions may sum from one.
SIMPLEX_ATOL = 1e-6


@dataclasses.dataclass(frozen=True)
class Domain:
    """The values an input may take.

    Attributes:
        name: ``"positive"``, ``"nonnegative"``, ``"real"``, ``"simplex"``,
            ``"open_simplex"`` or ``"index"``.
        vector: the input is a vector per row (shape ``(n, k)``).
    """

    name: str
    vector: bool = False

    @property
    def proportions(self) -> bool:
        """Proportions of a mixture (``simplex`` or ``open_simplex``)."""
        return self.name in ("simplex", "open_simplex")

    @property
    def dtype(self):
        return np.int64 if self.name == "index" else np.float64

    def validate(self, arr: np.ndarray, columns: list[str], index) -> np.ndarray:
        """Check ``arr`` (rows first) and return it in the law's dtype.

        Args:
            arr: the values, shape ``(n,)`` or ``(n, k)``.
            columns: the column name(s) the values came from (one per last-axis entry for a
                vector read from several columns, else one).
            index: the row labels, for messages.

        Raises:
            ValueError: one line naming the column, the row and the value.
        """
        rows = arr.reshape(arr.shape[0], -1)

        def col(j):
            return columns[j] if len(columns) == rows.shape[1] else columns[0]

        def fail(mask, what):
            i, j = (int(v) for v in np.argwhere(mask)[0])
            return ValueError(f"column {col(j)!r}, row {index[i]!r}: value {float(rows[i, j])!r} {what}")

        bad = ~np.isfinite(rows)
        if bad.any():
            raise fail(bad, "is not finite")
        if self.vector and arr.ndim != 2:
            raise ValueError(
                f"input from column {columns[0]!r} must have one vector per row ({self.name}), "
                f"got shape {arr.shape}: name several columns"
            )
        if self.name in ("positive", "open_simplex") and (rows <= 0).any():
            raise fail(rows <= 0, "must be positive")
        if self.name in ("nonnegative", "simplex", "index") and (rows < 0).any():
            raise fail(rows < 0, "must be non-negative")
        if self.name == "index":
            if (rows != np.round(rows)).any():
                raise fail(rows != np.round(rows), "must be a whole number (an index)")
            return arr.astype(np.int64)
        if self.proportions:
            sums = rows.sum(axis=1)
            off = np.abs(sums - 1.0) > SIMPLEX_ATOL
            if off.any():
                i = int(np.argmax(off))
                raise ValueError(
                    f"columns {list(columns)}, row {index[i]!r}: proportions sum to {float(sums[i]):.10g}, "
                    f"not 1 (within {SIMPLEX_ATOL:g})"
                )
        return arr.astype(np.float64)

    def __repr__(self) -> str:
        return self.name


positive = Domain("positive")
nonnegative = Domain("nonnegative")
real = Domain("real")
simplex = Domain("simplex", vector=True)
open_simplex = Domain("open_simplex", vector=True)
index = Domain("index")

#: Every domain, by name.
DOMAINS: dict[str, Domain] = {d.name: d for d in (positive, nonnegative, real, simplex, open_simplex, index)}


def get(name: str | Domain) -> Domain:
    """The :class:`Domain` called ``name`` (a ``Domain`` is returned unchanged)."""
    if isinstance(name, Domain):
        return name
    if name not in DOMAINS:
        raise ValueError(f"unknown input domain {name!r}; choose one of {sorted(DOMAINS)}")
    return DOMAINS[name]

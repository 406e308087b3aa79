"""Constraints declared with a law's parameters: a coordinate for the optimiser, closed
bounds, and a range for random starts.

Each constraint maps the paper's value ``x`` to the coordinate ``u`` the optimiser works in
(``inverse``) and back (``forward``): ``log`` for positive scales, ``log(-x)`` for negative
ones, the identity otherwise. Bounds are closed boxes on ``u`` (as in scipy's L-BFGS-B), so a
parameter may sit exactly at its limit and a start on a bound is a start like any other.
Results are reported in the paper's parametrisation. The style follows numpyro's
``constraints``.

- ``real``: any value; ``positive`` / ``negative``: open at zero (``u = log |x|``);
- ``nonnegative``: ``[0, inf)``, closed at zero;
- ``interval(lo, hi)``: the closed ``[lo, hi]``, in log coordinates when ``lo > 0`` (or
  ``hi < 0``), so a range over decades is searched evenly; either end may be infinite.
- ``c.within(lo, hi)``: the same constraint with a range for random starts (no bound).

Random starts draw from the range: ``within``'s, else the bounds of an interval whose ends
are finite; uniform in ``u``, i.e. log-uniform for positive ranges.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxlaws import constraints
    >>> c = constraints.positive
    >>> float(c.forward(c.inverse(jnp.float64(2.5))))
    2.5
    >>> constraints.interval(1e-3, 1e3).box
    (-6.907755278982137, 6.907755278982137)
    >>> constraints.positive.within(10, 1000).start_range
    (10.0, 1000.0)
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

__all__ = ["Constraint", "real", "positive", "negative", "nonnegative", "interval", "unit_interval"]

_TRANSFORMS = ("identity", "log", "neglog")


def _xp(a):
    """NumPy for host values (no XLA program is compiled for them), jax.numpy otherwise."""
    return np if isinstance(a, np.ndarray | np.generic | float | int) else jnp


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A parameter's support, the optimiser's coordinate on it, and a range for starts.

    Attributes:
        name: ``"real"``, ``"positive"``, ``"negative"``, ``"nonnegative"`` or ``"interval"``.
        lower, upper: the support's ends in the paper's parametrisation (``-inf``/``inf``
            where unbounded). Closed, except the zero end of ``positive`` and ``negative``.
        transform: the optimiser's coordinate ``u``: ``"identity"`` (``u = x``), ``"log"``
            (``u = log x``) or ``"neglog"`` (``u = log(-x)``).
        start_range: ``(lo, hi)`` for random starts, or ``None`` (then the bounds, where
            both are finite).
    """

    name: str
    lower: float = -math.inf
    upper: float = math.inf
    transform: str = "identity"
    start_range: tuple[float, float] | None = None

    def __post_init__(self):
        if self.transform not in _TRANSFORMS:
            raise ValueError(f"unknown transform {self.transform!r}; choose one of {list(_TRANSFORMS)}")

    def forward(self, u):
        """The optimiser's coordinate ``u`` -> the paper's value (NumPy in, NumPy out)."""
        xp = _xp(u)
        if self.transform == "log":
            return xp.exp(u)
        if self.transform == "neglog":
            return -xp.exp(u)
        return u

    def inverse(self, x):
        """The paper's value ``x`` -> the optimiser's coordinate (NumPy in, NumPy out)."""
        xp = _xp(x)
        if self.transform == "log":
            return xp.log(x)
        if self.transform == "neglog":
            return xp.log(-x)
        return x

    def _to_u(self, v: float) -> float:
        if self.transform == "identity":
            return float(v)
        mag = abs(float(v))
        return math.log(mag) if mag > 0 else -math.inf

    @property
    def box(self) -> tuple[float, float]:
        """Closed bounds on the optimiser's coordinate ``u`` (``-inf``/``inf`` where open)."""
        if self.transform == "identity":
            return float(self.lower), float(self.upper)
        lo, hi = (self.lower, self.upper) if self.transform == "log" else (-self.upper, -self.lower)
        return self._to_u(lo), self._to_u(hi)

    @property
    def bounded(self) -> bool:
        """Whether the optimiser's coordinate has a finite bound."""
        return any(math.isfinite(b) for b in self.box)

    @property
    def range(self) -> tuple[float, float] | None:
        """The range random starts draw from (paper parametrisation), or ``None``."""
        if self.start_range is not None:
            return self.start_range
        if math.isfinite(self.lower) and math.isfinite(self.upper):
            return float(self.lower), float(self.upper)
        return None

    def within(self, lo: float, hi: float) -> Constraint:
        """This constraint with random starts drawn from ``[lo, hi]`` (not a bound).

        Uniform in the optimiser's coordinate: log-uniform for ``positive``, ``negative``
        and intervals with ``lo > 0``.
        """
        lo, hi = float(lo), float(hi)
        if not lo < hi:
            raise ValueError(f"a start range needs lo < hi, got ({lo}, {hi})")
        if not (self.contains(lo) and self.contains(hi)):
            raise ValueError(f"start range ({lo}, {hi}) is not inside {self!r}")
        return dataclasses.replace(self, start_range=(lo, hi))

    def contains(self, x) -> bool:
        """Whether every element of ``x`` lies in the support (closed where it is closed)."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            return False
        lo_ok = x > self.lower if self.name in ("positive", "negative") else x >= self.lower
        hi_ok = x < self.upper if self.name in ("positive", "negative") else x <= self.upper
        return bool(np.all(lo_ok & hi_ok))

    check = contains

    def __repr__(self) -> str:
        base = self.name
        if self.name == "interval":
            base = f"interval({self.lower:g}, {self.upper:g})"
        if self.start_range is not None:
            base += f".within({self.start_range[0]:g}, {self.start_range[1]:g})"
        return base


real = Constraint("real")
positive = Constraint("positive", 0.0, math.inf, "log")
negative = Constraint("negative", -math.inf, 0.0, "neglog")
nonnegative = Constraint("nonnegative", 0.0, math.inf, "identity")


def interval(lower: float, upper: float) -> Constraint:
    """The closed interval ``[lower, upper]``; either end may be infinite.

    The optimiser works on ``log x`` when ``lower > 0`` (``log(-x)`` when ``upper < 0``), so
    an interval over decades (``interval(1e-3, 1e11)``) is searched evenly, and on ``x``
    otherwise. Random starts draw from the interval when both ends are finite.
    """
    lower, upper = float(lower), float(upper)
    if not lower < upper:
        raise ValueError(f"interval needs lower < upper, got ({lower}, {upper})")
    transform = "log" if lower > 0 else "neglog" if upper < 0 else "identity"
    return Constraint("interval", lower, upper, transform)


unit_interval = interval(0.0, 1.0)

"""Constraints declared with a law's parameters, as bijections to unconstrained space.

Each constraint maps an unconstrained real number ``u`` to the constrained value
(``forward``) and back (``inverse``). Optimisers work on ``u``; results are reported
in the constrained (paper) parametrisation. The style follows numpyro's
``constraints`` / ``biject_to``.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxlaws import constraints
    >>> c = constraints.positive
    >>> float(c.forward(c.inverse(jnp.float64(2.5))))
    2.5
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

__all__ = ["Constraint", "real", "positive", "negative", "interval", "unit_interval"]


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A named bijection between the real line and a parameter's support.

    Attributes:
        name: ``"real"``, ``"positive"``, ``"negative"`` or ``"interval"``.
        lower, upper: bounds of the support (``-inf``/``inf`` where open).
    """

    name: str
    lower: float = -jnp.inf
    upper: float = jnp.inf

    def forward(self, u):
        """Unconstrained ``u`` -> constrained value."""
        if self.name == "real":
            return u
        if self.name == "positive":
            return jnp.exp(u)
        if self.name == "negative":
            return -jnp.exp(u)
        if self.name == "interval":
            return self.lower + (self.upper - self.lower) * jnp.exp(-jnp.logaddexp(0.0, -u))
        raise ValueError(f"unknown constraint {self.name!r}")

    def inverse(self, x):
        """Constrained ``x`` -> unconstrained value."""
        if self.name == "real":
            return x
        if self.name == "positive":
            return jnp.log(x)
        if self.name == "negative":
            return jnp.log(-x)
        if self.name == "interval":
            t = (x - self.lower) / (self.upper - self.lower)
            return jnp.log(t) - jnp.log1p(-t)
        raise ValueError(f"unknown constraint {self.name!r}")

    def check(self, x) -> bool:
        """Whether every element of ``x`` lies in the open support."""
        x = jnp.asarray(x)
        return (
            bool(jnp.all((x > self.lower) & (x < self.upper)))
            if self.name != "real"
            else bool(jnp.all(jnp.isfinite(x)))
        )

    def __repr__(self) -> str:
        if self.name == "interval":
            return f"interval({self.lower}, {self.upper})"
        return self.name


real = Constraint("real")
positive = Constraint("positive", 0.0, jnp.inf)
negative = Constraint("negative", -jnp.inf, 0.0)
unit_interval = Constraint("interval", 0.0, 1.0)


def interval(lower: float, upper: float) -> Constraint:
    """The open interval ``(lower, upper)``, through a scaled logistic."""
    if not lower < upper:
        raise ValueError(f"interval needs lower < upper, got ({lower}, {upper})")
    return Constraint("interval", float(lower), float(upper))

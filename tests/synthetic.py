"""Synthetic tables and a small user's law shared by the tests: tables of many groups for
batch-job tests (each group a small Chinchilla sweep: Hoffmann-like exponents, D about
20 N, 0.5% multiplicative noise), and ``POWER``, ``y = E + A x^-alpha``, a law as a user
declares one."""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

import jaxlaws
from jaxlaws import constraints


def chinchilla_groups(n_groups: int, *, by: str = "run", label=lambda g: g, seed: int = 0) -> pd.DataFrame:
    """``n_groups`` groups of 8 runs, named ``label(g)`` in column ``by``."""
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e7, 1e10, 8)
    tables = []
    for g in range(n_groups):
        D = 20 * N * rng.uniform(0.5, 2, N.size)
        loss = (1.8 + 480 / N**0.35 + 2100 / D**0.37) * np.exp(rng.normal(0, 0.005, N.size))
        tables.append(pd.DataFrame({by: label(g), "N": N, "D": D, "loss": loss}))
    return pd.concat(tables, ignore_index=True)


class PowerParams(NamedTuple):
    E: jnp.ndarray
    A: jnp.ndarray
    alpha: jnp.ndarray


def power_law(p, x):
    return p.E + p.A * x ** (-p.alpha)


POWER = jaxlaws.Law(
    name="power",
    fn=power_law,
    params=PowerParams,
    inputs=("x",),
    target="y",
    constraints=PowerParams(E=constraints.positive, A=constraints.positive, alpha=constraints.positive),
)

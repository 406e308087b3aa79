"""ScaleBench (Li et al. 2026, "Spend Less, Fit Better", arXiv 2604.22753) as jaxlaws sees it.

The benchmark's code and data stay in ``../shared/anchors/scalebench`` (MIT code, CC-BY-4.0
data; see ``../shared/anchors/SOURCES.md``) and are imported from there at benchmark time,
never copied into the project. Its law modules import a ``benchmark.dataset.utils`` helper
that the published folder does not hold; :func:`install` puts a small array-backend adapter
of our own (NumPy or ``jax.numpy``) in its place, then every law is declared as a
``jaxlaws.Law`` that calls the benchmark's own function with the JAX backend, with the
benchmark's ``PARAM_BOUNDS`` as closed intervals (log coordinates where the lower bound is
positive, as their log-uniform starts).

``JAXLAWS_SCALEBENCH`` overrides where the folder is.
"""

from __future__ import annotations

import os
import pathlib
import sys
import types
from collections import namedtuple

import jax.numpy as jnp
import numpy as np
import pandas as pd

import jaxlaws
from jaxlaws import constraints as C

ROOT = pathlib.Path(
    os.environ.get(
        "JAXLAWS_SCALEBENCH", pathlib.Path(__file__).resolve().parents[2] / "shared/anchors/scalebench"
    )
)
TASKS = ("data_constrained_scaling_law", "vocab_scaling_law", "parallel_scaling_law")
#: The benchmark's own protocol (``baseline_full_train.py``).
N_STARTS = 64
RNG_SEED = 42


class _Ops:
    """The array operations the benchmark's laws call, on NumPy or ``jax.numpy``."""

    def __init__(self, xp):
        self.xp = xp

    def asarray(self, a, atleast_2d=False):
        a = self.xp.asarray(a, dtype=self.xp.float64)
        return self.xp.atleast_2d(a) if atleast_2d else a

    def clamp_min(self, a, lo):
        return self.xp.maximum(a, lo)

    def exp(self, a):
        return self.xp.exp(a)

    def maximum(self, a, b):
        return self.xp.maximum(a, b)

    def minimum(self, a, b):
        return self.xp.minimum(a, b)

    def stack(self, xs, axis=0):
        return self.xp.stack(xs, axis=axis)


def install() -> pathlib.Path:
    """Put the benchmark on ``sys.path`` with the adapter as ``benchmark.dataset.utils``."""
    if not (ROOT / "benchmark").is_dir():
        raise SystemExit(f"ScaleBench not found at {ROOT} (set JAXLAWS_SCALEBENCH)")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    ops = {"numpy": _Ops(np), "jax": _Ops(jnp)}
    utils = types.ModuleType("benchmark.dataset.utils")
    utils.get_ops = lambda backend="numpy": ops["jax" if backend == "jax" else "numpy"]
    sys.modules["benchmark.dataset.utils"] = utils
    return ROOT


def protocol():
    """Their ``baseline_full_train`` module (it reads ``sys.argv`` when imported, so it is
    imported with an empty command line)."""
    install()
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        import baseline_full_train
    finally:
        sys.argv = argv
    return baseline_full_train


def load(task_name: str):
    """The benchmark's tasks (one per law instance) of a dataset."""
    install()
    from benchmark.task import load_tasks_for_dataset

    return load_tasks_for_dataset(task_name)


def law_of(task) -> jaxlaws.Law:
    """The benchmark's law as a ``jaxlaws.Law``: parameters ``theta0, theta1, ...``, one
    input per feature column, bounds as closed intervals."""
    install()
    from benchmark.dataset.registry import DATASET_REGISTRY
    from benchmark.task import _get_law_module

    fn = _get_law_module(task.dataset_name).LAW_REGISTRY[task.sl_id]
    names = tuple(f"theta{i}" for i in range(task.n_params))
    Params = namedtuple(f"Params_{task.sl_id}", names)
    cols = tuple(DATASET_REGISTRY[task.dataset_name].feature_cols)

    def law(p, *xs):
        pred, _ = fn(jnp.stack(p), jnp.stack(xs, axis=-1), backend="jax")
        return pred

    bounds = task.param_bounds
    return jaxlaws.Law(
        name=f"{task.dataset_name}/{task.sl_id}",
        fn=law,
        params=Params,
        inputs=cols,
        target="y",
        constraints=Params(*(C.interval(lo, hi) for lo, hi in bounds)),
        domains={c: "real" for c in cols},
    )


def table(task, group: int, split: str = "train") -> pd.DataFrame:
    """One group's rows as a DataFrame with the law's input columns and ``y``."""
    install()
    from benchmark.dataset.registry import DATASET_REGISTRY

    g = task.groups[group]
    X, y = (g.X_train, g.y_train) if split == "train" else (g.X_test, g.y_test)
    df = pd.DataFrame(X, columns=DATASET_REGISTRY[task.dataset_name].feature_cols)
    df["y"] = y
    return df


def their_starts(task, seed: int) -> np.ndarray:
    """The 64 starts of ``baseline_full_train.multistart_fit`` for ``RandomState(seed)``,
    in the paper's parametrisation (the same draws in the same order)."""
    rng = np.random.RandomState(seed)
    lo = np.array([b[0] for b in task.param_bounds], float)
    hi = np.array([b[1] for b in task.param_bounds], float)
    out = np.empty((N_STARTS, len(lo)))
    for s in range(N_STARTS):
        for j in range(len(lo)):
            out[s, j] = (
                np.exp(rng.uniform(np.log(lo[j]), np.log(hi[j]))) if lo[j] > 0 else rng.uniform(lo[j], hi[j])
            )
    return out


def to_coordinates(law: jaxlaws.Law, values: np.ndarray) -> np.ndarray:
    """Paper-parametrised starts -> rows of jaxlaws' optimiser coordinates."""
    return np.stack([np.asarray(c.inverse(values[:, j])) for j, c in enumerate(law.constraints)], axis=1)


def mse(task, theta, X, y) -> float:
    """Their training objective (mean squared error) by their NumPy law."""
    pred, _ = task.model_fn(np.asarray(theta, float), X)
    r = np.asarray(pred, float).ravel() - np.asarray(y, float).ravel()
    return float(r @ r / len(r))


def r2_global(task, thetas) -> float:
    """Their test R^2 (``baseline_full_train.evaluate_global``: all groups concatenated,
    clipped to [-1, 1])."""
    return protocol().evaluate_global(task, dict(enumerate(thetas)))

"""Extrapolation check: fit on the smaller runs, predict the largest ones.

The question every user of a scaling law asks: does it predict the runs it was not fitted
on, at the scale one cares about?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from jaxlaws.data import prepare
from jaxlaws.fit import FitResult, fit
from jaxlaws.laws import Law, get

__all__ = ["extrapolate", "ExtrapolationResult"]


@dataclasses.dataclass(frozen=True, repr=False)
class ExtrapolationResult:
    """A fit on the training rows and its predictions for the held-out ones.

    Attributes:
        fit: the fit to the training rows.
        heldout: the held-out rows with ``observed``, ``predicted``, ``error``
            (``predicted - observed``) and ``relative_error`` columns.
        by: the column (or ``"compute"``) that ordered the rows.
        threshold: held-out rows have ``by`` at or above this value.
    """

    fit: FitResult
    heldout: pd.DataFrame
    by: str
    threshold: float

    @property
    def mean_abs_relative_error(self) -> float:
        return float(np.mean(np.abs(self.heldout["relative_error"])))

    @property
    def rmse_log(self) -> float:
        """Root mean square of ``log(predicted) - log(observed)`` (NaN where a value is not
        positive: use :attr:`rmse` for such targets)."""
        obs, pred = self.heldout["observed"].to_numpy(), self.heldout["predicted"].to_numpy()
        if np.any(obs <= 0) or np.any(pred <= 0):
            return float("nan")
        r = np.log(pred) - np.log(obs)
        return float(np.sqrt(np.mean(r * r)))

    @property
    def rmse(self) -> float:
        """Root mean square of ``predicted - observed``."""
        r = self.heldout["error"].to_numpy()
        return float(np.sqrt(np.mean(r * r)))

    def summary(self) -> str:
        log = np.isfinite(self.rmse_log)
        error = f"RMSE of log {self.rmse_log:.4g}" if log else f"RMSE {self.rmse:.4g}"
        return (
            f"fitted {self.fit.law.name} on {self.fit.n_points} rows with {self.by} < {self.threshold:.4g}; "
            f"{len(self.heldout)} held out: mean |relative error| {self.mean_abs_relative_error:.4%}, "
            f"{error}, max |relative error| "
            f"{float(np.max(np.abs(self.heldout['relative_error']))):.4%}"
        )

    def __repr__(self) -> str:
        return f"ExtrapolationResult({self.summary()})"


def extrapolate(
    law: str | Law,
    data: pd.DataFrame,
    *,
    by: str | None = None,
    holdout: float | int = 0.1,
    columns: Mapping[str, str] | None = None,
    target: str | None = None,
    **fit_kwargs: Any,
) -> ExtrapolationResult:
    """Hold out the largest runs, fit the rest, and report the error on the held-out runs.

    Args:
        law: the law (name or :class:`~jaxlaws.laws.Law`).
        data: the table of runs.
        by: the column that orders runs by scale. Default: ``"compute"``, i.e. ``6 N D``
            when the law has inputs ``N`` and ``D``, else the law's first input.
        holdout: a fraction of the rows (``0 < holdout < 1``), or a number of rows; all rows
            tied with the smallest held-out value are held out too.
        columns, target: as for :func:`jaxlaws.fit`.
        **fit_kwargs: passed to :func:`jaxlaws.fit`.

    Returns:
        An :class:`ExtrapolationResult`.
    """
    law = get(law)
    d = prepare(law, data, columns=columns, target=target, positive_target=False)
    if d.n_outputs > 1:
        raise ValueError("extrapolate takes a law with one output; fit each output's columns on its own")
    named = dict(zip(law.inputs, d.inputs))
    if by is None or by == "compute":
        if "N" in named and "D" in named:
            scale, by = 6.0 * named["N"] * named["D"], "compute"
        else:
            scale, by = named[law.inputs[0]], law.inputs[0]
            if scale.ndim != 1:
                raise ValueError(
                    f"input {by!r} is a vector per row: give by= the column that orders runs by scale"
                )
    else:
        if by not in data.columns:
            raise ValueError(f"missing column {by!r} to order runs by; the table has {list(data.columns)}")
        scale = data[by].to_numpy(dtype=float)
    n = len(scale)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float | np.integer | np.floating):
        raise ValueError(f"holdout must be a fraction in (0, 1) or a whole number of rows, got {holdout!r}")
    if isinstance(holdout, float | np.floating) and not 0 < holdout < 1:
        raise ValueError(
            f"holdout as a fraction must lie in (0, 1), got {holdout!r} (an int gives a number of rows)"
        )
    k = int(round(holdout * n)) if 0 < holdout < 1 else int(holdout)
    if not 1 <= k < n:
        raise ValueError(f"holdout must leave at least one row on each side; got {holdout!r} of {n} rows")
    threshold = float(np.sort(scale)[n - k])
    test = scale >= threshold
    train_df = data[~test]
    res = fit(law, train_df, columns=columns, target=target, **fit_kwargs)
    test_df = data[test]
    observed = d.y[test]
    predicted = res.predict(test_df, columns=columns)
    heldout = test_df.copy()
    heldout["observed"] = observed
    heldout["predicted"] = predicted
    heldout["error"] = predicted - observed
    heldout["relative_error"] = (predicted - observed) / observed
    return ExtrapolationResult(fit=res, heldout=heldout, by=by, threshold=threshold)

"""Swarm tables: many small training runs on different data mixtures, read as published.

A swarm is published either as two tables joined on a run id (RegMix and olmix: one CSV of
each run's mixture proportions, one of its metrics) or as one table with both. :func:`read`
reads either layout into a :class:`Swarm`: one row per run, the proportions' columns and
the metrics' columns named, every row checked (proportions non-negative and summing to
one, metrics finite), with one-line errors naming the file, the column, the run and the
value. A :class:`Swarm` is given to :func:`jaxlaws.fit` as the data: the law's input on the
simplex reads the proportions and its target the metrics.

>>> import jaxlaws
>>> swarm = jaxlaws.swarm.load("olmix-dclm", metrics=["hellaswag:rc::olmes", "arc_easy:rc::olmes"])
>>> len(swarm), len(swarm.domains), swarm.metrics
(127, 24, ('hellaswag:rc::olmes', 'arc_easy:rc::olmes'))
>>> res = jaxlaws.fit("mixing_exp", swarm)                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Swarm", "read", "load", "SUM_ATOL", "RENORMALISE_ATOL", "ID_COLUMNS", "BOOKKEEPING_WORDS"]

#: How far a run's proportions may sum from one as read.
SUM_ATOL = 1e-6
#: With ``normalise=True``, rows summing within this of one (rounded in print) are rescaled.
RENORMALISE_ATOL = 1e-2
#: Names recognised as the run id when the two tables share several columns.
ID_COLUMNS = ("run", "run_id", "run_name", "id", "index", "name")
#: Words of a column name (split at ``_``, ``-``, ``/``, ``.``, ``:`` and spaces) that mark
#: bookkeeping, not a metric or a proportion (``tokens``, ``train_steps``, ``seed``): left
#: out of the default columns, each with a warning.
BOOKKEEPING_WORDS = ("tokens", "token", "steps", "step", "seed", "seeds", "flops")


@dataclasses.dataclass(frozen=True, repr=False)
class Swarm:
    """A swarm of runs: proportions and metrics side by side, one row per run.

    Attributes:
        frame: the joined table: the run id, the proportions, the metrics, then any other
            columns (model size, tokens...); its index is the run id (so that a fit's
            messages name the run), or the line in a single file without one.
        domains: the proportions' columns, in order.
        metrics: the metrics' columns, in order.
        on: the run-id column (``None`` for a single table without one).
        source: where the swarm was read from (for messages and saved fits).
    """

    frame: pd.DataFrame
    domains: tuple[str, ...]
    metrics: tuple[str, ...]
    on: str | None = None
    source: str = ""

    @property
    def ratios(self) -> np.ndarray:
        """The proportions, ``(runs, domains)``."""
        return self.frame[list(self.domains)].to_numpy(np.float64)

    @property
    def values(self) -> np.ndarray:
        """The metrics, ``(runs, metrics)``."""
        return self.frame[list(self.metrics)].to_numpy(np.float64)

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, metrics=None, domains=None) -> Swarm:
        """The same swarm with only some metrics (names or a glob) or domains."""
        m = (
            _pick(metrics, list(self.metrics), "metrics", self.source)
            if metrics is not None
            else self.metrics
        )
        d = (
            _pick(domains, list(self.domains), "domains", self.source)
            if domains is not None
            else self.domains
        )
        if tuple(d) != tuple(self.domains):
            raise ValueError("a swarm's domains are its mixture: all of them are kept (select metrics only)")
        drop = [c for c in self.metrics if c not in m]
        return dataclasses.replace(self, frame=self.frame.drop(columns=drop), metrics=tuple(m))

    def fit_columns(self, law) -> dict[str, Any]:
        """``columns`` and ``target`` for :func:`jaxlaws.fit`: the law's input on the simplex
        reads the proportions, its target the metrics."""
        mix = law.simplex_inputs
        return {"columns": {mix[0]: list(self.domains)} if mix else {}, "target": list(self.metrics)}

    def __repr__(self) -> str:
        return (
            f"Swarm({len(self)} runs, {len(self.domains)} domains {list(self.domains)[:4]}"
            f"{'...' if len(self.domains) > 4 else ''}, {len(self.metrics)} metrics "
            f"{list(self.metrics)[:4]}{'...' if len(self.metrics) > 4 else ''})"
        )


def _read(table, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(table, pd.DataFrame):
        return table.copy(), what
    if not isinstance(table, str | os.PathLike):
        raise TypeError(
            f"{what} must be a CSV or Parquet path or a pandas DataFrame, got {type(table).__name__} "
            f"{_show(table)}"
        )
    path = os.fspath(table)
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory, not a CSV file")
    if not os.path.isfile(path):
        raise ValueError(f"no such file for the {what}: {path}")
    try:
        frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: not a readable CSV table ({str(err).splitlines()[0]})") from None
    if frame.columns.duplicated().any():
        raise ValueError(
            f"{path} has two columns named {str(frame.columns[frame.columns.duplicated()][0])!r}"
        )
    if frame.empty:
        raise ValueError(f"{path} has no rows")
    return frame, path


def _pick(spec, available: list[str], role: str, where: str) -> list[str]:
    """Columns named by a list, a name or a glob, in table order."""
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"the {role} must be a column name, a glob or a list of names, got {type(spec).__name__} "
            f"{_show(spec)}"
        )
    out = []
    for name in names:
        hits = (
            [c for c in available if fnmatch.fnmatchcase(c, name)] if any(ch in name for ch in "*?[") else []
        )
        if hits:
            out.extend(h for h in hits if h not in out)
        elif name in available:
            out.append(name)
        else:
            import difflib

            close = difflib.get_close_matches(name, available, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: no column {name!r} for the {role}{hint}; it has {available}")
    if not out:
        raise ValueError(f"{where}: no columns for the {role}")
    return out


def _numeric(frame: pd.DataFrame, cols: list[str], where: str, on: str | None) -> pd.DataFrame:
    """``frame`` with ``cols`` as float64; one line naming column, run and value otherwise."""
    converted = {}
    for c in cols:
        v = pd.to_numeric(frame[c], errors="coerce")
        bad = v.isna() & frame[c].notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise ValueError(
                f"{where}: column {c!r}, {_run(frame, i, on)}: {_show(frame[c].iloc[i])} is not a number"
            )
        miss = v.isna()
        if miss.any():
            i = int(np.argmax(miss.to_numpy()))
            raise ValueError(f"{where}: column {c!r}, {_run(frame, i, on)}: the value is missing")
        converted[c] = v.astype(np.float64)
    rest = frame.drop(columns=cols)
    return pd.concat([rest, pd.DataFrame(converted, index=frame.index)], axis=1)[list(frame.columns)]


def _show(value, width: int = 60) -> str:
    """``repr`` of a value as a user wrote it (``0.5``, not ``np.float64(0.5)``), cut short."""
    text = " ".join(repr(value.item() if isinstance(value, np.generic) else value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _run(frame: pd.DataFrame, i: int, on: str | None) -> str:
    return f"run {_show(frame[on].iloc[i])}" if on else f"row {i + 2}"  # + header, 1-based


def _bookkeeping(column: str) -> bool:
    import re

    return any(w in BOOKKEEPING_WORDS for w in re.split(r"[_\-/.:\s]+", column.strip().lower()))


def _join_column(r: pd.DataFrame, m: pd.DataFrame, on, rp: str, mp: str) -> str:
    if on is not None:
        for frame, where in ((r, rp), (m, mp)):
            if on not in frame.columns:
                raise ValueError(
                    f"{where} has no run-id column {on!r}; its columns are {list(frame.columns)}"
                )
        return on
    common = [c for c in r.columns if c in m.columns]
    if len(common) == 1:
        return common[0]
    named = [c for c in common if str(c).lower() in ID_COLUMNS]
    if named:
        return sorted(named, key=lambda c: ID_COLUMNS.index(str(c).lower()))[0]
    if not common:
        raise ValueError(f"{rp} and {mp} share no column to join on: name the run-id column with on= (--on)")
    raise ValueError(f"{rp} and {mp} share columns {common}: name the run-id column with on= (--on)")


def read(
    ratios=None,
    metrics=None,
    *,
    table=None,
    on: str | None = None,
    domains=None,
    metric_columns=None,
    normalise: bool = False,
) -> Swarm:
    """Read a swarm: two tables joined on a run id, or one table with both.

    Args:
        ratios: the runs' mixture proportions (a CSV/Parquet path or a DataFrame): the run id
            and one column per domain.
        metrics: the runs' metrics (path or DataFrame): the run id and one column per metric.
        table: instead of the two, one table with proportions and metrics (``domains`` and
            ``metric_columns`` then say which are which).
        on: the run-id column (default: the one column the two tables share, or one named
            as in :data:`ID_COLUMNS`).
        domains: the proportions' columns (names or a glob; default: every numeric column of
            ``ratios`` but the id columns (``on``, the names of :data:`ID_COLUMNS` and a
            written pandas index) and bookkeeping).
        metric_columns: the metrics' columns (names or a glob; default: every numeric column
            of ``metrics`` but the id columns and bookkeeping such as ``tokens``, ``steps``
            or ``seed`` (:data:`BOOKKEEPING_WORDS`), each left out with a warning).
        normalise: rescale rows whose proportions sum within :data:`RENORMALISE_ATOL` of one
            (proportions printed rounded); off by default, so that a wrong column is an error.

    Returns:
        A :class:`Swarm`; runs in one table and not the other are left out, with a warning
        that counts them and names the first.

    Raises:
        ValueError: one line naming the file, the column, the run and the value: a missing
            column or id, a repeated run id, text or a missing value, a negative proportion,
            proportions that do not sum to one, a metric that is not finite.
    """
    if table is not None:
        if ratios is not None or metrics is not None:
            raise ValueError("give ratios and metrics (two tables) or table (one), not both")
        frame, where = _read(table, "swarm table")
        cols = [str(c) for c in frame.columns]
        frame.columns = cols
        if domains is None or metric_columns is None:
            raise ValueError(
                f"{where}: a single swarm table needs domains= and metric_columns= (names or globs); "
                f"its columns are {cols}"
            )
        dom = _pick(domains, cols, "domains", where)
        met = _pick(metric_columns, cols, "metrics", where)
        both = sorted(set(dom) & set(met))
        if both:
            raise ValueError(f"{where}: columns {both} are named as both domains and metrics")
        if on is not None and on not in cols:
            raise ValueError(f"{where} has no run-id column {on!r}; its columns are {cols}")
        frame = _numeric(frame, dom + met, where, on)
        if on is not None:
            _unique_ids(frame, on, where)
        lead = ([on] if on else []) + dom + met
        out = frame[lead + [c for c in cols if c not in lead]].reset_index(drop=True)
        return _checked(out, dom, met, on, where, normalise)
    if ratios is None or metrics is None:
        raise ValueError("a swarm is ratios and metrics (two tables joined on a run id), or table=")
    r, rp = _read(ratios, "ratios")
    m, mp = _read(metrics, "metrics")
    r.columns = [str(c) for c in r.columns]
    m.columns = [str(c) for c in m.columns]
    key = _join_column(r, m, on, rp, mp)
    _unique_ids(r, key, rp)
    _unique_ids(m, key, mp)

    def default(frame, where, role):
        others = [c for c in frame.columns if c != key and not _is_id(c)]
        # a column of numbers, or of numbers with a typo in it (so the typo is an error, not a
        # column silently left out); a column of names has no number in it
        numeric = [c for c in others if pd.to_numeric(frame[c], errors="coerce").notna().any()]
        kept = [c for c in numeric if not _bookkeeping(c)]
        if not kept:
            raise ValueError(f"{where} has no numeric column besides the run id {key!r} and bookkeeping")
        for c in numeric:
            if c not in kept:
                warnings.warn(
                    f"{where}: column {c!r} is bookkeeping (tokens, steps, seeds), not one of the "
                    f"{role}: left out (name it in {'metric_columns' if role == 'metrics' else 'domains'}= "
                    "to keep it)",
                    UserWarning,
                    stacklevel=3,
                )
        return kept

    dom = (
        _pick(domains, [c for c in r.columns if c != key], "domains", rp)
        if domains is not None
        else default(r, rp, "domains")
    )
    met = (
        _pick(metric_columns, [c for c in m.columns if c != key], "metrics", mp)
        if metric_columns is not None
        else default(m, mp, "metrics")
    )
    clash = sorted(set(dom) & set(met))
    if clash:
        raise ValueError(f"{rp} and {mp} both have columns {clash}: name the metrics with metric_columns=")
    r = _numeric(r, dom, rp, key)
    m = _numeric(m, met, mp, key)
    rid = r[key].astype(str)
    mid = m[key].astype(str)
    if not rid.isin(set(mid)).any():
        raise ValueError(_no_common_id(r[key], m[key], key, rp, mp))
    only_r = r[~rid.isin(set(mid))][key].tolist()
    only_m = m[~mid.isin(set(rid))][key].tolist()
    for ids, here, there in ((only_r, rp, mp), (only_m, mp, rp)):
        if ids:
            warnings.warn(
                f"{len(ids)} run(s) of {here} are not in {there} (first: {ids[0]!r}): left out",
                UserWarning,
                stacklevel=2,
            )
    # other columns (model size, tokens, names) travel along; the metrics' copy of a column
    # both tables have is dropped
    left = r[[key] + dom + [c for c in r.columns if c not in dom and c != key]].assign(_key=rid)
    right = m[met + [c for c in m.columns if c not in met and c not in r.columns]].assign(_key=mid)
    joined = left.merge(right, on="_key", how="inner", sort=False).drop(columns=["_key"])
    return _checked(joined.reset_index(drop=True), dom, met, key, f"{rp} + {mp}", normalise)


def _no_common_id(a: pd.Series, b: pd.Series, key: str, ap: str, bp: str) -> str:
    """Why two tables share no run id, with a few of each side's ids as written."""

    def few(ids):
        return ", ".join(_show(v) for v in ids.iloc[:3]) + (", ..." if len(ids) > 3 else "")

    hint = ""
    if set(a.astype(str).str.strip()) & set(b.astype(str).str.strip()):
        hint = ": they differ only in spaces around them"
    else:
        na, nb = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
        if na.notna().all() and nb.notna().all() and set(na) & set(nb):
            hint = ": they are the same numbers written differently (make the run ids text in both)"
    return f"{ap} and {bp} have no run id {key!r} in common ({ap}: {few(a)}; {bp}: {few(b)}){hint}"


def _is_id(column: str) -> bool:
    """An id column, not data: a name of :data:`ID_COLUMNS`, or pandas' unnamed index."""
    return column.strip().lower() in ID_COLUMNS or column.startswith("Unnamed:") or not column.strip()


def _unique_ids(frame: pd.DataFrame, key: str, where: str) -> None:
    ids = frame[key]
    if ids.isna().any():
        i = int(np.argmax(ids.isna().to_numpy()))
        raise ValueError(f"{where}: row {i + 2} has no run id ({key!r} is empty)")
    dup = ids.astype(str).duplicated(keep=False)
    if dup.any():
        rows = (np.flatnonzero(dup.to_numpy())[:2] + 2).tolist()
        raise ValueError(
            f"{where}: run id {_show(ids[dup].iloc[0])} appears twice (rows {rows[0]} and {rows[1]})"
        )


def _checked(frame, dom, met, on, where, normalise) -> Swarm:
    r = frame[dom].to_numpy(np.float64)
    y = frame[met].to_numpy(np.float64)
    for arr, cols, what in ((r, dom, "proportion"), (y, met, "metric")):
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{where}: column {cols[j]!r}, {_run(frame, i, on)}: "
                f"{what} {float(arr[i, j])!r} is not finite"
            )
    if (r < 0).any():
        i, j = np.argwhere(r < 0)[0]
        raise ValueError(
            f"{where}: column {dom[j]!r}, {_run(frame, i, on)}: proportion {float(r[i, j])!r} is negative"
        )
    sums = r.sum(axis=1)
    off = np.abs(sums - 1.0) > SUM_ATOL
    if off.any():
        i = int(np.argmax(np.abs(sums - 1.0)))
        if normalise and np.all(np.abs(sums - 1.0) <= RENORMALISE_ATOL):
            r = r / sums[:, None]
            frame = frame.copy()
            frame[dom] = r
        else:
            hint = (
                f" (normalise=True, --normalise, rescales rows that sum within {RENORMALISE_ATOL:g} of one)"
                if abs(sums[i] - 1.0) <= RENORMALISE_ATOL
                else ": are the domains' columns right?"
            )
            raise ValueError(
                f"{where}: {_run(frame, i, on)}: the proportions of {len(dom)} domains sum to "
                f"{sums[i]:.10g}, not 1{hint}"
            )
    empty = [d for d, col in zip(dom, r.T) if not (col > 0).any()]
    if empty:
        raise ValueError(
            f"{where}: domain(s) {empty} have proportion 0 in every run: a law cannot learn what they do; "
            "leave them out with domains="
        )
    frame = frame.copy()
    frame.index = (
        pd.Index(frame[on].tolist(), name="run") if on else pd.RangeIndex(2, len(frame) + 2, name="line")
    )
    return Swarm(frame=frame, domains=tuple(dom), metrics=tuple(met), on=on, source=where)


#: Swarms bundled with jaxlaws (files under ``jaxlaws/datasets/data``; sources and licences
#: in its ``SOURCES.md``).
BUNDLED: dict[str, dict] = {
    "olmix-dclm": {
        "ratios": "olmix_dclm_ratios.csv",
        "metrics": "olmix_dclm_metrics.csv",
        "on": "run",
        "description": (
            "allenai/olmix's DCLM swarm: 127 runs of 30M-parameter OLMo proxies (5x Chinchilla "
            "tokens) on mixtures of DCLM's 24 topic domains, 110 metrics each (bits per byte, lower "
            "is better). Apache-2.0."
        ),
    },
}


def load(name: str, *, metrics=None) -> Swarm:
    """A swarm bundled with jaxlaws: ``"olmix-dclm"`` (see :data:`BUNDLED`; sources and
    licences in ``jaxlaws/datasets/data/SOURCES.md``).

    Args:
        name: the swarm's name (see :data:`BUNDLED`).
        metrics: keep only these metrics (names or a glob).
    """
    from importlib import resources

    from jaxlaws.laws._law import suggest

    if name not in BUNDLED:
        raise ValueError(f"unknown swarm {name!r}{suggest(name, BUNDLED)}; bundled swarms: {sorted(BUNDLED)}")
    b = BUNDLED[name]
    base = resources.files("jaxlaws.datasets") / "data"
    with resources.as_file(base / b["ratios"]) as rp, resources.as_file(base / b["metrics"]) as mp:
        swarm = read(
            pd.read_csv(rp),
            pd.read_csv(mp),
            on=b["on"],
            domains=b.get("domains"),
            metric_columns=b.get("metric_columns"),
            normalise=b.get("normalise", False),
        )
    swarm = dataclasses.replace(swarm, source=f"bundled swarm {name}")
    return swarm.select(metrics=metrics) if metrics is not None else swarm

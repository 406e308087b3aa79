"""Saved fits: a JSON record that reproduces the fit's predictions; files written whole.

The record holds the law (name and options), objective, starts, seed, parameters, status,
where the data came from with a hash of the input table, and the jaxlaws and JAX versions.
Every file jaxlaws writes goes through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from jaxlaws.laws import Law, get

__all__ = ["atomic_write", "fit_record", "load_fit", "SavedFit", "table_hash"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w"):
    """Write ``path`` whole or not at all: a file object on a temporary file beside it,
    flushed to disk and moved into place (``os.replace``) when the block ends without an
    error. A kill or an error at any moment leaves the old file (or none) as it was, and no
    temporary file behind an error; a temporary file left by a killed process is removed by
    the next write of the same file.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(path) as fh:
        ...     _ = fh.write("whole")
        >>> path.read_text()
        'whole'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}."
    _remove_orphans(folder, prefix)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{prefix}{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # the permissions a plain open() would give
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _remove_orphans(folder: str, prefix: str) -> None:
    """Delete the temporary files of earlier writes of the same file whose process is gone
    (killed mid-write); a live process's temporary file is left alone."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        pid = name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
        except OSError:  # alive, another user's: not ours to touch
            pass


def table_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the table as CSV (values and column names, not the index)."""
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()


def file_hash(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file's bytes (``None`` when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def fit_record(res, table: pd.DataFrame, **meta: Any) -> dict:
    """A JSON-ready record of a :class:`~jaxlaws.FitResult` fitted to ``table``.

    ``meta`` adds what the caller knows: ``starts``, ``seed``, ``dataset``, ``subset`` or
    ``data_path`` (so the data can be found again).

    How well the fit determines its parameters (:mod:`jaxlaws.covariance`): ``stderr``
    (name -> value or nested list, paper parametrisation; ``0`` for a frozen parameter),
    ``correlation`` (a list of ``{"labels": [...], "matrix": [[...]]}``, one block, or one
    per output for a law fitted output by output), ``flat_directions``
    (``{"parameters": [...], "relative_curvature": x}``), and ``fit_space``, ``rmse``,
    ``r2``, ``aic``, ``bic``, ``n_residuals``, ``stderr_method``. JSON holds no infinity or
    NaN: an infinite value (the standard error of a parameter in a flat direction, an AIC of
    an exact fit) is the string ``"inf"`` (or ``"-inf"``; ``float()`` reads it back), an
    undefined one (a correlation with such a parameter) ``null``. A result without its
    covariance (``res.uncertainty is None``) leaves these keys out.
    """
    import jax

    import jaxlaws
    from jaxlaws.covariance import json_safe

    uncertainty = (
        {"stderr": json_safe(res.stderr), **res.uncertainty.record()}
        if getattr(res, "uncertainty", None) is not None
        else {}
    )
    return {
        "law": res.law.name,
        "law_options": dict(res.law.options),
        "objective": res.objective,
        "delta": res.delta,
        **meta,
        "columns": res.columns,
        "params": res.params_dict,
        "extra": res.extra,
        "value": res.value,
        "status": res.status,
        "n_starts": len(res.starts),
        "n_best_basin": res.n_best_basin,
        "n_polished": res.n_polished,
        # the multi-start's stopping rule (None: too few converged starts to estimate)
        "unseen_optima": res.unseen if np.isfinite(res.unseen) else None,
        "missed_lower_optima": res.missed if np.isfinite(res.missed) else None,
        "stopped_by_rule": res.stopped_by_rule,
        "status_counts": res.starts["status"].value_counts().to_dict(),
        "frozen": list(res.frozen),
        **uncertainty,
        "warnings": list(res.diagnostics),
        "n_points": res.n_points,
        "data_sha256": table_hash(table),
        "versions": {"jaxlaws": jaxlaws.__version__, "jax": jax.__version__},
    }


@dataclasses.dataclass(frozen=True)
class SavedFit:
    """A fit loaded from its record: the law, its parameters and the whole record."""

    law: Law
    params: Any
    record: dict

    def predict(self, data) -> np.ndarray:
        """The law's prediction for a table with its input columns (as the fit mapped them)."""
        from jaxlaws.data import fitted_input_columns, prepare

        columns = fitted_input_columns(self.law, self.record.get("columns", {}), data)
        d = prepare(self.law, data, columns=columns, require_target=False)
        return np.asarray(self.law(self.params, *d.inputs))

    @functools.cached_property
    def samples(self):
        """The bootstrap's converged parameter sets kept with the fit (``jaxlaws fit
        --bootstrap N --keep-samples``), stacked on a leading axis; ``None`` without them."""
        kept = (self.record.get("bootstrap") or {}).get("samples")
        if not kept:
            return None
        try:
            return self.law.params(*(np.asarray(kept[n], np.float64) for n in self.law.param_names))
        except KeyError as err:
            raise ValueError(f"the saved fit's bootstrap samples have no parameter {err.args[0]!r}") from None

    def predict_samples(self, data) -> np.ndarray:
        """The law's prediction for ``data`` under each kept bootstrap sample, ``(S, n[, k])``."""
        import jax

        from jaxlaws.data import fitted_input_columns, prepare

        samples = self.samples
        if samples is None:
            raise ValueError(
                "the saved fit keeps no bootstrap samples: fit it with --bootstrap N --keep-samples"
            )
        columns = fitted_input_columns(self.law, self.record.get("columns", {}), data)
        d = prepare(self.law, data, columns=columns, require_target=False)
        return np.asarray(jax.vmap(lambda p: self.law(p, *d.inputs))(samples))

    def input_files(self) -> list[str]:
        """The files the fit was made from (its data table, a swarm's two tables), which a
        command reading the fit must not overwrite."""
        r, sw = self.record, self.record.get("swarm") or {}
        return [p for p in (r.get("data_path"), sw.get("ratios"), sw.get("metrics")) if p]

    def data(self) -> pd.DataFrame:
        """The table the fit was made on (bundled dataset, file or swarm), checked against its
        hash."""
        from jaxlaws import datasets

        r = self.record
        if r.get("swarm"):
            from jaxlaws import swarm as _swarm

            sw = r["swarm"]
            if sw.get("name"):
                table = _swarm.load(sw["name"]).frame
            else:
                table = _swarm.read(
                    sw["ratios"],
                    sw["metrics"],
                    on=sw.get("on"),
                    domains=sw.get("domains"),
                    metric_columns=sw.get("metric_columns"),
                    normalise=bool(sw.get("normalise")),
                ).frame
            if r.get("data_sha256") and table_hash(table) != r["data_sha256"]:
                if sw.get("name"):
                    raise ValueError(f"the bundled swarm {sw['name']} no longer matches the saved fit")
                changed = [sw[k] for k in ("ratios", "metrics") if sw.get(f"{k}_sha256") != file_hash(sw[k])]
                raise ValueError(
                    f"{' and '.join(changed or [sw['ratios'], sw['metrics']])} "
                    + ("changed" if changed else "(one of them) changed")
                    + " since the fit: the swarm no longer matches the saved fit"
                )
            return table
        if r.get("dataset"):
            table = datasets.load(r["dataset"], subset=r.get("subset"))
        elif r.get("data_path"):
            path = r["data_path"]
            table = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
        else:
            raise ValueError("the saved fit does not say where its data came from")
        if r.get("data_sha256") and table_hash(table) != r["data_sha256"]:
            where = r.get("data_path") or f"dataset {r.get('dataset')}"
            raise ValueError(f"{where} no longer matches the saved fit (its SHA-256 differs)")
        return table


def load_fit(path: str | os.PathLike) -> SavedFit:
    """Load a fit saved by ``jaxlaws fit --output`` (or :func:`fit_record`)."""
    if os.path.isdir(path):
        raise ValueError(f"{os.fspath(path)} is a directory, not a saved fit")
    try:
        with open(path) as fh:
            text = fh.read()
        record = json.loads(text)
    except UnicodeDecodeError:
        raise ValueError(f"{os.fspath(path)} is not a saved fit: it is not text") from None
    except json.JSONDecodeError as err:
        lines = [line for line in text.splitlines() if line.strip()]
        if err.msg == "Extra data" and len(lines) > 1:
            raise ValueError(
                f"{os.fspath(path)} holds {len(lines)} JSON records (batch results?), not one saved fit"
            ) from None
        raise ValueError(
            f"{os.fspath(path)} is not a readable saved fit ({err}): was it cut short?"
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f"{os.fspath(path)} is not a saved fit: it holds a JSON {type(record).__name__}")
    for key in ("law", "params"):
        if key not in record:
            raise ValueError(f"{os.fspath(path)} is not a saved fit: it has no {key!r}")
    try:
        law = get(record.get("law_source") or record["law"]).with_options(**record.get("law_options", {}))
        params = law.make_params(record["params"])
    except (ValueError, TypeError) as err:
        raise ValueError(f"{os.fspath(path)}: {str(err).splitlines()[0]}") from None
    return SavedFit(law=law, params=params, record=record)

"""Batch jobs: fit one law to many groups of a table, resumably.

Groups are padded to the same number of rows (padding rows carry weight 0, so they change
nothing) and fitted ``chunk`` at a time in one batched, JIT-compiled call; every chunk has
the same shapes, so the job compiles once. Each group's result is appended to a JSON-lines
file (flushed and synced) as soon as its chunk finishes, so an interrupted job loses
nothing that had finished: run it again with the same output and it fits only the groups
not yet in the file.

Several hosts: under ``jax.distributed`` (:func:`jaxlaws.sharding.initialize`) every
process fits its share of the groups on its own devices, appending to its own part file
``OUTPUT.part-I-of-P`` (resumable in the same way); at the end the parts are gathered over
JAX's collectives and process 0 appends them to ``OUTPUT`` in group order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxlaws import solvers
from jaxlaws.data import prepare
from jaxlaws.laws import Law, get
from jaxlaws.objectives import get_objective
from jaxlaws.problem import plan_for, program, setup
from jaxlaws.sharding import gather_bytes, local_devices, map_batch, padded_size, process_share
from jaxlaws.starts import make_starts

__all__ = ["fit_groups", "read_results"]


def _plain(group):
    """A group label as JSON-native values (a list for several ``by`` columns)."""
    if isinstance(group, tuple):
        return [_plain(g) for g in group] if len(group) > 1 else _plain(group[0])
    return group.item() if isinstance(group, np.generic) else group


def _key(group) -> str:
    return json.dumps(_plain(group), sort_keys=True, default=str)


def _records(path) -> list[dict]:
    """The complete records in a JSON-lines results file (a line cut by an interruption is
    not a record: its group is fitted again)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _frame(records: list[dict]) -> pd.DataFrame:
    flat = []
    for r in records:
        row = {"group": r["group"], "value": r["value"], "status": r["status"], "n_points": r["n_points"]}
        row.update(r["params"])
        flat.append(row)
    return pd.DataFrame(flat)


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """The results a batch job has written so far, one row per group."""
    return _frame(_records(path))


def _open_for_append(path):
    """Open ``path`` for appending, first cutting a last line left incomplete by an
    interruption (so the next record starts on a line of its own)."""
    if os.path.exists(path) and os.path.getsize(path):
        with open(path, "rb+") as fh:
            data = fh.read()
            if not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
    return open(path, "a")


def _append(fh, records: list[dict]) -> None:
    for record in records:
        fh.write(json.dumps(record, default=float) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def part_path(output, index: int, count: int) -> str:
    """Where process ``index`` of ``count`` appends its results (``output`` for one process)."""
    output = os.fspath(output)
    return output if count == 1 else f"{output}.part-{index}-of-{count}"


def fit_groups(
    law: str | Law,
    data: pd.DataFrame,
    by: str | list[str],
    output: str | os.PathLike,
    *,
    columns: Mapping[str, str] | None = None,
    target: str | None = None,
    objective: str = "huber",
    delta: float = 1e-3,
    starts: Any = None,
    seed: int = 0,
    init=None,
    frozen=None,
    output_weights=None,
    polish: int | str | None = "adaptive",
    screen_steps: int | None = None,
    max_steps: int = 500,
    ftol: float = 1e-13,
    chunk: int = 64,
    progress: bool = True,
    devices: int | None = None,
) -> pd.DataFrame:
    """Fit ``law`` to every group of ``data`` (grouped by ``by``), ``chunk`` groups per call.

    Args:
        law, columns, target, objective, delta, starts, seed, init, frozen,
            output_weights, polish, screen_steps, max_steps, ftol: as for
            :func:`jaxlaws.fit` (the same starts for every group; each group's polishing
            widens on its own results only).
        by: the column(s) that name the groups.
        output: a JSON-lines file; one line per fitted group is appended as soon as its
            chunk finishes. Groups already in it are skipped (resume after interruption).
            Under ``jax.distributed`` each process appends to ``OUTPUT.part-I-of-P`` and
            process 0 gathers every part into ``output`` at the end.
        chunk: groups per batched call (the last chunk is padded, so all calls share shapes).
        progress: show a progress bar on stderr.
        devices: shard each chunk's groups across this many local devices (default: all;
            the chunk is rounded up to a multiple of their number, at least 4 per device:
            :func:`jaxlaws.sharding.padded_size`).

    Returns:
        All results in ``output`` (this run's and earlier runs'), one row per group; on
        every process of a distributed job.

    Raises:
        ValueError: bad input in any group, named with its group, column, row and value.
    """
    law = get(law)
    output = os.fspath(output)
    devs = local_devices(devices)
    chunk = padded_size(chunk, len(devs))
    groups = list(data.groupby(by, sort=True))
    if not groups:
        raise ValueError("the table has no rows to group")
    index, count = jax.process_index(), jax.process_count()
    part_file = part_path(output, index, count)
    done = {_key(r["group"]) for r in _records(output) + (_records(part_file) if count > 1 else [])}
    share = process_share(groups)  # the same groups on every run of this process
    todo = [(g, df) for g, df in share if _key(g) not in done]
    common = dict(
        columns=columns,
        target=target,
        objective=objective,
        delta=delta,
        init=init,
        frozen=frozen,
        output_weights=output_weights,
    )
    # validate every group up front: a bad row stops the job before any fitting
    positive = get_objective(objective).space == "log"
    prepared = {}
    for g, df in groups:
        try:
            prepared[_key(g)] = prepare(law, df, columns=columns, target=target, positive_target=positive)
        except ValueError as err:
            raise ValueError(f"group {g!r}: {err}") from None
    n_max = max(len(df) for _, df in groups)
    template = setup(law, data, **common)  # options such as max_passes fit every group
    k_out = template.data.n_outputs
    if template.layout.size > min(len(df) for _, df in groups) * k_out:
        small = min(groups, key=lambda t: len(t[1]))
        raise ValueError(
            f"group {small[0]!r} has {len(small[1])} rows, fewer than the "
            f"{template.layout.size} free parameters"
        )
    x0s = jnp.asarray(make_starts(template.law, template.layout, starts, seed=seed, init=template.init))
    plan = plan_for(
        x0s.shape[0],
        chunk // len(devs),
        n_max * k_out,
        template.layout.size,
        polish=polish,
        screen_steps=screen_steps,
        max_steps=max_steps,
        certify=template.objective.polish == "newton",
    )
    static = template.static(plan, (True, True, True))
    _, _, _, out_w, frozen_values, delta_arr = template.args()
    frozen_np = tuple(np.asarray(v) for v in template.frozen_values)

    def padded(g):
        d = prepared[_key(g)]
        pad = n_max - len(d)
        inputs = tuple(np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) for a in d.inputs)
        y = np.concatenate([d.y, np.repeat(d.y[-1:], pad, axis=0)])
        w = np.concatenate([np.ones(len(d)), np.zeros(pad)])
        return inputs, y, w

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        desc = f"fitting {law.name}" + (f" (process {index} of {count})" if count > 1 else "")
        bar = tqdm(total=len(share), initial=len(share) - len(todo), desc=desc, unit="group")
    with _open_for_append(part_file) as fh:
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            arrays = [padded(g) for g, _ in part]
            arrays += [arrays[-1]] * (chunk - len(part))  # same shapes for every call
            inputs = tuple(np.stack([a[0][i] for a in arrays]) for i in range(len(law.inputs)))
            y = np.stack([a[1] for a in arrays])
            w = np.stack([a[2] for a in arrays])
            args = (
                x0s,
                tuple(jnp.asarray(v) for v in inputs),
                jnp.asarray(y),
                jnp.asarray(w),
                out_w,
                frozen_values,
                delta_arr,
                jnp.asarray(ftol, jnp.float64),
            )
            batched = (False, True, True, True, False, False, False, False)
            sol = jax.device_get(map_batch(program, args, batched, devs, **static))
            records = []
            for i, (g, df) in enumerate(part):
                f = np.where(np.isfinite(sol.f[i]), sol.f[i], np.inf)
                best = int(np.argmin(f))
                fields = template.layout.unpack_law(np.asarray(sol.x[i, best]), frozen_np)
                params = {
                    name: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
                    for name, v in zip(law.param_names, fields)
                }
                record = {
                    "group": _plain(g),
                    "law": law.name,
                    "objective": template.objective.name,
                    "value": float(sol.f[i, best]) if np.isfinite(sol.f[i, best]) else None,
                    "status": solvers.STATUS_NAMES[int(sol.status[i, best])],
                    "n_points": len(df),
                    "params": params,
                }
                records.append(record)
            _append(fh, records)
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()
    if count == 1:
        return read_results(output)
    return _gather(output, part_file, groups, index)


def _gather(output, part_file, groups, index) -> pd.DataFrame:
    """Gather every process's part to every process; process 0 appends the groups not yet
    in ``output``, in group order."""
    with open(part_file, "rb") as fh:
        parts = gather_bytes(fh.read())
    gathered = [json.loads(line) for blob in parts for line in blob.decode().splitlines() if line.strip()]
    by_key = {_key(r["group"]): r for r in _records(output) + gathered}
    order = [_key(g) for g, _ in groups]
    if index == 0:
        have = {_key(r["group"]) for r in _records(output)}
        with _open_for_append(output) as fh:
            _append(fh, [by_key[k] for k in order if k in by_key and k not in have])
    return _frame([by_key[k] for k in order if k in by_key])

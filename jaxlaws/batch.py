"""Batch jobs: fit one law to many groups of a table, resumably.

Groups are padded to the same number of rows (padding rows carry weight 0, so they change
nothing) and fitted ``chunk`` at a time in one batched, JIT-compiled call; every chunk has
the same shapes, so the job compiles once. Each group's result is appended to a JSON-lines
file (flushed and synced) as soon as its chunk finishes, so an interrupted job loses
nothing that had finished: run it again with the same output and it fits only the groups
not yet in the file.

Every record carries the hash of its group's data (``data_sha256``, of the arrays the fit
read) and the fit's options (law, objective, starts, ...). On resume a group whose data
changed is fitted again, a group no longer in the table is dropped, a line cut or garbled
by an interruption is repaired, and a file written with other options is refused (one
line): one file never mixes two objectives. A job holds a lock on its output
(``OUTPUT.lock``, ``fcntl``), so a second job on the same file is refused at once.

Several hosts: under ``jax.distributed`` (:func:`jaxlaws.sharding.initialize`) every
process fits its share of the groups on its own devices, appending to its own part file
``OUTPUT.part-I-of-P`` (resumable in the same way); at the end the parts are gathered over
JAX's collectives and process 0 appends them to ``OUTPUT`` in group order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
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
from jaxlaws.problem import setup
from jaxlaws.sharding import gather_bytes, local_devices, padded_size, process_share
from jaxlaws.starts import make_starts

__all__ = ["fit_groups", "read_results", "ResumeWarning"]


class ResumeWarning(UserWarning):
    """What a resumed batch job repaired in its output or fits again."""


def _plain(group):
    """A group label as JSON-native values (a list for several ``by`` columns)."""
    if isinstance(group, tuple):
        return [_plain(g) for g in group] if len(group) > 1 else _plain(group[0])
    return group.item() if isinstance(group, np.generic) else group


def _key(group) -> str:
    return json.dumps(_plain(group), sort_keys=True, default=str)


def _records(path) -> list[dict]:
    """The complete records in a JSON-lines results file (a line cut or garbled by an
    interruption is not a record: its group is fitted again)."""
    return _scan(path)[0]


def _scan(path) -> tuple[list[dict], int, bool]:
    """``(records, unreadable lines, whether the file needs rewriting)``."""
    if not os.path.exists(path):
        return [], 0, False
    with open(path, "rb") as fh:
        data = fh.read()
    rows, bad = [], 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad += 1
            continue
        if isinstance(row, dict) and "group" in row and "params" in row:
            rows.append(row)
        else:
            bad += 1
    return rows, bad, bool(bad) or (bool(data) and not data.endswith(b"\n"))


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


def _rewrite(path, records: list[dict]) -> None:
    """Replace ``path`` by ``records`` atomically (a kill leaves the old file or the new)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        _append(fh, records)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path):
    """Hold ``PATH.lock`` (``fcntl.flock``) while the body runs; refuse if another job does."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    lock = f"{path}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f" (process {holder})" if holder else ""
            raise ValueError(
                f"another job is writing {path}{who}: wait for it to finish, or give another output"
            ) from None
        try:
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:  # not a lock file its last holder removed as we opened it
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def _jsonable(value):
    if isinstance(value, np.ndarray | jnp.ndarray | np.generic):
        return np.asarray(value).tolist()
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: _jsonable(v) for k, v in value._asdict().items()}
    return str(value)


def _normal(value):
    """``value`` as it reads back from JSON (tuples become lists, arrays lists)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_jsonable))


def _data_hash(d) -> str:
    """SHA-256 of the arrays a group's fit reads (inputs and target)."""
    h = hashlib.sha256()
    for a in (*d.inputs, d.y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _resume(path, options: dict, hashes: dict[str, str], *, repair: bool = True) -> set[str]:
    """Check and repair an existing output before a job appends to it.

    Refuses (``ValueError``) a file written with other options; drops unreadable lines,
    groups no longer in the table, results of groups whose data changed, and repeated
    groups (the last is kept); completes a last line cut before its newline. Rewrites the
    file when anything changed and warns (:class:`ResumeWarning`) what it did (with
    ``repair=False`` it only reads).

    Returns:
        The keys of the groups already done.
    """
    records, bad, dirty = _scan(path)
    if bad and not records:
        raise ValueError(
            f"{path} is not the output of a batch job (none of its {bad} lines is a result): "
            "give another output"
        )
    for r in records:
        old = r.get("options")
        if old != options:
            if old is None:
                raise ValueError(
                    f"{path} was written without its options (an older jaxlaws): give another output"
                )
            key = next(k for k in sorted(set(old) | set(options)) if old.get(k) != options.get(k))
            raise ValueError(
                f"{path} was fitted with {key}={old.get(key)!r}, this job has {key}={options.get(key)!r}: "
                "give another output, or delete it to fit again"
            )
    kept: dict[str, dict] = {}
    removed = changed = repeated = 0
    for r in records:
        key = _key(r["group"])
        if key not in hashes:
            removed += 1
        elif r.get("data_sha256") != hashes[key]:
            changed += 1
        else:
            repeated += key in kept
            kept[key] = r
    if repair and (dirty or removed or changed or repeated):
        _rewrite(path, list(kept.values()))
        notes = [
            f"{count} {what}"
            for count, what in (
                (bad, "unreadable line(s) dropped"),
                (changed, "group(s) whose data changed fitted again"),
                (removed, "group(s) no longer in the table dropped"),
                (repeated, "repeated group(s) kept once"),
            )
            if count
        ]
        if dirty and not bad:
            notes.append("its last line completed")
        warnings.warn(f"resuming {path}: " + ", ".join(notes), ResumeWarning, stacklevel=3)
    return set(kept)


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
            :func:`jaxlaws.fit` (the same starts for every group, taken as given: a group
            is screened and polished in rounds that widen on its own results only, and no
            more starts are drawn for it).
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
    if not isinstance(data, pd.DataFrame):
        raise ValueError(
            f"data must be a pandas DataFrame with the group column(s), got {type(data).__name__}"
        )
    output = os.fspath(output)
    if os.path.isdir(output):
        raise ValueError(f"output {output!r} is a directory: give a file (JSON lines)")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise ValueError(f"output {output!r}: the directory {parent} does not exist")
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk must be a whole number >= 1, got {chunk!r}")
    devs = local_devices(devices)
    chunk = padded_size(chunk, len(devs))
    keys = [by] if isinstance(by, str) else list(by)
    if not keys or any(not str(k).strip() for k in keys):
        raise ValueError(f"by must name the group column(s), got {by!r}")
    for c in keys:
        if c not in data.columns:
            raise ValueError(f"group-by column {c!r} is not in the table: {[str(k) for k in data.columns]}")
    unlabelled = data[keys].isna().any(axis=1) | (
        data[keys].astype(str).apply(lambda s: s.str.strip()) == ""
    ).any(axis=1)
    if unlabelled.all():
        raise ValueError(f"every row has an empty {keys[0]!r} label: no group to fit")
    if unlabelled.any():
        first = _plain(data.index[unlabelled.to_numpy()][0])
        warnings.warn(
            f"{int(unlabelled.sum())} row(s) with an empty group label (column {keys[0]!r}, first row "
            f"{first!r}) are not fitted",
            UserWarning,
            stacklevel=2,
        )
        data = data[~unlabelled.to_numpy()]
    groups = list(data.groupby(by, sort=True))
    if not groups:
        raise ValueError("the table has no rows to group")
    index, count = jax.process_index(), jax.process_count()
    part_file = part_path(output, index, count)
    share = process_share(groups)  # the same groups on every run of this process
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
            raise ValueError(f"group {_plain(g)!r}: {err}") from None
        y = prepared[_key(g)].y.ravel()
        if y.size > 1 and np.all(y == y[0]):
            raise ValueError(
                f"group {_plain(g)!r}: the target is constant (every row {y[0]:g}): nothing to fit"
            )
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
    options = _normal(
        dict(
            law=law.name,
            law_options=dict(law.options),
            by=keys,
            objective=template.objective.name,
            delta=delta,
            columns=dict(columns or {}),
            target=target,
            frozen=[n for n, free in zip(template.layout.names, template.layout.free) if not free],
            output_weights=output_weights,
            starts=starts if starts is None or isinstance(starts, int | str) else "given",
            seed=seed,
            starts_sha256=hashlib.sha256(np.asarray(x0s).tobytes()).hexdigest(),
            frozen_sha256=hashlib.sha256(
                b"".join(np.asarray(v).tobytes() for v in template.frozen_values)
            ).hexdigest(),
            polish=polish,
            screen_steps=screen_steps,
            max_steps=max_steps,
            ftol=ftol,
        )
    )
    hashes = {k: _data_hash(d) for k, d in prepared.items()}
    frozen_np = tuple(np.asarray(v) for v in template.frozen_values)

    def padded(g):
        d = prepared[_key(g)]
        pad = n_max - len(d)
        inputs = tuple(np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) for a in d.inputs)
        y = np.concatenate([d.y, np.repeat(d.y[-1:], pad, axis=0)])
        w = np.concatenate([np.ones(len(d)), np.zeros(pad)])
        return inputs, y, w

    def fit_chunk(part) -> list[dict]:
        arrays = [padded(g) for g, _ in part]
        arrays += [arrays[-1]] * (chunk - len(part))  # same shapes for every call
        inputs = tuple(np.stack([a[0][i] for a in arrays]) for i in range(len(law.inputs)))
        y = np.stack([a[1] for a in arrays])
        w = np.stack([a[2] for a in arrays])
        sol = template.solve(
            x0s,
            tables={"inputs": inputs, "y": y, "w": w},
            n_tables=len(part),  # the padding is not solved
            ftol=ftol,
            polish=polish,
            screen_steps=screen_steps,
            max_steps=max_steps,
            devices=len(devs),
        )
        records = []
        for i, (g, df) in enumerate(part):
            f = np.where(np.isfinite(sol.f[i]), sol.f[i], np.inf)
            best = int(np.argmin(f))
            fields = template.layout.unpack_law(np.asarray(sol.x[i, best]), frozen_np)
            params = {
                name: (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
                for name, v in zip(law.param_names, fields)
            }
            records.append(
                {
                    "group": _plain(g),
                    "law": law.name,
                    "objective": template.objective.name,
                    "value": float(sol.f[i, best]) if np.isfinite(sol.f[i, best]) else None,
                    "status": solvers.STATUS_NAMES[int(sol.status[i, best])],
                    "n_points": len(df),
                    "params": params,
                    "data_sha256": hashes[_key(g)],
                    "options": options,
                }
            )
        return records

    with _locked(os.path.realpath(part_file)):  # one lock whatever link names the file
        done = _resume(part_file, options, hashes)
        if count > 1:  # what process 0 gathered into the output on an earlier run
            done |= _resume(output, options, hashes, repair=False)
        todo = [(g, df) for g, df in share if _key(g) not in done]
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            desc = f"fitting {law.name}" + (f" (process {index} of {count})" if count > 1 else "")
            bar = tqdm(total=len(share), initial=len(share) - len(todo), desc=desc, unit="group")
        with open(part_file, "a") as fh:
            for start in range(0, len(todo), chunk):
                part = todo[start : start + chunk]
                _append(fh, fit_chunk(part))
                if bar is not None:
                    bar.update(len(part))
        if bar is not None:
            bar.close()
    if count == 1:
        return read_results(output)
    return _gather(output, part_file, groups, index, options, hashes)


def _gather(output, part_file, groups, index, options, hashes) -> pd.DataFrame:
    """Gather every process's part to every process; process 0 rewrites ``output`` with
    every group's result in group order."""
    with open(part_file, "rb") as fh:
        parts = gather_bytes(fh.read())
    gathered = [json.loads(line) for blob in parts for line in blob.decode().splitlines() if line.strip()]
    earlier = [r for r in _records(output) if hashes.get(_key(r["group"])) == r.get("data_sha256")]
    by_key = {_key(r["group"]): r for r in earlier + gathered}
    order = [_key(g) for g, _ in groups]
    results = [by_key[k] for k in order if k in by_key]
    if index == 0:
        with _locked(os.path.realpath(output)):
            _rewrite(output, results)
    return _frame(results)

"""The ``jaxlaws`` command: a thin layer over the Python API (no numerics here).

    jaxlaws datasets
    jaxlaws fit --dataset chinchilla-epoch --law chinchilla [--output fit.json]
    jaxlaws plot fit.json --output fit.png
    jaxlaws allocate fit.json --compute 1e21:1e25:9 [--unique 25e9]
    jaxlaws predict fit.json --at N=70e9,D=1.4e12 [--at ...] [--data new.csv] [--level 0.9]
    jaxlaws mix pools.json --sizes 12.8e6,12.8e6 --budgets 16e6:5e9:20 --plot pareto.png
    jaxlaws fit --data runs.csv --law chinchilla --columns N=params,D=tokens --target val_loss
    jaxlaws fit --law mixing_exp --ratios ratios.csv --metrics metrics.csv --output mix.json
    jaxlaws propose mix.json --budgets 1e10:1e12:20 --unique unique.csv --max-epochs 4
    jaxlaws next fit.json --candidates pool.csv --cost "6*N*D" --target big.csv --budget 1e21 \
        [-n 5] [--criterion v|d|basin] [--output next.csv] [--plot next.png]
    jaxlaws fit --data runs.csv --law chinchilla --group-by ablation --output fits.jsonl \
        [--coordinator HOST:PORT --num-processes P --process-id I | --distributed]

A user mistake (a missing column, a NaN, an unknown law, a bad flag value) prints one
line on stderr and exits with status 2, before any fitting and without writing an output;
it never shows a traceback. Rows of a CSV file are named by their line in the file (the
header is line 1). Warnings (a parameter at a bound, a resumed job's repairs, groups with
an empty label) are one line each on stderr, ``jaxlaws: warning: ...``. A fit whose best
start did not converge is written with its status, says so in a warning and exits with
status 3; a batch job exits 0 and counts its groups' statuses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

__all__ = ["main"]

#: Exit status of a user mistake (one line on stderr, nothing written).
USAGE_ERROR = 2
#: Exit status of a fit that ran but whose best start did not converge (its output is written).
NOT_CONVERGED = 3


def _column_spec(text: str, flag: str):
    """``COL``, ``COL1+COL2+...`` (several columns: one vector input or several targets) or
    a glob such as ``p_*`` (kept as a string; the table resolves it)."""
    parts = [c.strip() for c in text.split("+")]
    if any(not c for c in parts):
        raise ValueError(f"{flag}: empty column name in {text!r}")
    return parts if len(parts) > 1 else parts[0]


def _parse_columns(text: str | None) -> dict:
    if text is None:
        return {}
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"--columns expects LAW_INPUT=COLUMN pairs separated by commas, got {part!r}")
        k, v = (t.strip() for t in part.split("=", 1))
        if not k:
            raise ValueError(f"--columns: no law input before '=' in {part!r}")
        if k in out:
            raise ValueError(f"--columns names {k!r} twice")
        out[k] = _column_spec(v, f"--columns {k}=")
    return out


def _read_table(path: str, text_columns=()):
    """Read a CSV or Parquet file; rows are labelled by their line in a CSV (header = line 1,
    blank lines counted). ``text_columns`` (group labels) keep ``NA``, ``None`` and the like
    as written: only an empty cell is missing."""
    import csv

    import numpy as np
    import pandas as pd

    if os.path.isdir(path):
        raise ValueError(f"--data {path} is a directory: give a CSV or Parquet file")
    if path.endswith(".parquet"):
        try:
            table = pd.read_parquet(path)
        except ImportError:
            raise ValueError("reading Parquet needs pyarrow (pip install pyarrow), or give a CSV") from None
        if table.columns.duplicated().any():
            raise ValueError(f"{path} has two columns named {table.columns[table.columns.duplicated()][0]!r}")
    else:
        starts, header = [], None  # the file line each record starts on (blank lines skipped)
        try:
            with open(path, newline="") as fh:
                reader = csv.reader(fh)
                first = 1
                for row in reader:
                    if len(row) > 1 or (row and row[0].strip()):
                        starts.append(first)
                        header = row if header is None else header
                    first = reader.line_num + 1
        except (UnicodeDecodeError, csv.Error) as err:
            raise ValueError(f"{path} is not a readable CSV file: {err}") from None
        if not starts:
            raise ValueError(f"{path} is empty")
        seen = {}
        for j, name in enumerate(header):
            if name in seen:
                raise ValueError(
                    f"{path} has two columns named {name!r} (columns {seen[name] + 1} and {j + 1})"
                )
            seen[name] = j
        try:
            table = pd.read_csv(path)
        except pd.errors.ParserError as err:
            raise ValueError(f"{path} is not a well-formed CSV: {str(err).strip().splitlines()[0]}") from None
        labels = [c for c in text_columns if c in table.columns]
        if labels:
            as_text = pd.read_csv(path, usecols=labels, dtype=str, keep_default_na=False)
            for c in labels:
                text = as_text[c].str.strip().replace("", np.nan).to_numpy()
                if pd.to_numeric(pd.Series(text), errors="coerce").notna().sum() < pd.notna(text).sum():
                    table[c] = text  # some label is not a number: every label as written
        if len(starts) - 1 == len(table):
            table.index = pd.Index(starts[1:], name="line")
        else:  # pandas split the records otherwise (comments, odd quoting): number them
            table.index = pd.RangeIndex(2, len(table) + 2, name="line")
    if len(table) == 0:
        raise ValueError(f"{path} has a header but no rows")
    return table


def _starts(text: str | None):
    if text is None:
        return None
    if text in ("grid", "init"):
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"--starts must be 'grid', 'init' or a number of random starts (>= 1), got {text!r}")
    return count


def _check_flags(args) -> None:
    """Flag values the parser cannot check, each refused in one line before any work."""
    if not (args.delta > 0 and args.delta < float("inf")):
        raise ValueError(f"--delta must be a positive number, got {args.delta!r}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.bootstrap is not None and args.bootstrap < 2:
        raise ValueError(f"--bootstrap needs at least 2 resamples, got {args.bootstrap}")
    if args.max_steps < 1:
        raise ValueError(f"--max-steps must be at least 1, got {args.max_steps}")
    if args.max_starts is not None and args.max_starts < 1:
        raise ValueError(f"--max-starts must be at least 1, got {args.max_starts}")
    if args.max_seconds is not None and not (0 < args.max_seconds < float("inf")):
        raise ValueError(f"--max-seconds must be a positive number, got {args.max_seconds!r}")
    if args.chunk is not None and args.chunk < 1:
        raise ValueError(f"--chunk must be at least 1, got {args.chunk}")
    if args.devices is not None and args.devices < 1:
        raise ValueError(f"--devices must be at least 1, got {args.devices}")
    if args.keep_samples and not args.bootstrap:
        raise ValueError("--keep-samples keeps the bootstrap's samples: give --bootstrap N too")
    if args.bootstrap and args.group_by:
        raise ValueError(
            "--bootstrap with --group-by is not supported: bootstrap one group's table at a time"
        )
    if args.group_by is not None and not all(c.strip() for c in args.group_by.split(",")):
        raise ValueError(f"--group-by: empty column name in {args.group_by!r}")
    if args.chunk is not None and not args.group_by:
        raise ValueError("--chunk sets groups per batched call: it needs --group-by")
    if args.subset is not None and args.dataset is None:
        raise ValueError("--subset selects rows of a bundled --dataset; with --data, filter the file")
    if args.num_processes is not None and args.num_processes < 1:
        raise ValueError(f"--num-processes must be at least 1, got {args.num_processes}")
    procs, pid = args.num_processes, args.process_id
    if pid is not None and procs is not None and not 0 <= pid < procs:
        raise ValueError(f"--process-id must be in 0..{procs - 1}, got {pid}")
    if args.coordinator is not None:
        host, _, port = args.coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--coordinator must be HOST:PORT, got {args.coordinator!r}")
    law_file = args.law.rpartition(":")[0] if args.law and ":" in args.law else ""
    inputs = (args.data, args.ratios, args.metrics, law_file)
    _check_output(args.output, "--output", *(f for f in inputs if f))


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one existing file."""
    try:
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def _check_output(path, flag: str, *inputs: str) -> None:
    """An output path that can be written: not empty, not a directory, in a directory that
    exists, and none of ``inputs`` (which it would overwrite)."""
    if path is None:
        return
    if not path.strip():
        raise ValueError(f"{flag} is empty: give a file name")
    for given in inputs:
        if _same_file(given, path):
            raise ValueError(f"{flag} {path} is a file this command reads: writing it would destroy it")
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a directory: give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"{flag} {path}: the directory {parent} does not exist")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"{flag} {path} is not a regular file: give a file name")
    import tempfile

    try:  # the write goes to a temporary file beside the output: try one now, before any work
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise ValueError(f"{flag} {path}: cannot write in {parent} ({err.strerror})") from None


def _check_not_empty(args) -> None:
    """A flag given an empty value (``--budgets ''``) is a mistake, never the default."""
    for name, value in vars(args).items():
        if isinstance(value, str) and not value.strip() and name != "command":
            if name == "fit":
                raise ValueError("the saved fit's path is empty: give the FIT.json file")
            raise ValueError(f"--{name.replace('_', '-')} is empty: give a value or leave the flag out")
        if name == "at" and value and not all(v.strip() for v in value):
            raise ValueError("--at is empty: give INPUT=VALUE pairs or leave the flag out")


def _init(text: str | None):
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--init is not valid JSON ({err.msg} at character {err.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"--init must be a JSON object of parameter values, such as '{{\"E\": 1.7}}', got {text!r}"
        )
    return value


def _join_cluster(args) -> None:
    """``--distributed`` or ``--coordinator/--num-processes/--process-id``: join a
    multi-process JAX job before anything touches a device."""
    explicit = [args.coordinator, args.num_processes, args.process_id]
    if not args.distributed and all(v is None for v in explicit):
        return
    if not args.group_by:
        raise ValueError("a distributed run shares out the groups of --group-by; give --group-by")
    from jaxlaws.sharding import initialize

    if args.distributed:
        if any(v is not None for v in explicit):
            raise ValueError("give --distributed (auto-detect) or --coordinator/--num-processes/--process-id")
        initialize()
    elif any(v is None for v in explicit):
        raise ValueError("give all of --coordinator HOST:PORT, --num-processes P and --process-id I")
    else:
        initialize(args.coordinator, args.num_processes, args.process_id)


def _fit(args) -> int:
    _check_flags(args)
    _join_cluster(args)
    import jax
    import numpy as np

    import jaxlaws

    given = [f for f, v in (("--dataset", args.dataset), ("--data", args.data), ("--swarm", args.swarm)) if v]
    if args.ratios or args.metrics:
        given.append("--ratios/--metrics")
    if len(given) != 1:
        raise ValueError(
            "give exactly one of --dataset NAME, --data FILE, --ratios FILE --metrics FILE or --swarm NAME"
            + (f" (got {', '.join(given)})" if given else "")
        )
    swarm_source = None
    if args.ratios or args.metrics or args.swarm:
        swarm, swarm_source = _read_swarm(args)
        table = swarm.frame
        source = swarm.source
        subset = None
        law = args.law
        if law is None:
            raise ValueError(
                "--law is required with a swarm (mixing_exp, bimix, mixture_additive or FILE.py:NAME)"
            )
    elif args.dataset is not None:
        info = jaxlaws.datasets.info(args.dataset)
        subset = info.fit_subset if args.subset is None else (None if args.subset == "all" else args.subset)
        table = jaxlaws.datasets.load(args.dataset, subset=subset)
        source = f"dataset {args.dataset}" + (f" (subset {subset})" if subset else "")
    else:
        by = [c.strip() for c in args.group_by.split(",")] if args.group_by else []
        table = _read_table(args.data, text_columns=by)
        source = f"file {args.data}"
        subset = None
    if swarm_source is None:
        law = args.law or (jaxlaws.datasets.info(args.dataset).law if args.dataset else None)
    else:
        law_obj = jaxlaws.laws.get(law)
        fc = swarm.fit_columns(law_obj)
        common_columns = {**fc["columns"], **_parse_columns(args.columns)}
    if law is None:
        raise ValueError("--law is required with --data")
    # what fit, bootstrap and batch jobs share
    common = dict(
        columns=_parse_columns(args.columns) if swarm_source is None else common_columns,
        target=_column_spec(args.target, "--target")
        if args.target is not None
        else (None if swarm_source is None else fc["target"]),
        output_weights=_floats(args.output_weights, "--output-weights") if args.output_weights else None,
        objective=args.objective,
        delta=args.delta,
        init=_init(args.init),
        frozen=[s.strip() for s in args.frozen.split(",")] if args.frozen else None,
        devices=args.devices,
        max_steps=args.max_steps,
    )
    if args.starts is None:  # the law's published grid, else random starts from its ranges
        args.starts = "grid" if jaxlaws.laws.get(law).start_grid is not None else None
    if args.group_by:
        return _fit_groups(args, table, law, common)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", jaxlaws.ConvergenceWarning)
        res = jaxlaws.fit(
            law,
            table,
            starts=_starts(args.starts),
            seed=args.seed,
            max_starts=args.max_starts,
            max_seconds=args.max_seconds,
            progress=True,
            **common,
        )
    print(f"{source}: {res.n_points} rows")
    print(res.summary())
    for w in caught:
        _warn(str(w.message))
    if res.status != "converged" and not any("did not converge" in str(w.message) for w in caught):
        _warn(
            f"the best start did not converge (status {res.status}): the parameters are not a "
            "minimum; try more --starts, or check the law and the data"
        )
    from jaxlaws.io import fit_record

    record = fit_record(
        res,
        table,
        starts=args.starts,
        seed=args.seed,
        source=source,
        dataset=args.dataset,
        subset=subset if args.dataset else None,
        data_path=os.path.abspath(args.data) if args.data else None,
    )
    if swarm_source is not None:
        record["swarm"] = swarm_source
    if ":" in law:  # a user's law: where to load it from again
        where, _, attr = law.rpartition(":")
        record["law_source"] = (os.path.abspath(where) if where.endswith(".py") else where) + ":" + attr
    record["warnings"] = [str(w.message) for w in caught]
    if args.bootstrap:
        bs = jaxlaws.bootstrap(
            jax.random.key(args.seed), law, table, args.bootstrap, point=res, progress=True, **common
        )
        print(bs.summary())
        record["bootstrap"] = {
            "n_resamples": args.bootstrap,
            "n_failed": bs.n_failed,
            "stderr": bs.stderr,
            "interval95": {k: list(v) for k, v in bs.interval().items()},
        }
        if args.keep_samples:  # later predictions and decisions get intervals from these
            ok = np.asarray(bs.ok)
            record["bootstrap"]["samples"] = {
                k: np.asarray(v)[ok].tolist() for k, v in bs.samples._asdict().items()
            }
    if args.output:
        _write_json(record, args.output)
        print(f"wrote {args.output}")
    return 0 if res.status == "converged" else NOT_CONVERGED


def _read_swarm(args):
    """A swarm from ``--ratios/--metrics`` (two tables joined on ``--on``) or ``--swarm``
    (bundled), and how to read it again (kept in the saved fit)."""
    import jaxlaws
    from jaxlaws.io import file_hash

    if args.group_by:
        raise ValueError("--group-by is for --data tables; fit a swarm as one table")
    if args.swarm:
        if args.on or args.domains or args.normalise:
            raise ValueError("--on, --domains and --normalise are for --ratios/--metrics files, not --swarm")
        return jaxlaws.swarm.load(args.swarm), {"name": args.swarm}
    if not (args.ratios and args.metrics):
        raise ValueError("a swarm needs both --ratios FILE and --metrics FILE (joined on a run id, --on)")
    domains = _column_spec(args.domains, "--domains") if args.domains else None
    swarm = jaxlaws.swarm.read(
        args.ratios, args.metrics, on=args.on, domains=domains, normalise=args.normalise
    )
    return swarm, {
        "ratios": os.path.abspath(args.ratios),
        "metrics": os.path.abspath(args.metrics),
        "on": swarm.on,
        "domains": list(swarm.domains),
        "metric_columns": list(swarm.metrics),
        "normalise": bool(args.normalise),
        "ratios_sha256": file_hash(args.ratios),  # which file changed, should one change
        "metrics_sha256": file_hash(args.metrics),
    }


def _warn(message: str) -> None:
    print(f"jaxlaws: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _fit_groups(args, table, law, common) -> int:
    from jaxlaws.batch import fit_groups

    if not args.output:
        raise ValueError("--group-by needs --output FILE.jsonl (results are appended as groups finish)")
    by = [c.strip() for c in args.group_by.split(",")]
    missing = [c for c in by if c not in table.columns]
    if missing:
        raise ValueError(f"--group-by column {missing[0]!r} is not in the table: {list(table.columns)}")
    results = fit_groups(
        law,
        table,
        by if len(by) > 1 else by[0],
        args.output,
        starts=_starts(args.starts),
        seed=args.seed,
        chunk=64 if args.chunk is None else args.chunk,
        **common,
    )
    import jax

    counts = results["status"].value_counts().to_dict()
    if jax.process_index() == 0:
        print(f"{len(results)} groups in {args.output}: {counts}")
        failed = len(results) - counts.get("converged", 0)
        if failed:
            _warn(f"{failed} of {len(results)} groups did not converge (their status is in {args.output})")
    else:
        print(f"process {jax.process_index()}: its groups are in {args.output} (written by process 0)")
    return 0


def _plot(args) -> int:
    from jaxlaws.io import load_fit
    from jaxlaws.plot import plot_fit

    saved = load_fit(args.fit)
    out = _png(
        args.output if args.output is not None else os.path.splitext(args.fit)[0],
        "--output",
        args.fit,
        *saved.input_files(),
    )
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be between 0 and 1, got {args.level!r}")
    to = None
    if args.extrapolate is not None:
        if "=" in args.extrapolate:
            to = _pairs(args.extrapolate, "--extrapolate")
        else:
            (to,) = _floats(args.extrapolate, "--extrapolate")
        values = list(to.values()) if isinstance(to, dict) else [to]
        if not all(0 < v < float("inf") for v in values):
            raise ValueError(f"--extrapolate values must be finite and positive, got {args.extrapolate!r}")
    mixture = bool(saved.law.simplex_inputs)
    if mixture and (args.extrapolate or args.by):
        raise ValueError("--extrapolate and --by are for laws off the simplex; use --domain here")
    if not mixture and args.domain is not None:
        raise ValueError(f"--domain is for mixture laws; {saved.law.name!r} has no input on the simplex")
    table = saved.data()
    columns = {k: v for k, v in saved.record.get("columns", {}).items() if k != "target"}
    target = saved.record.get("columns", {}).get("target")
    if mixture:
        from jaxlaws.plot import plot_mixture

        fig = plot_mixture(saved.law, saved.params, table, domain=args.domain, columns=columns, target=target)
    else:
        fig = plot_fit(
            saved.law,
            saved.params,
            table,
            columns=columns,
            target=target,
            by=args.by,
            extrapolate_to=to,
            samples=saved.samples,  # a band where the fit kept its bootstrap samples
            level=args.level,
        )
    _save_figure(fig, out)
    print(f"wrote {out}")
    return 0


def _floats(text: str, flag: str) -> list[float]:
    items = [v.strip() for v in text.split(",")]
    if any(not v for v in items):
        raise ValueError(f"{flag} has an empty item: {text!r}")
    try:
        return [float(v) for v in items]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated numbers, got {text!r}") from None


def _budgets(text: str, flag: str):
    """``a,b,...`` or ``lo:hi:count`` (log-spaced), each finite and positive."""
    import numpy as np

    if ":" in text:
        try:
            lo, hi, k = text.split(":")
            values = np.geomspace(float(lo), float(hi), int(k))
        except ValueError:
            raise ValueError(f"{flag} expects a,b,... or lo:hi:count (count >= 1), got {text!r}") from None
    else:
        values = np.array(_floats(text, flag))
    if values.size == 0:
        raise ValueError(f"{flag} has no values: {text!r}")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise ValueError(f"{flag} must be finite and positive, got {values[bad][0]:g}")
    return values


def _write_json(record, path):
    """A saved fit, written whole or not at all."""
    from jaxlaws.io import atomic_write

    with atomic_write(path) as fh:
        json.dump(record, fh, indent=2)


def _save_figure(fig, path):
    """A figure saved whole or not at all, in the format its extension names."""
    from jaxlaws.io import atomic_write

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=fmt, dpi=120)


def _write_table(table, output, summary: str | None = None):
    """The table to ``output`` (CSV, whole or not at all), then to the terminal: all of it
    without ``output``; with it, ``summary`` or the table's first and last rows."""
    text = dict(index=False, float_format=lambda x: f"{x:.6g}")
    if not output:
        print(table.to_string(**text))
        return
    from jaxlaws.io import atomic_write

    with atomic_write(output) as fh:
        table.to_csv(fh, index=False)
    print(summary if summary is not None else table.to_string(max_rows=10, **text))
    print(f"wrote {output} ({len(table)} rows, {table.shape[1]} columns)")


def _allocate(args) -> int:
    from jaxlaws.decide import allocate
    from jaxlaws.io import load_fit

    saved = load_fit(args.fit)
    if saved.law.name not in ("chinchilla", "data_constrained"):
        hint = ""
        if saved.law.pool_params:
            hint = "; for pools use `jaxlaws mix`"
        elif saved.law.simplex_inputs:
            hint = "; for a data mixture use `jaxlaws propose`"
        raise ValueError(
            f"allocate needs a chinchilla or data_constrained fit; {args.fit} is a fit of "
            f"{saved.law.name!r}{hint}"
        )
    C = _budgets(args.compute, "--compute")
    U = _budgets(args.unique, "--unique") if args.unique else None
    if U is not None and len(U) not in (1, len(C)):
        raise ValueError(f"--unique has {len(U)} values: give one, or one per budget ({len(C)})")
    if U is not None and len(U) == 1:
        U = U[0]
    _check_output(args.output, "--output", args.fit, *saved.input_files())
    table = allocate(saved.params, C, U).frame()
    if saved.samples is not None:  # the decision's interval over the kept bootstrap samples
        spread = allocate(saved.samples, C, U).interval(args.level)
        for col in spread.columns:
            if "_lo" in col or "_hi" in col:
                table[col] = spread[col].to_numpy()
    _write_table(table, args.output)
    return 0


def _pairs(text: str, flag: str) -> dict[str, float]:
    """``NAME=VALUE,...`` as a mapping of numbers, each name once."""
    out = {}
    for part in text.split(","):
        name, eq, value = (v.strip() for v in part.partition("="))
        if not eq or not name:
            raise ValueError(f"{flag} expects NAME=VALUE pairs separated by commas, got {part!r}")
        if name in out:
            raise ValueError(f"{flag} {text!r} gives {name!r} twice")
        (out[name],) = _floats(value, f"{flag} {name}=")
    return out


def _points(args):
    """The inputs to predict at: ``--data FILE`` or ``--at INPUT=VALUE,...`` (repeatable)."""
    import pandas as pd

    if args.data is not None and args.at:
        raise ValueError("give --data FILE or --at INPUT=VALUE,..., not both")
    if args.data is None and not args.at:
        raise ValueError("give the points to predict at: --data FILE, or --at INPUT=VALUE,... (repeatable)")
    if args.data is not None:
        return _read_table(args.data)
    table = pd.DataFrame([_pairs(spec, "--at") for spec in args.at])
    table.index = pd.RangeIndex(1, len(table) + 1, name="at")
    return table


def _predict(args) -> int:
    import numpy as np
    import pandas as pd

    from jaxlaws.io import load_fit

    saved = load_fit(args.fit)
    reads = [args.fit, *saved.input_files(), *([args.data] if args.data else [])]
    _check_output(args.output, "--output", *reads)
    if not 0 < args.level < 1:
        raise ValueError(f"--level must be between 0 and 1, got {args.level!r}")
    points = _points(args)
    if args.at:  # scalar inputs only, named as the fit named them (or as the law does)
        law = saved.law
        if law.simplex_inputs or law.pool_params:
            raise ValueError(
                f"--at takes numbers; the law {law.name!r} takes a mixture or pools: give --data FILE "
                "with the columns the fit read (a mixture's domains, or pool, samples and pool_size)"
            )
        known = {saved.record.get("columns", {}).get(n, n) for n in law.inputs} | set(law.inputs)
        unknown = [c for c in points.columns if c not in known]
        if unknown:
            from jaxlaws.laws._law import suggest

            same = [k for k in sorted(known) if k.lower() == unknown[0].lower()]
            hint = f" (did you mean {same[0]!r}?)" if same else suggest(unknown[0], sorted(known))
            raise ValueError(
                f"--at names {unknown[0]!r}, which is not an input of the fit{hint}; its inputs are "
                f"{list(law.inputs)}"
            )
    pred = np.asarray(saved.predict(points))
    target = saved.record.get("columns", {}).get("target", saved.law.target)
    names = target if isinstance(target, list) else [target]
    pred = pred.reshape(len(points), -1)
    out = points.reset_index(drop=True).copy()
    spread = None
    if saved.samples is not None:
        spread = saved.predict_samples(points).reshape(-1, len(points), pred.shape[1])
    tag, q = f"{round(args.level * 100):d}", [(1 - args.level) / 2 * 100, (1 + args.level) / 2 * 100]
    for j, name in enumerate(names[: pred.shape[1]]):
        out[f"pred_{name}"] = pred[:, j]
        if spread is not None:
            lo, hi = np.percentile(spread[:, :, j], q, axis=0)
            out[f"pred_{name}_lo{tag}"], out[f"pred_{name}_hi{tag}"] = lo, hi
    if spread is None:
        _warn(
            "no intervals: the saved fit keeps no bootstrap samples (fit with --bootstrap N --keep-samples)"
        )
    _write_table(pd.DataFrame(out), args.output)
    return 0


def _pool_sizes(saved) -> list[float]:
    """Each pool's size from the long table a pool fit was made from (``--sizes`` otherwise)."""
    cols = saved.record.get("columns", {})
    if not cols.get("pools"):
        raise ValueError("give --sizes (unique samples per pool): the fit does not say its pools' sizes")
    table = saved.data()
    sizes = []
    for label in cols["pools"]:
        values = table.loc[table[cols["pool"]] == label, cols["pool_size"]].unique()
        if len(values) != 1:
            raise ValueError(
                f"pool {label!r} has {len(values)} sizes in the fit's table ({values[:3].tolist()}): "
                "give --sizes"
            )
        sizes.append(float(values[0]))
    return sizes


def _mix(args) -> int:
    import numpy as np

    from jaxlaws.decide import optimize_mixture
    from jaxlaws.io import load_fit

    saved = load_fit(args.fit)
    if saved.law.name != "filtering_mixture":
        raise ValueError(f"mix needs a filtering_mixture fit, got {saved.law.name!r}")
    sizes = np.array(_floats(args.sizes, "--sizes") if args.sizes is not None else _pool_sizes(saved))
    pools = np.shape(saved.params.b)[-1] if np.ndim(saved.params.b) else 1
    if sizes.shape[0] != pools:
        raise ValueError(f"--sizes has {sizes.shape[0]} pools; the fit has {pools}")
    bad = ~(np.isfinite(sizes) & (sizes > 0))
    if bad.any():
        raise ValueError(f"--sizes must be finite and positive, got {sizes[bad][0]:g}")
    names = [v.strip() for v in args.names.split(",")] if args.names is not None else None
    if names is None and saved.record.get("columns", {}).get("pools"):  # fitted from a long table
        names = [str(v) for v in saved.record["columns"]["pools"]]
    if names is not None and len(names) != pools:
        raise ValueError(f"--names has {len(names)} names; the fit has {pools} pools")
    if names is not None and (any(not n for n in names) or len(set(names)) != len(names)):
        raise ValueError(f"--names must be {pools} distinct, non-empty names, got {args.names!r}")
    _check_output(args.output, "--output", args.fit, *saved.input_files())
    plot = _png(args.plot, "--plot", args.fit, *saved.input_files()) if args.plot is not None else None
    if plot and args.output and os.path.abspath(plot) == os.path.abspath(args.output):
        raise ValueError(f"--plot and --output are the same file {plot}: give two names")
    dec = optimize_mixture(saved.params, sizes, _budgets(args.budgets, "--budgets"), devices=args.devices)
    _write_table(dec.frame(names), args.output)
    if plot:
        from jaxlaws.plot import plot_pareto

        _save_figure(plot_pareto(dec, names), plot)
        print(f"wrote {plot}")
    return 0


def _per_domain(text, flag: str, domains):
    """``x`` (every domain), ``a,b,...`` (one per domain, in order), ``NAME=x,...`` (by
    name; with ``*=x`` for the rest) or a CSV file of ``domain,value`` rows."""
    import numpy as np

    if text is None:
        return None
    if os.path.isfile(text):
        import pandas as pd

        t = _read_table(text)
        if t.shape[1] < 2:
            raise ValueError(f"{flag} {text}: give two columns, the domain and its value")
        names = [str(k).strip() for k in t.iloc[:, 0]]
        twice = [n for j, n in enumerate(names) if n in names[:j]]
        if twice:
            raise ValueError(f"{flag} {text} gives {twice[0]!r} twice: give each domain one row")
        pairs = dict(zip(names, t.iloc[:, 1]))
        values = pd.to_numeric(pd.Series(list(pairs.values())), errors="coerce")
        if values.isna().any():
            bad = list(pairs)[int(np.argmax(values.isna().to_numpy()))]
            raise ValueError(f"{flag} {text}: the value of {bad!r} is not a number")
        text = ",".join(f"{k}={v!r}" for k, v in zip(pairs, values.tolist()))
    if "=" not in text:
        vals = _floats(text, flag)
        if len(vals) == 1:
            return vals[0]
        if len(vals) != len(domains):
            raise ValueError(
                f"{flag} has {len(vals)} values; the mixture has {len(domains)} domains {list(domains)}"
            )
        return np.array(vals)
    out, rest = {}, None
    for part in text.split(","):
        name, _, value = (v.strip() for v in part.partition("="))
        (v,) = _floats(value, f"{flag} {name}=")
        if name in out or (name == "*" and rest is not None):
            raise ValueError(f"{flag} gives {name!r} twice: give each domain one value")
        if name == "*":
            rest = v
        elif name not in domains:
            import difflib

            close = difflib.get_close_matches(name, list(domains), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{flag}: {name!r} is not a domain of the fit{hint}; its domains are {list(domains)}"
            )
        else:
            out[name] = v
    missing = [d for d in domains if d not in out]
    if missing and rest is None:
        raise ValueError(
            f"{flag} has no value for {missing[:3]}{'...' if len(missing) > 3 else ''} (add *=VALUE)"
        )
    return np.array([out.get(d, rest) for d in domains])


def _propose(args) -> int:
    import jax

    import jaxlaws
    from jaxlaws.io import load_fit

    saved = load_fit(args.fit)
    law = saved.law
    mix = law.simplex_inputs
    if len(mix) != 1:
        raise ValueError(
            f"propose needs a fit of a mixture law (an input on the simplex); {law.name!r} has none"
        )
    domains = saved.record.get("columns", {}).get(mix[0])
    pools = law.passes is not None and law.passes[0] == mix[0]
    if pools and not isinstance(domains, list):  # pools fitted from a long table: their labels
        domains = saved.record.get("columns", {}).get("pools")
    if not isinstance(domains, list):
        raise ValueError(
            f"{args.fit} does not name its mixture's columns; refit it with this version of jaxlaws"
        )
    _check_output(args.output, "--output", args.fit, *saved.input_files())
    plot = _png(args.plot, "--plot", args.fit, *saved.input_files()) if args.plot is not None else None
    if plot and args.output and os.path.abspath(plot) == os.path.abspath(args.output):
        raise ValueError(f"--plot and --output are the same file {plot}: give two names")
    if args.bootstrap is not None and args.bootstrap < 2:
        raise ValueError(f"--bootstrap needs at least 2 resamples, got {args.bootstrap}")
    at = _pairs(args.at, "--at") if args.at else {}
    kw = dict(
        budgets=_budgets(args.budgets, "--budgets") if args.budgets else None,
        at=at,
        metric_weights=_floats(args.metric_weights, "--metric-weights") if args.metric_weights else None,
        min_weight=_per_domain(args.min_weight, "--min-weight", domains) if args.min_weight else 0.0,
        max_weight=_per_domain(args.max_weight, "--max-weight", domains) if args.max_weight else 1.0,
        unique_tokens=(
            _pool_sizes(saved)
            if pools and args.unique is None
            else _per_domain(args.unique, "--unique", domains)
        ),
        max_epochs=args.max_epochs,
        repetition=args.repetition,
        prior=_per_domain(args.prior, "--prior", domains),
        kl=_floats(args.kl, "--kl") if args.kl else 0.0,
        starts=args.starts,
        seed=args.seed,
    )
    model = saved
    if args.bootstrap:
        columns = {k: v for k, v in saved.record["columns"].items() if k != "target"}
        model = jaxlaws.bootstrap(
            jax.random.key(args.seed),
            law,
            saved.data(),
            args.bootstrap,
            columns=columns,
            target=saved.record["columns"]["target"],
            objective=saved.record.get("objective", "huber"),
            delta=saved.record.get("delta", 1e-3),
            progress=True,
        )  # every resample starts from the point fit (refitted here: a saved fit has no starts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)  # counted below, once
        prop = jaxlaws.propose_mixture(model, progress=True, **kw)
    table = prop.frame()
    if args.bootstrap:
        iv = prop.interval(0.9)
        for d in prop.domains:
            sel = iv[iv["domain"] == d]
            table[f"w_{d}_lo90"] = sel["lower"].to_numpy()
            table[f"w_{d}_hi90"] = sel["upper"].to_numpy()
    _write_table(table, args.output, prop.summary() if len(table) <= 20 else None)
    bad = (table["status"] != "converged").sum()
    if bad:
        _warn(f"{bad} of {len(table)} proposals did not converge (see the status column)")
    if plot:
        from jaxlaws.plot import plot_proposals

        _save_figure(plot_proposals(prop), plot)
        print(f"wrote {plot}")
    return 0 if not bad else NOT_CONVERGED


def _positive(text: str, flag: str) -> float:
    """One finite positive number."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise ValueError(f"{flag} must be a positive number (such as 1e21), got {text!r}")
    return value


def _law_table(path: str, flag: str, saved):
    """A table of points for a saved fit's law (candidates, targets): the file, and the
    columns it gives each law input (as the fit named them, or as the law does), checked
    against the law's domains."""
    from jaxlaws.data import fitted_input_columns, prepare

    table = _read_table(path)
    law = saved.law
    fitted = {k: v for k, v in saved.record.get("columns", {}).items() if k != "target"}
    columns = fitted_input_columns(law, fitted, table)
    for name in law.inputs:
        col = columns.get(name, name)
        missing = [c for c in (col if isinstance(col, list) else [col]) if c not in table.columns]
        if missing:
            named = fitted.get(name, name)
            also = f" (or {name!r})" if named != name else ""
            raise ValueError(
                f"{flag} {path} has no column {missing[0] if named == name else named!r}{also} for the "
                f"law's input {name!r}; its columns are {[str(c) for c in table.columns]}"
            )
    try:
        prepare(law, table, columns=columns, require_target=False, positive_target=False)
    except ValueError as err:
        raise ValueError(f"{flag} {path}: {str(err).splitlines()[0]}") from None
    return table, columns


def _refit(saved, criterion: str):
    """A :class:`~jaxlaws.FitResult` for a saved fit (which keeps no starts or basins): its
    law refitted to the table it was made from, from its parameters alone, or, for the
    ``"basin"`` criterion, from the starts it was made with (the law's default unless it
    was given a count of random starts), to find its basins again."""
    import jaxlaws

    record = saved.record
    columns = {k: v for k, v in record.get("columns", {}).items() if k != "target"}
    kw = dict(
        columns=columns,
        target=record.get("columns", {}).get("target"),
        objective=record.get("objective", "huber"),
        delta=record.get("delta", 1e-3),
        init=record["params"],
        frozen=record.get("frozen") or None,
        progress=True,
    )
    if criterion == "basin":
        given = str(record.get("starts"))  # a count of random starts, else the law's default
        starts = int(given) if given.isdigit() and int(given) > 0 else None
        if starts is None and saved.law.start_grid is not None:
            starts = "grid"
        kw.update(starts=starts, seed=int(record.get("seed") or 0))
    else:
        kw.update(starts="init")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jaxlaws.ConvergenceWarning)  # the saved fit's own warnings
        res = jaxlaws.fit(saved.law, saved.data(), **kw)
    value = record.get("value")
    if isinstance(value, int | float) and abs(res.value - value) > 1e-6 * abs(value) + 1e-12:
        _warn(
            f"the refit's objective {res.value:.10g} differs from the saved fit's {value:.10g}: the design "
            "is made at the refit's parameters"
        )
    return res


def _next(args) -> int:
    import pandas as pd

    from jaxlaws.design import COST_POWER, costs, next_runs
    from jaxlaws.io import load_fit

    saved = load_fit(args.fit)
    reads = [args.fit, args.candidates, args.target, *saved.input_files()]
    _check_output(args.output, "--output", *reads)
    plot = _png(args.plot, "--plot", *reads) if args.plot is not None else None
    if plot and args.output and os.path.abspath(plot) == os.path.abspath(args.output):
        raise ValueError(f"--plot and --output are the same file {plot}: give two names")
    budget = _positive(args.budget, "--budget")
    if args.n is not None and args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}")
    cost_power = COST_POWER if args.cost_power is None else args.cost_power
    if not 0 <= cost_power < float("inf"):
        raise ValueError(f"--cost-power must be a number >= 0, got {args.cost_power!r}")
    law = saved.law
    target = saved.record.get("columns", {}).get("target", law.target)
    if isinstance(target, list) and len(target) != 1:
        raise ValueError(f"next takes a fit of one output; {args.fit} fits {len(target)} columns {target}")
    plane = []
    if plot:  # the law's first two inputs that are numbers (not a mixture's proportions)
        fitted = saved.record.get("columns", {})
        plane = [n for n in law.inputs if not isinstance(fitted.get(n, n), list)][:2]
        if not plane:
            raise ValueError(f"--plot draws the candidates against the law's inputs; {law.name!r} has none")
    cand, cand_cols = _law_table(args.candidates, "--candidates", saved)
    targets, target_cols = _law_table(args.target, "--target", saved)
    names = {k: v for k, v in cand_cols.items() if k in law.inputs}
    cost_v = costs(args.cost, cand, names=names, role=f"--candidates {args.candidates}")
    cheapest = int(cost_v.argmin())
    if cost_v[cheapest] > budget:
        raise ValueError(
            f"--budget {budget:g} is below the cheapest candidate's cost {cost_v[cheapest]:.4g} (row "
            f"{cand.index[cheapest]}): no candidate fits"
        )
    res = _refit(saved, args.criterion)
    runs = saved.data()
    roles = {
        "candidates: ": f"--candidates {args.candidates}: ",
        "targets: ": f"--target {args.target}: ",
        "runs: ": f"the table of {args.fit}: ",
    }
    try:
        design = next_runs(
            res,
            cand,
            runs=runs,
            targets=targets,
            cost=args.cost,
            budget=budget,
            n=args.n,
            criterion=args.criterion,
            cost_power=cost_power,
        )
    except ValueError as err:
        msg = str(err).splitlines()[0]
        for role, flag in roles.items():
            if msg.startswith(role):
                msg = flag + msg[len(role) :]
        raise ValueError(msg) from None
    _write_table(design.frame(), args.output, design.summary())
    if plot:
        from jaxlaws.data import fitted_input_columns
        from jaxlaws.plot import plot_design

        axes = [cand_cols[n] for n in plane]

        def on_plane(table, columns):  # a table's plane columns, named as the candidates name them
            return pd.DataFrame({axes[i]: table[columns[n]].to_numpy() for i, n in enumerate(plane)})

        fitted = {k: v for k, v in saved.record.get("columns", {}).items() if k != "target"}
        fig = plot_design(
            design,
            x=axes[0],
            y=axes[1] if len(axes) > 1 else "cost",
            targets=on_plane(targets, target_cols),
            runs=on_plane(runs, fitted_input_columns(law, fitted, runs)),
        )
        _save_figure(fig, plot)
        print(f"wrote {plot}")
    if res.status != "converged":
        _warn(f"the refit of {args.fit} did not converge (status {res.status}): the design is made there")
        return NOT_CONVERGED
    return 0


def _png(path: str, flag: str, *inputs: str) -> str:
    """Where a plot goes: ``path``, with ``.png`` added when it has no extension."""
    if not path.strip():
        raise ValueError(f"{flag} is empty: give a file name")
    if os.path.splitext(path)[1] in ("", "."):
        path = path.rstrip(".") + ".png"
    _check_output(path, flag, *inputs)
    return path


def _datasets(args) -> int:
    import jaxlaws

    for name in jaxlaws.datasets.names():
        info = jaxlaws.datasets.info(name)
        n = len(jaxlaws.datasets.load(name))
        print(f"{name:<20} {n:>4} rows  law {info.law:<18} {info.citation}")
    for name, b in jaxlaws.swarm.BUNDLED.items():
        print(f"{name:<20} swarm (fit --swarm {name})  {b['description']}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with its mistakes as one-line errors (``jaxlaws: error: ...``, status 2)
    instead of a usage block; ``--help`` prints the usage."""

    def error(self, message):
        if "expected one argument" in message:
            import re

            flag = re.search(r"argument (--[\w-]+)", message)
            flag = flag.group(1) if flag else "--compute"
            message += f" (a value that starts with '-' needs '=', as in {flag}=-1)"
        where = "" if self.prog == "jaxlaws" else f"{self.prog}: "
        raise ValueError(f"{where}{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxlaws", description="Fit scaling laws to tables of training runs.")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not keep compiled solvers on disk (the cache is also off with JAXLAWS_CACHE_DIR=off)",
    )
    p.add_argument(
        "--cache-dir",
        help="where compiled solvers are kept (default: JAXLAWS_CACHE_DIR, else ~/.cache/jaxlaws/xla)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fit", help="fit a law to a bundled dataset or a CSV/Parquet file")
    f.add_argument("--dataset", help="a bundled dataset (see `jaxlaws datasets`)")
    f.add_argument("--subset", help="a named subset of the dataset ('all' for every row)")
    f.add_argument("--data", help="a CSV or Parquet file")
    f.add_argument(
        "--ratios", help="a swarm's mixture proportions: a CSV with a run id and one column per domain"
    )
    f.add_argument("--metrics", help="a swarm's metrics: a CSV with the run id and one column per metric")
    f.add_argument("--on", help="the run-id column joining --ratios and --metrics (default: the shared one)")
    f.add_argument(
        "--domains", help="the proportions' columns of --ratios (COL1+COL2 or a glob; default: all)"
    )
    f.add_argument(
        "--normalise",
        action="store_true",
        help="rescale proportions that sum within 1e-2 of one (printed rounded)",
    )
    f.add_argument("--swarm", help="a bundled swarm (see `jaxlaws datasets`)")
    f.add_argument(
        "--law",
        help="chinchilla, data_constrained, filtering, filtering_mixture, mixing_exp, bimix, "
        "mixture_additive, or your own law: FILE.py:NAME",
    )
    f.add_argument(
        "--columns",
        help="LAW_INPUT=COLUMN,... where the table's names differ; COL1+COL2+... or a glob (p_*) "
        "makes one vector input (mixture proportions)",
    )
    f.add_argument(
        "--target",
        help="the column to fit (default: the law's, e.g. loss); COL1+COL2+... or a glob (loss_*) "
        "for a law with several outputs",
    )
    f.add_argument("--output-weights", help="one weight per target column, comma-separated (default: 1)")
    f.add_argument(
        "--objective", default="huber", help="huber (default), huber_linear, sse, sse_log, huber_likelihood"
    )
    f.add_argument("--delta", type=float, default=1e-3, help="Huber threshold (default 1e-3)")
    f.add_argument(
        "--starts",
        help="grid, init, or a number of random starts (default: the law's published grid, else 64 random "
        "starts from the ranges declared with its constraints)",
    )
    f.add_argument("--seed", type=int, default=0)
    f.add_argument(
        "--max-starts",
        type=int,
        help="random starts drawn at most while the stopping rule expects a lower optimum unseen "
        "(default 1024)",
    )
    f.add_argument(
        "--max-seconds", type=float, help="draw no more starts and widen no round after this many seconds"
    )
    f.add_argument("--max-steps", type=int, default=500, help="solver steps per start at most (default 500)")
    f.add_argument("--init", help="JSON object of starting or frozen parameter values")
    f.add_argument("--frozen", help="comma-separated parameters held at their --init values")
    f.add_argument("--bootstrap", type=int, help="number of bootstrap resamples (at least 2; default none)")
    f.add_argument(
        "--keep-samples",
        action="store_true",
        help="keep the bootstrap's parameter sets in the saved fit (intervals for predict and allocate)",
    )
    f.add_argument("--output", help="write the fit as JSON here (JSON lines with --group-by)")
    f.add_argument("--group-by", help="fit every group of these comma-separated columns, resumably")
    f.add_argument("--chunk", type=int, help="groups per batched call with --group-by (default 64)")
    f.add_argument("--devices", type=int, help="local devices to shard the batch across (default: all)")
    f.add_argument(
        "--distributed", action="store_true", help="join a multi-host job, detected (SLURM, MPI, TPU)"
    )
    f.add_argument("--coordinator", help="multi-host job: HOST:PORT of process 0")
    f.add_argument("--num-processes", type=int, help="multi-host job: number of processes")
    f.add_argument("--process-id", type=int, help="multi-host job: this process's id, 0 to P-1")
    f.set_defaults(func=_fit)
    pl = sub.add_parser("plot", help="plot a saved fit against its data (PNG)")
    pl.add_argument("fit", help="a fit saved by `jaxlaws fit --output FIT.json`")
    pl.add_argument("--output", help="the PNG to write (default: FIT.png)")
    pl.add_argument(
        "--domain", help="mixture laws: the domain whose weight is on the x axis (default: the first)"
    )
    pl.add_argument(
        "--extrapolate",
        help="draw the curve out to a compute budget (1e24) or a point (N=70e9,D=1.4e12) and mark it",
    )
    pl.add_argument("--by", help="a column whose values group the runs into curves (default: model size)")
    pl.add_argument(
        "--level", type=float, default=0.9, help="band level with kept bootstrap samples (default 0.9)"
    )
    pl.set_defaults(func=_plot)
    a = sub.add_parser("allocate", help="compute-optimal N, D (and epochs) from a saved fit")
    a.add_argument("fit", help="a saved chinchilla or data_constrained fit")
    a.add_argument("--compute", required=True, help="FLOPs: a,b,... or lo:hi:count (log-spaced)")
    a.add_argument("--unique", help="unique tokens available (data_constrained), one or one per budget")
    a.add_argument(
        "--level", type=float, default=0.9, help="interval level with kept bootstrap samples (default 0.9)"
    )
    a.add_argument("--output", help="write the table as CSV")
    a.set_defaults(func=_allocate)
    pd_ = sub.add_parser("predict", help="a saved fit's predictions at new points, with intervals")
    pd_.add_argument("fit", help="a fit saved by `jaxlaws fit --output FIT.json`")
    pd_.add_argument("--data", help="a CSV or Parquet file with the law's input columns")
    pd_.add_argument(
        "--at", action="append", help="one point: INPUT=VALUE,... (e.g. N=70e9,D=1.4e12); repeat for more"
    )
    pd_.add_argument(
        "--level",
        type=float,
        default=0.9,
        help="interval level (default 0.9; needs a fit saved with --bootstrap N --keep-samples)",
    )
    pd_.add_argument("--output", help="write the predictions as CSV")
    pd_.set_defaults(func=_predict)
    m = sub.add_parser("mix", help="best sampling weights over data pools from a saved filtering_mixture fit")
    m.add_argument("fit", help="a saved filtering_mixture fit")
    m.add_argument(
        "--sizes",
        help="unique samples per pool, comma-separated (default: a fit from a long table of pool "
        "runs takes each pool's size from it)",
    )
    m.add_argument("--budgets", required=True, help="samples seen: a,b,... or lo:hi:count")
    m.add_argument("--names", help="pool names, comma-separated")
    m.add_argument("--output", help="write the table as CSV")
    m.add_argument("--plot", help="write the Pareto frontier as PNG")
    m.add_argument("--devices", type=int, help="local devices to shard the budgets across (default: one)")
    m.set_defaults(func=_mix)
    pr = sub.add_parser(
        "propose", help="the best data mixture from a saved mixture-law fit (caps, KL, budgets)"
    )
    pr.add_argument(
        "fit",
        help="a saved fit of a mixture law (mixing_exp, bimix, mixture_additive, filtering_mixture, yours)",
    )
    pr.add_argument("--budgets", help="training tokens: a,b,... or lo:hi:count (log-spaced)")
    pr.add_argument(
        "--unique",
        help="unique tokens per domain: a,b,..., NAME=U,...,*=U, or a CSV of domain,tokens rows (for "
        "pools, their sizes in samples; default for a fit from a long table of pool runs: from it)",
    )
    pr.add_argument("--max-epochs", type=float, help="cap on passes over each domain (needs --unique)")
    pr.add_argument(
        "--repetition",
        choices=("cap", "effective"),
        help="cap (with --max-epochs) or effective (Muennighoff)",
    )
    pr.add_argument("--min-weight", help="minimum weight: one number, a,b,... or NAME=x,...,*=x")
    pr.add_argument("--max-weight", help="maximum weight: one number, a,b,... or NAME=x,...,*=x")
    pr.add_argument("--prior", help="the prior mixture of the KL pull (default uniform)")
    pr.add_argument("--kl", help="strength(s) of the KL pull, comma-separated (a path)")
    pr.add_argument("--metric-weights", help="weight of each predicted metric (default: their mean)")
    pr.add_argument("--at", help="values of the law's other inputs: N=1e9,...")
    pr.add_argument("--bootstrap", type=int, help="resamples of the fit's data: intervals of each weight")
    pr.add_argument("--starts", type=int, default=8, help="starts per problem (default 8)")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--output", help="write the proposals as CSV")
    pr.add_argument("--plot", help="write the proposed weights against the budget as PNG")
    pr.set_defaults(func=_propose)
    nx = sub.add_parser(
        "next",
        help="which runs to train next: candidates picked by the predicted error they remove at the targets "
        "per cost, within a budget",
        description="Pick, one at a time, the candidate run that most reduces the predicted error at the "
        "target points per (cost / budget) ** cost-power, until -n picks or the budget is spent "
        "(jaxlaws.design.next_runs). A saved fit keeps no starts or basins: its law is refitted to the "
        "table it was made from, from its parameters (one start, one basin); with --criterion basin, "
        "from the starts it was made with (the law's default: its published grid, else random starts "
        "from its ranges) and its seed, so that the fit's other basins are found again.",
    )
    nx.add_argument("fit", help="a fit saved by `jaxlaws fit --output FIT.json` (one target column)")
    nx.add_argument(
        "--candidates",
        required=True,
        help="a CSV or Parquet file of the runs one could train: the law's input columns (as the fit "
        "named them, or as the law does), and the cost column if --cost names one",
    )
    nx.add_argument(
        "--target",
        required=True,
        help="a CSV or Parquet file of the points where predictions matter (the law's input columns)",
    )
    nx.add_argument(
        "--cost",
        default="cost",
        help="each candidate's cost: a column, or an expression of the columns or the law's inputs "
        "with numbers, + - * / ** and parentheses, such as '6*N*D' (default: the column 'cost')",
    )
    nx.add_argument("--budget", required=True, help="the most the picks may cost together (e.g. 1e21)")
    nx.add_argument("-n", type=int, help="the most picks (default: as many as the budget allows)")
    nx.add_argument(
        "--criterion",
        choices=("v", "d", "basin"),
        default="v",
        help="v: mean predictive variance at the targets (default); d: D-optimal (log det of the "
        "information); basin: mean squared prediction error over the fit's basins (ScaleBench)",
    )
    nx.add_argument(
        "--cost-power",
        type=float,
        help="a score is gain / (cost / budget) ** this (default 0.4, ScaleBench's; 1: gain per unit cost)",
    )
    nx.add_argument(
        "--output",
        help="write the picks as CSV, in pick order: the candidate's columns, its row (its line in "
        "--candidates), cost, gain, score, variance after it, and the cost spent so far",
    )
    nx.add_argument(
        "--plot",
        help="write a PNG: candidates, picks and targets over the law's first two inputs, and "
        "the predicted error at the targets after each pick",
    )
    nx.set_defaults(func=_next)
    d = sub.add_parser("datasets", help="list the bundled datasets")
    d.set_defaults(func=_datasets)
    return p


def _host_devices() -> None:
    """On a CPU, JAX sees one device; split it into one per core (at most 8) so that batch
    jobs and bootstraps use every core, unless ``XLA_FLAGS`` already sets a count or
    ``JAXLAWS_HOST_DEVICES`` gives one. Must run before JAX starts a backend."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    given = os.environ.get("JAXLAWS_HOST_DEVICES", "").strip()
    try:
        count = int(given) if given else min(os.cpu_count() or 1, 8)
    except ValueError:
        raise ValueError(f"JAXLAWS_HOST_DEVICES must be a whole number, got {given!r}") from None
    if count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def _cache(args) -> None:
    """The persistent compilation cache (default on, in the user's cache directory)."""
    from jaxlaws.compilation import enable_compilation_cache

    if not args.no_cache:
        enable_compilation_cache(args.cache_dir)


#: Exit status of an interrupted command (128 + SIGINT), as shells report it.
INTERRUPTED = 130


class _Stdout:
    """Standard output that goes quiet when its reader has gone (``jaxlaws ... | head``):
    the command still finishes its work and its files, and exits as it would have, without
    a ``BrokenPipeError``, as Unix tools do."""

    def __init__(self, stream):
        self._stream = stream
        self.gone = False

    def write(self, text):
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._quiet()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._quiet()

    def _quiet(self):
        self.gone = True
        try:  # the interpreter's last flush then finds /dev/null, not the closed pipe
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None) -> int:
    stdout, sys.stdout = sys.stdout, _Stdout(sys.stdout)
    try:
        return _main_with_warnings(argv)
    except KeyboardInterrupt:
        print(
            "jaxlaws: interrupted (a batch job keeps every group it had finished: run it again to go on)",
            file=sys.stderr,
        )
        return INTERRUPTED
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _main_with_warnings(argv) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # each warning once, as one line on stderr
        warnings.simplefilter("ignore", DeprecationWarning)  # libraries' notes to developers
        warnings.simplefilter("ignore", FutureWarning)
        warnings.showwarning = lambda message, *_, **__: _warn(str(message))
        return _main(argv)


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        _check_not_empty(args)
        _host_devices()
        _cache(args)
        return args.func(args)
    except FileNotFoundError as err:
        print(f"jaxlaws: error: no such file: {err.filename}", file=sys.stderr)
        return USAGE_ERROR
    except (IsADirectoryError, PermissionError) as err:
        print(f"jaxlaws: error: cannot use {err.filename}: {err.strerror}", file=sys.stderr)
        return USAGE_ERROR
    except (ValueError, KeyError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"jaxlaws: error: {msg}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())

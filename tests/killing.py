"""Kill a process at random moments while it rewrites a file, and check what is left.

A child process rewrites one file over and over through one of the command line's writers
(a proposal table, a saved fit, a plot), each version whole and recognisable; it is killed
with SIGKILL at a random moment, and the file must then be one complete version. Used by
``tests/test_io.py`` (a few kills) and ``benchmarks/bench_kill.py`` (20 per writer).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

#: Rows of the proposal table each version writes (as many as ``--budgets 1e9:1e12:20000``).
ROWS = 20_000

# Each child writes version 1, 2, ... of its file for ever; a version is recognisable whole.
_CHILD = {
    "table": """
import numpy as np, pandas as pd
from jaxlaws.cli import _write_table
base = pd.DataFrame(np.random.default_rng(0).random(({rows}, 12)), columns=[f"w_{{j}}" for j in range(12)])
v = 0
while True:
    v += 1
    _write_table(base.assign(version=v, last=v), {path!r})
""",
    "fit": """
import numpy as np
from jaxlaws.cli import _write_json
values = np.random.default_rng(0).random({rows}).tolist()
v = 0
while True:
    v += 1
    _write_json({{"version": v, "values": values, "last": v}}, {path!r})
""",
    "figure": """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt, numpy as np
from jaxlaws.cli import _save_figure
xy = np.random.default_rng(0).random((2, {rows}))
v = 0
while True:
    v += 1
    fig, ax = plt.subplots()
    ax.scatter(*xy, s=1)
    ax.set_title(f"version {{v}}")
    _save_figure(fig, {path!r})
    plt.close(fig)
""",
}

WRITERS = tuple(_CHILD)
_EXTENSION = {"table": "csv", "fit": "json", "figure": "png"}


def _whole(kind: str, path: str) -> bool:
    """Whether ``path`` holds one complete version written by the ``kind`` child."""
    if kind == "table":
        import pandas as pd

        t = pd.read_csv(path)
        return len(t) == ROWS and t["version"].nunique() == 1 and bool((t["version"] == t["last"]).all())
    if kind == "fit":
        with open(path) as fh:
            r = json.load(fh)
        return r["version"] == r["last"] and len(r["values"]) == ROWS
    import matplotlib.image

    with open(path, "rb") as fh:
        data = fh.read()
    matplotlib.image.imread(path)  # a PNG cut short does not decode
    return data.endswith(b"IEND\xaeB`\x82")


def kill_at_random(kind: str, folder: str, times: int, seed: int = 0, window: float = 1.5) -> dict:
    """Start the ``kind`` writer ``times`` times and SIGKILL it a random moment (up to
    ``window`` seconds) after its first version is in place; count how the file was left.

    Returns ``{"kills": n, "whole": n, "broken": n, "leftover_temporaries": n}`` (a killed
    writer leaves its temporary file; the next write removes it, so at most one is left).
    """
    rng = np.random.default_rng(seed)
    path = os.path.join(folder, f"{kind}.{_EXTENSION[kind]}")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    whole = broken = 0
    for _ in range(times):
        with open(path, "w") as fh:  # the file as the user had it before the command
            fh.write("old")
        code = _CHILD[kind].format(rows=ROWS, path=path)
        child = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 120
            while _read_head(path) == b"old":  # its first version not yet in place
                if child.poll() is not None:
                    raise RuntimeError(f"the {kind} writer stopped: {child.stderr.read().decode()[-500:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {kind} writer wrote nothing in 120 s")
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, window))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stderr.close()
        try:
            ok = _whole(kind, path)
        except Exception:
            ok = False
        whole += ok
        broken += not ok
    leftover = [f for f in os.listdir(folder) if f.startswith(f".{os.path.basename(path)}.")]
    return {"kills": times, "whole": whole, "broken": broken, "leftover_temporaries": len(leftover)}


def _read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(3)
    except FileNotFoundError:
        return b""

"""Test configuration: float64 on, strict dtype promotion, shared helpers."""

import json
import os
import pathlib

# one BLAS thread per test process, set before NumPy loads its BLAS: the tests run in two
# processes on two cores (pytest-xdist), and OpenBLAS threads that spin waiting for work
# beside another process's (scipy's L-BFGS-B in the parity tests) slowed a run from 13
# minutes to over 20
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import jax  # noqa: E402
import pytest  # noqa: E402

import jaxlaws  # noqa: E402, F401  (turns on x64)

# the command line keeps compiled solvers in the user's cache directory by default: not from
# the tests (nor the subprocesses they start); tests of the cache give their own directory
os.environ["JAXLAWS_CACHE_DIR"] = "off"

jax.config.update("jax_numpy_dtype_promotion", "strict")

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def goyal_reference():
    """The authors' reference functions evaluated at their parameters (tests/data/SOURCES.md)."""
    return json.loads((DATA / "goyal_reference_code_outputs.json").read_text())


@pytest.fixture(scope="session")
def goyal_parameters():
    """The authors' fitted parameter sets, by id (tests/data/SOURCES.md)."""
    rows = [
        json.loads(line)
        for line in (DATA / "goyal_parameter_values.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="session")
def muennighoff_reference():
    """Muennighoff et al. check values, each tagged with its source (tests/data/SOURCES.md)."""
    return json.loads((DATA / "muennighoff_reference_values.json").read_text())

"""jaxlaws: fit scaling laws, say how sure the fit is, and optimise the decisions they inform.

Importing jaxlaws turns on JAX's 64-bit mode (``jax_enable_x64``): every law and
objective runs in float64.
"""

import jax

jax.config.update("jax_enable_x64", True)

from jaxlaws import _constraints as constraints  # noqa: E402
from jaxlaws import datasets, laws, objectives, solvers  # noqa: E402
from jaxlaws.data import mixture_inputs  # noqa: E402
from jaxlaws.decide import allocate, optimize_mixture  # noqa: E402
from jaxlaws.extrapolation import extrapolate  # noqa: E402
from jaxlaws.fit import ConvergenceWarning, FitResult, fit  # noqa: E402
from jaxlaws.laws import Law  # noqa: E402
from jaxlaws.propose import MixtureProposal, propose_mixture  # noqa: E402
from jaxlaws.uncertainty import BootstrapResult, bootstrap  # noqa: E402

__version__ = "0.1.0"

#: Submodules loaded on first use (``jaxlaws.io.load_fit``, ``jaxlaws.plot``...), so that
#: ``import jaxlaws`` does not pay for matplotlib or tqdm until they are needed.
_LAZY = (
    "batch",
    "cli",
    "compilation",
    "data",
    "design",
    "io",
    "isoflop",
    "plot",
    "sharding",
    "starts",
    "swarm",
)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"jaxlaws.{name}")
    raise AttributeError(f"module 'jaxlaws' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BootstrapResult",
    "ConvergenceWarning",
    "FitResult",
    "Law",
    "allocate",
    "bootstrap",
    "extrapolate",
    "optimize_mixture",
    "propose_mixture",
    "MixtureProposal",
    "constraints",
    "datasets",
    "fit",
    "laws",
    "mixture_inputs",
    "objectives",
    "solvers",
    "__version__",
]

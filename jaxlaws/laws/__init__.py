"""Scaling laws as pure, jit-able, vmap-able, differentiable JAX functions.

Each law is a function ``law(params, *inputs)`` with a ``NamedTuple`` of parameters named
after the paper's symbols, and a :class:`Law` record (``CHINCHILLA``, ...) carrying its
inputs, constraints and start grid. :func:`get` looks a law up by name.
"""

from jaxlaws.laws._law import Law, suggest
from jaxlaws.laws.chinchilla import (
    CHINCHILLA,
    HOFFMANN_GRID,
    ChinchillaLogParams,
    ChinchillaParams,
    chinchilla,
    chinchilla_log,
    chinchilla_optimal,
)
from jaxlaws.laws.data_constrained import (
    DATA_CONSTRAINED,
    MUENNIGHOFF_C4,
    DataConstrainedParams,
    data_constrained,
    effective_data,
    effective_params,
)
from jaxlaws.laws.filtering import (
    DEFAULT_MAX_PASSES,
    FILTERING,
    FILTERING_MIXTURE,
    FORMS,
    GOYAL_FIG4,
    FilteringMixtureFreeParams,
    FilteringMixtureParams,
    FilteringParams,
    effective_tau,
    filtering,
    filtering_mixture,
    max_passes_for,
    params_from_reference_code,
    passes_needed,
)
from jaxlaws.laws.mixing import (
    BIMIX,
    MIXING_EXP,
    MIXTURE_ADDITIVE,
    YE_PILE5,
    BiMixParams,
    MixingExpParams,
    MixtureAdditiveParams,
    bimix,
    mixing_exp,
    mixture_additive,
)

#: Every built-in law, by name.
REGISTRY: dict[str, Law] = {
    law.name: law
    for law in (
        CHINCHILLA,
        DATA_CONSTRAINED,
        FILTERING,
        FILTERING_MIXTURE,
        MIXING_EXP,
        BIMIX,
        MIXTURE_ADDITIVE,
    )
}


def get(name: str | Law) -> Law:
    """The built-in :class:`Law` called ``name``, or a user's law named ``"FILE.py:NAME"``
    or ``"package.module:NAME"`` (a ``Law`` is returned unchanged).

    Raises:
        ValueError: for an unknown name, listing the known ones, or a user's law that cannot
            be loaded (no such file or attribute, not a ``Law``), in one line.
    """
    if isinstance(name, Law):
        return name
    if ":" in str(name):
        return _load_user_law(str(name))
    key = str(name).strip().lower().replace("-", "_")
    if key not in REGISTRY:
        raise ValueError(f"unknown law {name!r}{suggest(key, REGISTRY)}; known laws: {sorted(REGISTRY)}")
    return REGISTRY[key]


def _load_user_law(spec: str) -> Law:
    """Import ``FILE.py:NAME`` or ``module:NAME`` and return its :class:`Law`."""
    import importlib
    import importlib.util
    import os
    import sys

    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise ValueError(f"a user's law is FILE.py:NAME or module:NAME, got {spec!r}")
    try:
        if os.path.isdir(where):
            raise ValueError(
                f"{where!r} in the law {spec!r} is a directory: give the Python file that defines "
                f"the law, as DIR/FILE.py:{attr}"
            )
        if os.path.isfile(where) and not where.endswith(".py"):
            raise ValueError(
                f"{where!r} in the law {spec!r} is not a Python file: a user's law is FILE.py:NAME "
                "(a file ending in .py) or module:NAME"
            )
        if where.endswith(".py") or os.sep in where:
            path = os.path.abspath(where)
            if not os.path.isfile(path):
                raise ValueError(f"no such file for the law {spec!r}: {where}")
            mod_name = f"jaxlaws_user_{abs(hash(path))}"
            module = sys.modules.get(mod_name)
            if module is None:
                loader = importlib.util.spec_from_file_location(mod_name, path)
                module = importlib.util.module_from_spec(loader)
                sys.modules[mod_name] = module
                loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ValueError:
        raise
    except Exception as err:  # the user's file: any error it raises on import
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        hint = " (a user's law is FILE.py:NAME or module:NAME)" if isinstance(err, ImportError) else ""
        raise ValueError(
            f"could not import {where!r} for the law {spec!r}: {type(err).__name__}: {msg}{hint}"
        ) from None
    if not hasattr(module, attr):
        laws = sorted(k for k, v in vars(module).items() if isinstance(v, Law))
        raise ValueError(f"{where!r} has no {attr!r}; the laws in it: {laws}")
    law = getattr(module, attr)
    if not isinstance(law, Law):
        raise ValueError(f"{spec!r} is a {type(law).__name__}, not a jaxlaws.Law")
    return law


__all__ = [
    "Law",
    "REGISTRY",
    "get",
    "CHINCHILLA",
    "HOFFMANN_GRID",
    "ChinchillaParams",
    "ChinchillaLogParams",
    "chinchilla",
    "chinchilla_log",
    "chinchilla_optimal",
    "DATA_CONSTRAINED",
    "MUENNIGHOFF_C4",
    "DataConstrainedParams",
    "data_constrained",
    "effective_data",
    "effective_params",
    "DEFAULT_MAX_PASSES",
    "FILTERING",
    "FILTERING_MIXTURE",
    "FORMS",
    "GOYAL_FIG4",
    "FilteringParams",
    "FilteringMixtureParams",
    "FilteringMixtureFreeParams",
    "effective_tau",
    "filtering",
    "filtering_mixture",
    "params_from_reference_code",
    "passes_needed",
    "max_passes_for",
    "MIXING_EXP",
    "MixingExpParams",
    "mixing_exp",
    "YE_PILE5",
    "BIMIX",
    "BiMixParams",
    "bimix",
    "MIXTURE_ADDITIVE",
    "MixtureAdditiveParams",
    "mixture_additive",
]

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
    params_from_reference_code,
    passes_needed,
)

#: Every built-in law, by name.
REGISTRY: dict[str, Law] = {
    law.name: law for law in (CHINCHILLA, DATA_CONSTRAINED, FILTERING, FILTERING_MIXTURE)
}


def get(name: str | Law) -> Law:
    """The built-in :class:`Law` called ``name`` (a ``Law`` is returned unchanged).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if isinstance(name, Law):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key not in REGISTRY:
        raise ValueError(f"unknown law {name!r}{suggest(key, REGISTRY)}; known laws: {sorted(REGISTRY)}")
    return REGISTRY[key]


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
]

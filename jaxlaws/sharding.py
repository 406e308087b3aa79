"""Spreading batches of independent problems across devices and hosts.

Devices: batches (bootstrap resamples, groups of a batch job, budgets and parameter sets
of a mixture sweep) are padded to a multiple of the device count, with at least
:data:`MIN_PER_DEVICE` per device, and split across a one-axis ``Mesh`` of the local
devices with ``shard_map``; the padding is dropped. Every device runs the same per-shard
program. Fits of groups and resamples come out bit-identical on 1 and 4 devices when each
device holds as many problems as the single one did, and agree to rounding otherwise (the
slot count of the solver follows the per-device batch). Mixture sweeps agree to rounding
(about 1e-15 in the error), because XLA orders the floating-point operations of the law's
gradient differently in a multi-device program. The starts of one fit stay on one device,
because screening ranks them jointly.

Hosts: under ``jax.distributed.initialize()`` (see :func:`initialize`) every process takes
its share of a batch job's groups (:func:`process_share`), fits it on its own local devices,
and the finished results are gathered to every process (:func:`gather_bytes`, an all-gather
over JAX's collectives) so that process 0 writes one output. No shared file system is needed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxlaws.compilation import compiler_options

__all__ = [
    "gather_bytes",
    "initialize",
    "local_devices",
    "map_batch",
    "pad_batch",
    "padded_size",
    "process_share",
]


def local_devices(devices: int | None = None) -> list:
    """The first ``devices`` local devices (all of them by default)."""
    available = jax.local_devices()
    if devices is None:
        return available
    if not 1 <= devices <= len(available):
        raise ValueError(f"devices must be between 1 and {len(available)} here, got {devices}")
    return available[:devices]


#: The fewest problems a device is given. XLA compiles very small batches differently from
#: larger ones (a batch of one is squeezed; for the mixture solver's gradient batches of one
#: or two differ from three or more), which changes results in the last bits; with at least
#: this many per device a problem's result does not depend on how many share its batch.
MIN_PER_DEVICE = 4


def padded_size(n: int, n_devices: int) -> int:
    """The batch size ``n`` problems are padded to on ``n_devices`` devices: a multiple of
    ``n_devices`` with at least :data:`MIN_PER_DEVICE` problems per device."""
    return n_devices * max(MIN_PER_DEVICE, -(-int(n) // n_devices))


def pad_batch(x, n_devices: int):
    """Pad the leading axis of ``x`` to :func:`padded_size` by repeating the last row.
    Returns ``(padded, original_length)``."""
    x = jnp.asarray(x)
    n = x.shape[0]
    pad = padded_size(n, n_devices) - n
    if pad == 0:
        return x, n
    return jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), n


@functools.lru_cache(maxsize=64)
def _sharded(solver, batched: tuple[bool, ...], devices: tuple, static: tuple):
    mesh = Mesh(np.array(devices), ("batch",))
    specs = tuple(PartitionSpec("batch") if b else PartitionSpec() for b in batched)
    fn = functools.partial(solver, **dict(static))
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("batch"), check_vma=False),
        compiler_options=compiler_options(),
    )


def map_batch(solver, args: tuple, batched: tuple[bool, ...], devices: list, **static):
    """Run ``solver(*args, **static)`` with the batched arguments split across ``devices``.

    ``solver`` is a plain (not jitted) function; it is compiled here, with
    :func:`jaxlaws.compilation.compiler_options`, once per static configuration and devices.

    Every device runs the same per-shard program on its slice of independent problems
    (resamples, groups), so results do not depend on the device count. The batch must
    already be padded to a multiple of ``len(devices)``. One compilation per solver,
    static configuration and device set (cached).
    """
    key = tuple(sorted(static.items()))
    if len(devices) == 1:
        return _single(solver, key)(*args)
    return _sharded(solver, tuple(batched), tuple(devices), key)(*args)


@functools.lru_cache(maxsize=64)
def _single(solver, static: tuple):
    return jax.jit(functools.partial(solver, **dict(static)), compiler_options=compiler_options())


# ----------------------------------------------------------------------------------------
# Several hosts (processes) under jax.distributed
# ----------------------------------------------------------------------------------------


def initialize(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> tuple[int, int]:
    """Join a multi-process JAX job (``jax.distributed.initialize``); returns
    ``(process_index, process_count)``.

    With no arguments JAX detects the cluster (SLURM, Open MPI, Cloud TPU, ...); otherwise
    give all three: the coordinator's ``host:port`` (process 0's machine), the number of
    processes and this one's id. Must run before any JAX computation in the process.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError("give all of coordinator, num_processes and process_id, or none (auto-detect)")
    if all(given) and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
        )
    except (RuntimeError, ValueError) as err:
        hint = "" if all(given) else " (no cluster detected: give coordinator, num_processes and process_id)"
        raise ValueError(f"could not join the distributed job: {str(err).splitlines()[0]}{hint}") from None
    return jax.process_index(), jax.process_count()


def process_share(items: list) -> list:
    """This process's share of ``items``: every ``process_count``-th, from its index (one
    process gets them all). Every process must pass the same list in the same order."""
    return list(items)[jax.process_index() :: jax.process_count()]


def gather_bytes(blob: bytes) -> list[bytes]:
    """Every process's ``blob``, in process order, on every process (a collective: all
    processes must call it). One process: ``[blob]``."""
    if jax.process_count() == 1:
        return [blob]
    from jax.experimental import multihost_utils

    data = np.frombuffer(blob, dtype=np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([data.size], np.int64))).ravel()
    padded = np.zeros(max(int(sizes.max()), 1), np.uint8)
    padded[: data.size] = data
    rows = np.asarray(multihost_utils.process_allgather(padded))
    return [rows[i, : int(k)].tobytes() for i, k in enumerate(sizes)]

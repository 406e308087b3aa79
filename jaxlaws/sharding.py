"""Sharding the batch axis (starts, resamples, groups) across devices with ``jax.sharding``.

Batches of independent problems (bootstrap resamples, groups of a batch job) are padded
to a multiple of the device count and split across a one-axis ``Mesh`` of the local
devices with ``shard_map``: every device runs the same per-shard program, so the results
do not depend on the number of devices; the padding is dropped. The starts of one fit stay
on one device (screening ranks them jointly). Under ``jax.distributed.initialize()`` each
host fits its own share of the groups (see the README).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

__all__ = ["local_devices", "map_batch", "pad_batch"]


def local_devices(devices: int | None = None) -> list:
    """The first ``devices`` local devices (all of them by default)."""
    available = jax.local_devices()
    if devices is None:
        return available
    if not 1 <= devices <= len(available):
        raise ValueError(f"devices must be between 1 and {len(available)} here, got {devices}")
    return available[:devices]


def pad_batch(x, multiple: int):
    """Pad the leading axis of ``x`` to a multiple of ``multiple`` by repeating the last row.
    Returns ``(padded, original_length)``."""
    x = jnp.asarray(x)
    n = x.shape[0]
    pad = (-n) % multiple
    if pad == 0:
        return x, n
    return jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), n


@functools.lru_cache(maxsize=64)
def _sharded(solver, batched: tuple[bool, ...], devices: tuple, static: tuple):
    mesh = Mesh(np.array(devices), ("batch",))
    specs = tuple(PartitionSpec("batch") if b else PartitionSpec() for b in batched)
    fn = functools.partial(solver, **dict(static))
    return jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec("batch"), check_vma=False)
    )


def map_batch(solver, args: tuple, batched: tuple[bool, ...], devices: list, **static):
    """Run ``solver(*args, **static)`` with the batched arguments split across ``devices``.

    Every device runs the same per-shard program on its slice of independent problems
    (resamples, groups), so results do not depend on the device count. The batch must
    already be padded to a multiple of ``len(devices)``. One compilation per solver,
    static configuration and device set (cached).
    """
    if len(devices) == 1:
        return solver(*args, **static)
    key = tuple(sorted(static.items()))
    return _sharded(solver, tuple(batched), tuple(devices), key)(*args)

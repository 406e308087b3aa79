"""Compiling the solvers: XLA options, and JAX's persistent compilation cache.

**Options.** On CPU the solvers are compiled with XLA's classic loop emitters
(:data:`CPU_COMPILER_OPTIONS`): on the suite of laws in ``benchmarks/`` they compile in about
half the time of the newer MLIR fusion emitters and run as fast (one law of 30 parameters
runs about a third slower). They apply to jaxlaws' own programs only, not to the rest of the
process.

**Cache.**
A first fit of a law compiles its solver (XLA), which takes seconds; the cache stores the
compiled program on disk so the next process that fits the same law to a table of the same
shape loads it instead. The command line turns it on by default in the user's cache
directory (``$XDG_CACHE_HOME/jaxlaws/xla``, ``~/.cache/jaxlaws/xla`` where that is unset,
``~/Library/Caches/jaxlaws/xla`` on macOS); ``JAXLAWS_CACHE_DIR`` moves it, and
``JAXLAWS_CACHE_DIR=off`` (or ``jaxlaws --no-cache``) turns it off. In Python, call
:func:`enable_compilation_cache` before the first fit.
"""

from __future__ import annotations

import os
import pathlib
import sys

import jax

__all__ = ["CPU_COMPILER_OPTIONS", "compiler_options", "default_cache_dir", "enable_compilation_cache", "ENV"]

#: XLA options for jaxlaws' programs on CPU.
CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def compiler_options() -> dict | None:
    """The XLA options for a jaxlaws program on the default backend (``None``: XLA's)."""
    return dict(CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else None


#: The environment variable that moves the cache (a directory) or turns it off (``off``,
#: ``0``, ``false``, ``no`` or empty).
ENV = "JAXLAWS_CACHE_DIR"
_OFF = {"", "0", "off", "false", "no", "none"}


def default_cache_dir() -> pathlib.Path | None:
    """The cache directory the command line uses, or ``None`` where it is turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in _OFF else pathlib.Path(value).expanduser()
    if sys.platform == "darwin":
        base = pathlib.Path.home() / "Library" / "Caches"
    else:
        base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    return base / "jaxlaws" / "xla"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> pathlib.Path | None:
    """Store compiled solvers in ``path`` (default: :func:`default_cache_dir`) and reuse
    them in later processes. Returns the directory, or ``None`` where the cache is off or
    the directory cannot be written (with a warning; then fits compile as usual)."""
    directory = pathlib.Path(path).expanduser() if path is not None else default_cache_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".jaxlaws-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        import warnings

        warnings.warn(
            f"the compilation cache is off: {directory} cannot be used ({err.strerror or err})",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    # every solver program is worth keeping: the default keeps only those compiled in > 1 s
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory

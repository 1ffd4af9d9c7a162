"""drbench: a benchmark harness for anti-cancer drug-response prediction."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from drbench.errors import DataError, DrbenchError, UsageError  # noqa: E402

__all__ = ["__version__", "DrbenchError", "DataError", "UsageError", "register"]


def register(name=None):
    """Register a :class:`drbench.methods.Method` subclass defined in a script (see registry)."""
    from drbench.registry import register as _register

    return _register(name)

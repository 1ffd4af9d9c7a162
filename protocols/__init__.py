"""Protocols: one module per test of the paper. Each generates identical folds for every method.

Built-ins register through the ``drbench.protocols`` entry-point group, like third-party ones.
"""

from drbench.protocols.base import Option, Protocol

__all__ = ["Protocol", "Option", "get_protocol", "protocol_names"]


def get_protocol(name: str) -> Protocol:
    from drbench.registry import protocols

    return protocols().get(name)


def protocol_names() -> list[str]:
    from drbench.registry import protocols

    return protocols().names()

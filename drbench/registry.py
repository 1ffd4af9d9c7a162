"""Plugin registries for methods and protocols.

Methods come from the entry-point group ``drbench.methods`` (the built-ins register there too, in
drbench's own pyproject.toml) and from the :func:`register` decorator for classes defined in a
script. Protocols come from the group ``drbench.protocols``. An entry point that fails to import is
reported by name when it is asked for, and never breaks the others.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

from drbench.errors import UsageError

METHOD_GROUP = "drbench.methods"
PROTOCOL_GROUP = "drbench.protocols"


@dataclass
class Entry:
    name: str
    provider: str  # distribution name, or "script" for decorator registrations
    loader: object  # entry point or the object itself
    obj: object = None
    error: str | None = None

    def load(self):
        if self.obj is None and self.error is None:
            try:
                self.obj = self.loader.load()
            except Exception as e:  # a broken plugin is reported, not fatal for the others
                self.error = f"{type(e).__name__}: {e}"
        if self.error is not None:
            raise UsageError(f"plugin {self.name!r} from {self.provider} failed to load: {self.error}")
        return self.obj


class Registry:
    def __init__(self, group: str, kind: str, instantiate: bool = False):
        self.group, self.kind, self.instantiate = group, kind, instantiate
        self._entries: dict[str, Entry] | None = None
        self._script: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def _discover(self) -> dict[str, Entry]:
        with self._lock:
            if self._entries is None:
                found = {}
                for ep in entry_points(group=self.group):
                    dist = getattr(ep, "dist", None)
                    provider = dist.metadata["Name"] if dist is not None else "unknown"
                    if ep.name in found and found[ep.name].loader.value != ep.value:
                        raise UsageError(f"two packages register {self.kind} {ep.name!r}: "
                                         f"{found[ep.name].provider} and {provider}")
                    found[ep.name] = Entry(ep.name, provider, ep)
                self._entries = found
            return {**self._entries, **self._script}

    def add(self, name: str, obj, provider: str = "script") -> None:
        entries = self._discover()
        if name in entries and entries[name].obj is not obj and entries[name].provider != provider:
            raise UsageError(f"{self.kind} {name!r} is already registered by {entries[name].provider}")
        self._script[name] = Entry(name, provider, None, obj)

    def remove(self, name: str) -> None:
        self._script.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._discover())

    def entry(self, name: str) -> Entry:
        entries = self._discover()
        if name not in entries:
            raise UsageError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(entries)) or 'none installed'}")
        return entries[name]

    def get(self, name: str):
        e = self.entry(name)
        obj = e.load()
        if self.kind == "method" and not getattr(obj, "name", ""):
            obj.name = name
        if self.instantiate and isinstance(obj, type):
            obj = obj()
            e.obj = obj
        return obj

    def provider(self, name: str) -> str:
        return self.entry(name).provider


_methods = Registry(METHOD_GROUP, "method")
_protocols = Registry(PROTOCOL_GROUP, "protocol", instantiate=True)


def methods() -> Registry:
    return _methods


def protocols() -> Registry:
    return _protocols


def get_method(name: str):
    """The method class registered under ``name``."""
    cls = _methods.get(name)
    if cls.name != name:
        cls.name = name
    return cls


def method_names() -> list[str]:
    return _methods.names()


def resolve_methods(spec: str | list[str]) -> list[str]:
    """``"all"`` or a comma-separated list (``"mtigcn,nihgcn"``) to registered names; clear error on unknown."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise UsageError("no method given; pass --methods all or a comma-separated list")
    if names == ["all"]:
        return method_names()
    known = set(method_names())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown method(s) {unknown}; choose from: all, {', '.join(sorted(known))}")
    return names


def register(name: str | None = None):
    """Class decorator registering a method defined in a script or notebook::

        @drbench.register("my-method")
        class MyMethod(Method): ...
    """

    def deco(cls):
        key = name or getattr(cls, "name", "") or cls.__name__.lower()
        cls.name = key
        _methods.add(key, cls)
        return cls

    return deco

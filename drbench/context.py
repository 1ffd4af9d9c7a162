"""The run context: the facts about a sweep's setting that a method may read to pick its defaults.

Built once when a sweep is planned (:func:`drbench.runner.plan_sweep`) and passed unchanged to every
method's ``defaults_for`` and, as ``view.context``, to its ``fit``, so the hyperparameters a job records
are the ones the method chose for the setting it runs in. It carries no labels and no fold.

It is a read-only mapping as well as a frozen dataclass: ``context.target`` and ``context.get("target")``
both work, as the plain dicts of earlier versions did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class RunContext(Mapping):
    """``dataset``: the source dataset's name (``gdsc``); ``target``: the target set appended to it by the
    protocol (``pdx``, ``tcga``, ``ccle``, ``synthetic-vivo``), ``""`` when there is none; ``dataset_full``:
    the name of the dataset the folds index (``gdsc+ccle``); ``protocol``: the protocol's registered name;
    ``protocol_kind``: its kind, the capability a method must declare (``case-study`` is ``random``,
    ``transfer`` is ``in-vivo``); ``entity_axis``: 0 when metrics are also averaged per cell line, 1 per drug,
    ``None`` for neither; ``selection``: ``validation`` or ``test`` (replication mode); ``device``: the torch
    device of every job (``cpu``, ``cuda``, ``cuda:N``), checked available before the sweep starts.

    The seed is not here: a sweep runs several, and each job's is ``view.seed``.
    """

    dataset: str
    target: str
    dataset_full: str
    protocol: str
    protocol_kind: str
    entity_axis: int | None
    selection: str
    device: str

    @classmethod
    def for_sweep(cls, protocol, source, dataset, selection: str, device: str) -> "RunContext":
        """The context of a sweep of ``protocol`` on ``source`` (``dataset``: what ``protocol.prepare`` built)."""
        return cls(dataset=source.name, target=str(dataset.meta.get("target_name", "")), dataset_full=dataset.name,
                   protocol=protocol.name, protocol_kind=protocol.kind, entity_axis=protocol.entity_axis,
                   selection=selection, device=device)

    def __getitem__(self, key):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple:
        return tuple(f.name for f in fields(cls))


__all__ = ["RunContext"]

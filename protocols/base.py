"""The :class:`Protocol` interface: a pure function of (dataset, seed, options) returning folds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from drbench.datasets import Dataset
from drbench.errors import UsageError
from drbench.folds import Fold


@dataclass(frozen=True)
class Option:
    default: object
    help: str


class Protocol:
    """A protocol names a test of the paper and generates its folds.

    ``folds(dataset, seed, carve_valid=True, **options)`` must be deterministic in its arguments.
    ``carve_valid=False`` is used by the replication mode (``--select test``): no validation split is
    carved from training, exactly as the reference code trained; the test masks do not change.
    ``prepare(dataset, load, **options)`` may build the dataset the folds index (e.g. append a target
    set's rows for Test 3); ``load(name)`` loads another dataset from the same data directory.
    """

    name: ClassVar[str]
    paper_test: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    #: the capability a method must declare to run this protocol
    requires: ClassVar[str] = ""
    #: 0 = metrics also averaged per cell, 1 = per drug
    entity_axis: ClassVar[int | None] = None
    #: headline metrics are per-entity means (Test 2) instead of pooled over test entries
    per_entity_headline: ClassVar[bool] = False
    #: the protocol scores unlabelled pairs (no test metrics), like the case study
    scores_unlabelled: ClassVar[bool] = False

    def resolve_options(self, options: dict | None) -> dict:
        options = dict(options or {})
        unknown = set(options) - set(self.options)
        if unknown:
            raise UsageError(
                f"protocol {self.name!r} has no option(s) {sorted(unknown)}; its options are: "
                + (", ".join(f"{k} (default {o.default!r})" for k, o in self.options.items()) or "none")
            )
        out = {k: o.default for k, o in self.options.items()}
        for k, v in options.items():
            default = self.options[k].default
            if isinstance(default, bool) and isinstance(v, str):
                v = v.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int) and not isinstance(default, bool) and isinstance(v, str):
                v = int(v)
            elif isinstance(default, float) and isinstance(v, str):
                v = float(v)
            out[k] = v
        return out

    def prepare(self, dataset: Dataset, load: Callable[[str], Dataset], **options) -> Dataset:
        return dataset

    def folds(self, dataset: Dataset, seed: int, carve_valid: bool = True, **options) -> list[Fold]:
        raise NotImplementedError

    def job_artifacts(self, dataset: Dataset, predictions: dict, options: dict) -> dict:
        """Files a finished job records beside its predictions: ``{file name: DataFrame}`` (none by default).

        Runs in the worker; ``predictions`` holds one array per column (``row``, ``col``, ``cell_id``,
        ``drug_id``, ``score``, ...), one entry per scored pair; ``options`` are the resolved protocol options.
        """
        return {}

"""The :class:`Protocol` interface: a pure function of (dataset, seed, options) returning folds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, ClassVar

from drbench.datasets import Dataset
from drbench.errors import UsageError
from drbench.folds import Fold
from drbench.params import Mismatch, Range, coerce, describe


@dataclass(frozen=True)
class Option:
    """A protocol option: its default, help, and the values it accepts, checked by :meth:`Protocol.resolve_options`
    before any work starts and listed by ``drbench protocols``.

    ``type`` defaults to the default's type and is checked as a hyperparameter is (:func:`drbench.params.coerce`;
    a string from the command line is read as JSON first, and ``true``/``false``/``yes``/``no``/``on``/``off`` as
    a bool). ``minimum``/``maximum`` are inclusive bounds, ``greater_than``/``less_than`` exclusive ones;
    ``choices`` lists the only valid values.
    """

    default: object
    help: str
    type: object = None
    minimum: float | None = None
    maximum: float | None = None
    greater_than: float | None = None
    less_than: float | None = None
    choices: tuple | None = None

    @property
    def value_type(self):
        return self.type if self.type is not None else type(self.default)

    @property
    def range(self) -> Range:
        return Range(ge=self.minimum, gt=self.greater_than, le=self.maximum, lt=self.less_than)

    def accepts(self) -> str:
        """The valid values in words: ``int >= 2``, ``float > 0 and < 1``, ``one of 'source', 'target', 'none'``."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return " ".join([describe(self.value_type), str(self.range)]).strip()

    def check(self, value):
        """``value`` converted to the option's type; raises :class:`ValueError` if it is not a valid value."""
        declared = self.value_type
        if isinstance(value, str) and declared is bool:
            words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False,
                     "0": False}
            if value.strip().lower() not in words:
                raise ValueError
            value = words[value.strip().lower()]
        elif isinstance(value, str) and declared in (int, float):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError from None
        try:
            value = coerce(value, declared)
        except Mismatch:
            raise ValueError from None
        if self.choices is not None and value not in self.choices:
            raise ValueError
        if value not in self.range:
            raise ValueError
        return value


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
    #: the protocol kind (one of :data:`drbench.api.PROTOCOL_KINDS`): the capability a method must declare to run it
    kind: ClassVar[str] = ""
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
            option = self.options[k]
            try:
                out[k] = option.check(v)
            except ValueError:
                raise UsageError(f"protocol {self.name!r}: option {k} must be {option.accepts()}; got {v!r}") from None
        self.check_options(out)
        return out

    def check_options(self, options: dict) -> None:
        """Refuse (``UsageError``) a combination of resolved options that would be ignored or contradict itself;
        every combination is accepted by default."""

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

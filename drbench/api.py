"""The method API: :class:`Method`, :class:`Capabilities`, :class:`TrainView`, :class:`Query`, :class:`Prediction`.

A method sees exactly two things: a :class:`TrainView` at ``fit`` (labels of training and validation
entries only; every other label is physically absent) and a :class:`Query` at ``predict`` (the pairs
to score and the features of their cells and drugs). It never sees a fold, a test mask or a file.
"""

from __future__ import annotations

import abc
import functools
import inspect
from dataclasses import dataclass, field
from typing import ClassVar, Mapping

import numpy as np

from drbench.errors import UnsupportedProtocolError

TASKS = ("classification", "regression")
PAPER_PROTOCOL_KINDS = ("random", "new-cell-line", "new-drug", "in-vivo")
PROTOCOL_KINDS = PAPER_PROTOCOL_KINDS + ("new-pair",)


@dataclass(frozen=True)
class Capabilities:
    """What a method can do; shown by ``drbench methods`` and on leaderboards.

    ``protocols`` uses the protocol kinds ``random`` (Test 1 and the case study), ``new-cell-line``
    (Test 2 and new-tissue), ``new-drug``, ``in-vivo`` (Test 3 and transfer: rows never seen in training)
    and ``new-pair`` (pairs whose cell line and drug were both unseen). The default is the paper's four
    kinds: ``new-pair`` is declared explicitly, by a method that scores such pairs from their features.
    ``transductive``: the method uses held-out entities' *features* at fit time (never their labels).
    ``selects``: the method picks epochs/hyperparameters on the validation entries, so the
    replication mode (``--select test``) changes its results.
    """

    tasks: frozenset = frozenset({"classification"})
    protocols: frozenset = frozenset(PAPER_PROTOCOL_KINDS)
    transductive: bool = False
    needs: frozenset = frozenset()
    selects: bool = False

    def __post_init__(self):
        for k in ("tasks", "protocols", "needs"):
            object.__setattr__(self, k, frozenset(getattr(self, k)))
        bad = set(self.tasks) - set(TASKS)
        if bad:
            raise ValueError(f"unknown task(s) {sorted(bad)}; valid: {TASKS}")
        bad = set(self.protocols) - set(PROTOCOL_KINDS)
        if bad:
            raise ValueError(f"unknown protocol kind(s) {sorted(bad)}; valid: {PROTOCOL_KINDS}")

    @property
    def regression(self) -> bool:
        return "regression" in self.tasks

    def describe(self) -> dict:
        return {
            "tasks": sorted(self.tasks),
            "protocols": [p for p in PROTOCOL_KINDS if p in self.protocols],
            "transductive": self.transductive,
            "needs": sorted(self.needs),
            "selects": self.selects,
        }


@dataclass(frozen=True, eq=False)
class TrainView:
    """What a method may see at fit time. Built by :func:`drbench.view.build_train_view`, never by a method.

    ``binary`` / ``ic50`` are copies of the dataset's labels with every entry outside
    ``train | valid`` set to NaN. Fit on ``train`` entries; use ``valid`` entries only to choose
    epochs or hyperparameters. ``cell_features`` / ``drug_features`` have NaN rows for entities whose
    features the method may not see (held-out entities, for an inductive method — except, in the
    replication mode, those in the ``valid`` entries, which are scored during selection);
    ``visible_cells`` / ``visible_drugs`` say which.
    ``context`` is the sweep's :class:`drbench.context.RunContext` (dataset, target, protocol, protocol kind,
    entity axis, selection, device), the same one ``defaults_for`` received, read as a mapping
    (``context.get("dataset")``); a view built outside a sweep gets a plain dict of the fold's setting. It carries
    no labels.
    ``cell_tissue`` is each cell's tissue ("" where unknown or, like its features, not visible).
    """

    cell_ids: np.ndarray
    drug_ids: np.ndarray
    binary: np.ndarray
    ic50: np.ndarray
    train: np.ndarray
    valid: np.ndarray
    cell_features: Mapping[str, np.ndarray]
    drug_features: Mapping[str, np.ndarray]
    smiles: np.ndarray
    thresholds: np.ndarray
    visible_cells: np.ndarray
    visible_drugs: np.ndarray
    seed: int = 0
    device: str = "cpu"
    context: Mapping[str, object] = field(default_factory=dict)
    cell_tissue: np.ndarray | None = None

    @property
    def shape(self):
        return self.binary.shape

    @property
    def protocol(self) -> str:
        return str(self.context.get("protocol", "random"))


@dataclass(frozen=True, eq=False)
class Query:
    """Pairs to score: ``rows[k], cols[k]`` index the dataset's cells and drugs.

    The features of every cell and drug are given (the pairs' entities included), so an inductive
    method can score cells or drugs it never saw at fit time; so is every cell's tissue ("" where unknown).
    """

    rows: np.ndarray
    cols: np.ndarray
    cell_features: Mapping[str, np.ndarray]
    drug_features: Mapping[str, np.ndarray]
    smiles: np.ndarray
    cell_tissue: np.ndarray | None = None

    def __len__(self):
        return len(self.rows)


@dataclass(frozen=True, eq=False)
class Prediction:
    """Scores for the queried pairs: ``score`` in [0, 1] (higher = more sensitive) and, where the method
    has one, an ``ic50`` estimate (same unit as the dataset's IC50)."""

    score: np.ndarray
    ic50: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "score", np.asarray(self.score, dtype=np.float64).ravel())
        if self.ic50 is not None:
            object.__setattr__(self, "ic50", np.asarray(self.ic50, dtype=np.float64).ravel())


class Method(abc.ABC):
    """Base class of every method. Hyperparameters go in ``__init__`` (stored under the same names),
    ``fit(view)`` returns ``self``, ``predict(query)`` is pure. Annotate them (``k: int = 11``): a value a user
    sets is checked against the annotation (else the default's type) before any work starts
    (:mod:`drbench.params`).

    Class attributes: ``name`` (registry name; set by registration) and ``capabilities``.
    Optional hooks: ``defaults_for(context)`` returns per-dataset/per-test hyperparameters (e.g. the
    reference table of MTIGCN); ``fast_params()`` returns small settings for ``check_method``.
    After ``fit`` a method may fill ``self.fit_info_`` (e.g. ``{"epochs_run": 420, "best_epoch": 380}``);
    the runner logs it.
    ``key_neutral``: hyperparameters added after runs were published, each with the value that reproduces the
    behaviour before it existed; at that value it is left out of the job key (it is still logged as a run
    param), so recorded runs keep their keys and are not run again.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    key_neutral: ClassVar[dict] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "fit" in cls.__dict__ and not getattr(cls.__dict__["fit"], "_drbench_checked", False):
            original = cls.__dict__["fit"]

            @functools.wraps(original)
            def fit(self, view, *args, **kwargs):
                self.check_supported(view)
                return original(self, view, *args, **kwargs)

            fit._drbench_checked = True
            cls.fit = fit

    # ------------------------------------------------------------------ sklearn-style parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params) -> "Method":
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                from drbench.errors import UsageError

                raise UsageError(f"{self.name or type(self).__name__} has no hyperparameter {k!r}; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    @classmethod
    def defaults_for(cls, context: Mapping[str, object]) -> dict:
        """Hyperparameters for a setting; overrides of the ``__init__`` defaults. ``context`` is the sweep's
        :class:`drbench.context.RunContext` (read it as a mapping: ``context.get("dataset")``)."""
        return {}

    @classmethod
    def fast_params(cls) -> dict:
        """Small settings that keep ``check_method`` fast (few epochs, small layers)."""
        return {}

    # ------------------------------------------------------------------ contract
    def check_supported(self, view: TrainView) -> None:
        """Raise :class:`UnsupportedProtocolError` unless the view's protocol is of a kind the method declares.

        The kind is the run context's ``protocol_kind``, else the kind the named protocol declares."""
        kind = view.context.get("protocol_kind") or protocol_kind(view.protocol)
        if kind not in self.capabilities.protocols:
            raise UnsupportedProtocolError(
                f"method {self.name or type(self).__name__!r} does not support protocol {view.protocol!r}; "
                f"it supports: {', '.join(sorted(self.capabilities.protocols))}"
            )

    @abc.abstractmethod
    def fit(self, view: TrainView) -> "Method":
        """Fit on ``view.train`` labels (``view.valid`` only for selection). Return ``self``."""

    @abc.abstractmethod
    def predict(self, query: Query) -> Prediction:
        """Score the queried pairs. Must not change the fitted state."""

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def protocol_kind(protocol: str) -> str:
    """The kind (:data:`PROTOCOL_KINDS`) the registered protocol ``protocol`` declares; ``""`` if none is registered
    under that name."""
    from drbench.errors import UsageError
    from drbench.registry import protocols

    try:
        return protocols().get(protocol).kind
    except UsageError:
        return ""


def supports(cls_or_method, protocol: str) -> bool:
    """Whether a method declares the kind of the registered protocol named ``protocol``."""
    return protocol_kind(protocol) in cls_or_method.capabilities.protocols

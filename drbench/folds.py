"""The :class:`Fold` type: read-only train / validation / test masks, identical for every method."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


def _ro(a) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(a, dtype=bool))
    a.setflags(write=False)
    return a


def _ro_idx(a) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(a if a is not None else [], dtype=np.int64))
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Fold:
    """One split of a dataset.

    ``train``: entries whose labels a method may fit on. ``valid``: entries (labels given) used only
    for selection (epochs, early stopping). ``test``: entries scored against their labels by the
    runner. ``score``: pairs the method is asked to predict (``test`` unless the protocol scores
    unlabelled pairs, as the case study does). ``held_out_cells`` / ``held_out_drugs``: entities
    removed from training entirely (Test 2, Test 3); an inductive method does not see their features
    at fit time. ``entity_axis`` says whether metrics are also averaged per cell (0) or per drug (1).
    """

    protocol: str
    index: int
    seed: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    score: np.ndarray | None = None
    held_out_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    held_out_drugs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    valid_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    valid_drugs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    entity_axis: int | None = None
    label: str = ""

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for k in ("train", "valid", "test"):
            set_(k, _ro(getattr(self, k)))
        set_("score", _ro(self.test if self.score is None else self.score))
        for k in ("held_out_cells", "held_out_drugs", "valid_cells", "valid_drugs"):
            set_(k, _ro_idx(getattr(self, k)))
        if (self.train & self.test).any() or (self.valid & self.test).any() or (self.train & self.valid).any():
            raise ValueError(f"fold {self.index} of {self.protocol}: train, valid and test masks overlap")
        h = hashlib.sha256()
        for a in (self.train, self.valid, self.test, self.score):
            h.update(np.packbits(a).tobytes())
            h.update(str(a.shape).encode())
        set_("sha256", h.hexdigest())

    @property
    def shape(self):
        return self.train.shape

    @property
    def name(self) -> str:
        return f"{self.protocol}/seed{self.seed}/fold{self.index}" + (f"/{self.label}" if self.label else "")

    def summary(self) -> dict:
        return {
            "fold": self.index, "seed": self.seed, "label": self.label,
            "train": int(self.train.sum()), "valid": int(self.valid.sum()), "test": int(self.test.sum()),
            "score": int(self.score.sum()), "held_out_cells": len(self.held_out_cells),
            "held_out_drugs": len(self.held_out_drugs), "sha256": self.sha256,
        }

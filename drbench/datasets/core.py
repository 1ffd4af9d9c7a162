"""The :class:`Dataset` type: one response matrix with its cell and drug features."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from drbench.errors import DataError, MissingFeatureError


def frozen(a) -> np.ndarray:
    """A read-only copy of ``a`` that nobody can make writable again.

    Its memory is an immutable ``bytes`` object, so ``setflags(write=True)`` raises on it, on its ``.base``
    and on every view of it. An object array (strings of any length) cannot live in bytes: it gets a
    read-only copy, which whoever receives it may unlock but only for itself.
    """
    a = np.asarray(a)
    if a.dtype.hasobject:
        a = a.copy()
        a.setflags(write=False)
        return a
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=a.dtype).reshape(a.shape)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A cell × drug response matrix with features. Immutable after construction: every numeric and id array is
    :func:`frozen` (no one can turn its write flag back on).

    ``binary`` is float with 1 = sensitive, 0 = resistant and NaN where the pair was never measured.
    ``ic50`` is NaN where unmeasured or unknown (e.g. patient sets have labels only).
    ``cell_features`` maps a block name (``"expression"``, later other omics) to an (m, k) array;
    ``drug_features`` maps ``"fingerprint"`` to an (n, 920) array. ``smiles`` is one string per drug
    ("" where unknown). ``cell_domain`` names the source of each row (``"gdsc"``, ``"pdx"``, ...)
    so that a union of a cell-line set and a target set stays one Dataset.
    ``cell_tissue`` is the tissue of origin of each cell line ("" where unknown); it is metadata, not
    part of :attr:`content_hash` (adding it left the hash, and with it every recorded job key, unchanged).
    """

    name: str
    cell_ids: np.ndarray
    drug_ids: np.ndarray
    binary: np.ndarray
    ic50: np.ndarray
    cell_features: Mapping[str, np.ndarray] = field(default_factory=dict)
    cell_feature_names: Mapping[str, np.ndarray] = field(default_factory=dict)
    drug_features: Mapping[str, np.ndarray] = field(default_factory=dict)
    smiles: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    cell_domain: np.ndarray | None = None
    drug_names: np.ndarray | None = None
    cell_alias: np.ndarray | None = None
    cell_names: np.ndarray | None = None
    cell_tissue: np.ndarray | None = None
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        m, n = len(self.cell_ids), len(self.drug_ids)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("cell_ids", frozen(np.asarray(self.cell_ids).astype(str)))
        set_("drug_ids", frozen(np.asarray(self.drug_ids).astype(str)))
        for key in ("binary", "ic50"):
            a = np.asarray(getattr(self, key), dtype=np.float64)
            if a.shape != (m, n):
                raise DataError(f"dataset {self.name}: {key} has shape {a.shape}, expected {(m, n)}")
            set_(key, frozen(a))
        for ids, what in ((self.cell_ids, "cell"), (self.drug_ids, "drug")):
            uniq, counts = np.unique(ids, return_counts=True)
            if (counts > 1).any():
                raise DataError(f"dataset {self.name}: duplicate {what} ids: {list(uniq[counts > 1][:5])}")
        cf = {k: frozen(np.asarray(v, dtype=np.float32)) for k, v in self.cell_features.items()}
        df = {k: frozen(np.asarray(v, dtype=np.float32)) for k, v in self.drug_features.items()}
        for k, v in cf.items():
            if v.shape[0] != m:
                raise DataError(f"dataset {self.name}: cell feature block {k!r} has {v.shape[0]} rows, expected {m}")
        for k, v in df.items():
            if v.shape[0] != n:
                raise DataError(f"dataset {self.name}: drug feature block {k!r} has {v.shape[0]} rows, expected {n}")
        set_("cell_features", cf)
        set_("drug_features", df)
        set_("cell_feature_names", {k: frozen(np.asarray(v).astype(str)) for k, v in self.cell_feature_names.items()})
        smiles = np.full(n, "", dtype=object) if self.smiles is None else np.asarray(self.smiles, dtype=object)
        set_("smiles", frozen(np.array(["" if s is None or s != s else str(s) for s in smiles], dtype=object)))
        thr = np.full(n, np.nan) if self.thresholds is None else np.asarray(self.thresholds, dtype=np.float64)
        set_("thresholds", frozen(thr))
        dom = np.full(m, self.name) if self.cell_domain is None else np.asarray(self.cell_domain).astype(str)
        set_("cell_domain", frozen(dom))
        names = self.drug_ids if self.drug_names is None else np.asarray(self.drug_names).astype(str)
        set_("drug_names", frozen(names))
        alias = self.cell_ids if self.cell_alias is None else np.asarray(self.cell_alias).astype(str)
        set_("cell_alias", frozen(alias))
        cnames = self.cell_ids if self.cell_names is None else np.asarray(self.cell_names).astype(str)
        if cnames.shape != (m,):
            raise DataError(f"dataset {self.name}: {cnames.shape[0]} cell names for {m} cell lines")
        set_("cell_names", frozen(cnames))
        tissue = np.full(m, "") if self.cell_tissue is None else np.asarray(self.cell_tissue).astype(str)
        if tissue.shape != (m,):
            raise DataError(f"dataset {self.name}: {tissue.shape[0]} tissues for {m} cell lines")
        set_("cell_tissue", frozen(tissue))
        set_("meta", dict(self.meta))
        self._check_labels()

    def _check_labels(self):
        b = self.binary
        bad = ~np.isnan(b) & (b != 0) & (b != 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise DataError(
                f"dataset {self.name}: binary response must be 0/1 where measured; "
                f"found {float(b[i, j])!r} at cell {str(self.cell_ids[i])!r}, drug {str(self.drug_ids[j])!r}"
            )

    # ------------------------------------------------------------------ shape and masks
    @property
    def shape(self) -> tuple[int, int]:
        return self.binary.shape

    @property
    def measured(self) -> np.ndarray:
        """Boolean (m, n): pairs with a binary label."""
        return ~np.isnan(self.binary)

    @property
    def positives(self) -> np.ndarray:
        return self.binary == 1

    @property
    def negatives(self) -> np.ndarray:
        return self.binary == 0

    def require(self, blocks) -> None:
        """Raise :class:`MissingFeatureError` unless every named feature block is present."""
        have = set(self.cell_features) | set(self.drug_features) | ({"smiles"} if self.has_smiles else set())
        missing = [b for b in blocks if b not in have]
        if missing:
            why = self.meta.get("missing_features", {})
            details = "; ".join(f"{b}: {why[b]}" for b in missing if b in why)
            raise MissingFeatureError(
                f"dataset {self.name!r} has no {', '.join(missing)} features"
                + (f" ({details})" if details else "")
                + f"; it has: {', '.join(sorted(have)) or 'none'}"
            )

    @property
    def has_smiles(self) -> bool:
        return any(bool(s) for s in self.smiles)

    # ------------------------------------------------------------------ identity
    @property
    def content_hash(self) -> str:
        """sha256 over ids, labels and features: two datasets with the same hash hold the same data."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            h = hashlib.sha256()
            for a in (self.cell_ids, self.drug_ids, self.cell_domain):
                h.update("\x1f".join(a.tolist()).encode())
            for a in (self.binary, self.ic50, self.thresholds):
                h.update(np.ascontiguousarray(a).tobytes())
            for block in (self.cell_features, self.drug_features):
                for k in sorted(block):
                    h.update(k.encode())
                    h.update(block[k].tobytes())
            h.update("\x1f".join(self.smiles.tolist()).encode())
            cached = h.hexdigest()
            self.__dict__["_hash"] = cached
        return cached

    @property
    def has_tissue(self) -> bool:
        return bool((self.cell_tissue != "").any())

    def summary(self) -> dict:
        meas = self.measured
        unknown = self.cell_ids[self.cell_tissue == ""]
        return {
            "name": self.name,
            "cells": int(self.shape[0]),
            "drugs": int(self.shape[1]),
            "measured": int(meas.sum()),
            "positives": int((self.binary == 1).sum()),
            "negatives": int((self.binary == 0).sum()),
            "ic50_measured": int((~np.isnan(self.ic50)).sum()),
            "cell_features": {k: list(v.shape) for k, v in self.cell_features.items()},
            "drug_features": {k: list(v.shape) for k, v in self.drug_features.items()},
            "smiles": int(sum(bool(s) for s in self.smiles)),
            "domains": {str(d): int((self.cell_domain == d).sum()) for d in np.unique(self.cell_domain)},
            "tissues": int(len(set(self.cell_tissue.tolist()) - {""})),
            "cells_without_tissue": int(len(unknown)),
            "cells_without_tissue_first": unknown[:5].tolist(),
            "content_hash": self.content_hash,
            **{k: v for k, v in self.meta.items() if isinstance(v, (str, int, float))},
        }

    # ------------------------------------------------------------------ transformations
    def with_labels(self, binary: np.ndarray, ic50: np.ndarray) -> "Dataset":
        """A copy with other label matrices (same ids and features). Used by the leak test."""
        return self._replace(binary=binary, ic50=ic50)

    def _replace(self, **changes) -> "Dataset":
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields.update(changes)
        return Dataset(**fields)

    def subset(self, rows=None, cols=None, name: str | None = None) -> "Dataset":
        """Rows/columns by integer index or boolean mask."""
        r = np.arange(self.shape[0]) if rows is None else np.asarray(rows)
        c = np.arange(self.shape[1]) if cols is None else np.asarray(cols)
        if r.dtype == bool:
            r = np.flatnonzero(r)
        if c.dtype == bool:
            c = np.flatnonzero(c)
        return Dataset(
            name=name or self.name,
            cell_ids=self.cell_ids[r],
            drug_ids=self.drug_ids[c],
            binary=self.binary[np.ix_(r, c)],
            ic50=self.ic50[np.ix_(r, c)],
            cell_features={k: v[r] for k, v in self.cell_features.items()},
            cell_feature_names=self.cell_feature_names,
            drug_features={k: v[c] for k, v in self.drug_features.items()},
            smiles=self.smiles[c],
            thresholds=self.thresholds[c],
            cell_domain=self.cell_domain[r],
            drug_names=self.drug_names[c],
            cell_alias=self.cell_alias[r],
            cell_names=self.cell_names[r],
            cell_tissue=self.cell_tissue[r],
            meta=self.meta,
        )


def combine(source: Dataset, target: Dataset, name: str | None = None) -> Dataset:
    """Append ``target``'s rows below ``source``'s, on the drugs both share (source order).

    A cell feature block is kept only when both sets have it, restricted to the shared feature columns
    (e.g. genes). A block the target lacks is recorded under ``meta['missing_features']`` so that a
    method needing it stops with an error that says why.
    """
    shared = [j for j, d in enumerate(source.drug_ids) if d in set(target.drug_ids)]
    if not shared:
        raise DataError(f"{source.name} and {target.name} share no drug ids")
    tpos = {d: j for j, d in enumerate(target.drug_ids)}
    tcols = [tpos[source.drug_ids[j]] for j in shared]
    src = source.subset(cols=shared)
    tgt = target.subset(cols=tcols)
    cell_features, names, missing = {}, {}, dict(source.meta.get("missing_features", {}))
    for k, v in src.cell_features.items():
        if k not in tgt.cell_features:
            missing[k] = target.meta.get("missing_features", {}).get(k, f"{target.name} has no {k}")
            continue
        sn = src.cell_feature_names.get(k)
        tn = tgt.cell_feature_names.get(k)
        if sn is not None and tn is not None and len(sn) and len(tn):
            common = [g for g in sn if g in set(tn)]
            si = {g: i for i, g in enumerate(sn)}
            ti = {g: i for i, g in enumerate(tn)}
            a = np.vstack([v[:, [si[g] for g in common]], tgt.cell_features[k][:, [ti[g] for g in common]]])
            names[k] = np.array(common)
        else:
            if v.shape[1] != tgt.cell_features[k].shape[1]:
                raise DataError(f"cell feature block {k!r}: {source.name} and {target.name} differ in width")
            a = np.vstack([v, tgt.cell_features[k]])
        cell_features[k] = a
    dup = set(src.cell_ids) & set(tgt.cell_ids)
    tgt_ids = [f"{target.name}:{c}" if c in dup else c for c in tgt.cell_ids]
    meta = {
        "source": f"{source.name}+{target.name}",
        "missing_features": missing,
        "source_name": source.name,
        "target_name": target.name,
    }
    return Dataset(
        name=name or f"{source.name}+{target.name}",
        cell_ids=np.concatenate([src.cell_ids, np.array(tgt_ids)]),
        drug_ids=src.drug_ids,
        binary=np.vstack([src.binary, tgt.binary]),
        ic50=np.vstack([src.ic50, tgt.ic50]),
        cell_features=cell_features,
        cell_feature_names=names,
        drug_features=src.drug_features,
        smiles=src.smiles,
        thresholds=src.thresholds,
        cell_domain=np.concatenate([src.cell_domain, tgt.cell_domain]),
        drug_names=src.drug_names,
        cell_alias=np.concatenate([src.cell_alias, tgt.cell_alias]),
        cell_names=np.concatenate([src.cell_names, tgt.cell_names]),
        cell_tissue=np.concatenate([src.cell_tissue, tgt.cell_tissue]),
        meta=meta,
    )

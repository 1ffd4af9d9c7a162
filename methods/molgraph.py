"""Molecular graphs from SMILES for graph-based drug branches (DeepCDR; method-specs §4.5).

A drug becomes its heavy-atom graph (RDKit, hydrogens implicit):

* **atom features**, 75 per atom, the DeepChem ``ConvMol`` layout (written here with RDKit, no DeepChem):
  element one-hot (44 symbols, the last one "unknown"), degree one-hot (0..10), implicit valence one-hot
  (0..6), formal charge, number of radical electrons, hybridisation one-hot (SP, SP2, SP3, SP3D, SP3D2),
  aromatic flag, total number of hydrogens one-hot (0..4). A value outside a one-hot's range goes to
  its last slot (DeepChem raises for an unexpected degree; we do not).
* **adjacency** ``D^-1/2 (A + I) D^-1/2`` over the real atoms (self loops included, D the degree of A + I).
  :meth:`MolGraph.padded` gives the reference layout: ``max_atoms`` slots, zero features for padding and
  an identity block (the padding normalised on its own, i.e. self loops only).

Graphs are built once per SMILES: an in-process cache keyed by the SMILES string (the same
read-only arrays come back on every call) and, on request, an on-disk cache under the user cache dir
(``$DRBENCH_CACHE``, else ``$XDG_CACHE_HOME/drbench``, else ``~/.cache/drbench``; sub-folder ``molgraph``).
An empty or unparsable SMILES gives ``None`` (the caller falls back to fingerprints).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("drbench.methods.molgraph")

#: version of the feature layout; part of the on-disk cache key
FEATURE_VERSION = 1

SYMBOLS = ("C", "N", "O", "S", "F", "Si", "P", "Cl", "Br", "Mg", "Na", "Ca", "Fe", "As", "Al", "I", "B", "V",
           "K", "Tl", "Yb", "Sb", "Sn", "Ag", "Pd", "Co", "Se", "Ti", "Zn", "H", "Li", "Ge", "Cu", "Au", "Ni",
           "Cd", "In", "Mn", "Zr", "Cr", "Pt", "Hg", "Pb", "Unknown")
DEGREES = tuple(range(11))
IMPLICIT_VALENCES = tuple(range(7))
HYBRIDIZATIONS = ("SP", "SP2", "SP3", "SP3D", "SP3D2")
TOTAL_HS = tuple(range(5))
#: (name, width) of each block of the atom feature vector, in order
FEATURE_BLOCKS = (("symbol", len(SYMBOLS)), ("degree", len(DEGREES)), ("implicit_valence", len(IMPLICIT_VALENCES)),
                  ("formal_charge", 1), ("radical_electrons", 1), ("hybridization", len(HYBRIDIZATIONS)),
                  ("aromatic", 1), ("total_hs", len(TOTAL_HS)))
N_ATOM_FEATURES = sum(w for _, w in FEATURE_BLOCKS)  # 75


def feature_slices() -> dict:
    """Name → slice of each block in an atom feature vector."""
    out, start = {}, 0
    for name, width in FEATURE_BLOCKS:
        out[name] = slice(start, start + width)
        start += width
    return out


def _one_hot(value, choices) -> list:
    """One-hot of ``value`` over ``choices``; anything not listed maps to the last slot."""
    v = [0.0] * len(choices)
    try:
        v[choices.index(value)] = 1.0
    except ValueError:
        v[-1] = 1.0
    return v


def _implicit_valence(atom) -> int:
    from rdkit import Chem

    vt = getattr(Chem, "ValenceType", None)
    if vt is not None:
        return int(atom.GetValence(vt.IMPLICIT))
    return int(atom.GetImplicitValence())  # older RDKit


def atom_features(atom) -> np.ndarray:
    """The 75-d feature vector of an RDKit atom (layout in the module docstring)."""
    f = (_one_hot(atom.GetSymbol(), SYMBOLS)
         + _one_hot(atom.GetDegree(), DEGREES)
         + _one_hot(_implicit_valence(atom), IMPLICIT_VALENCES)
         + [float(atom.GetFormalCharge()), float(atom.GetNumRadicalElectrons())]
         + _one_hot(str(atom.GetHybridization()), HYBRIDIZATIONS)
         + [1.0 if atom.GetIsAromatic() else 0.0]
         + _one_hot(atom.GetTotalNumHs(), TOTAL_HS))
    return np.asarray(f, dtype=np.float32)


def normalized_adjacency(a: np.ndarray) -> np.ndarray:
    """``D^-1/2 (A + I) D^-1/2`` with D the row sums of ``A + I`` (symmetric, self loops)."""
    a = np.asarray(a, dtype=np.float64) + np.eye(a.shape[0])
    d = 1.0 / np.sqrt(a.sum(1))
    return (a * d[:, None] * d[None, :]).astype(np.float32)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class MolGraph:
    """One molecule: ``features`` (n_atoms × 75) and normalised ``adjacency`` (n_atoms × n_atoms)."""

    smiles: str
    features: np.ndarray
    adjacency: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.features.shape[0])

    def edges(self):
        """The non-zero entries of ``adjacency`` as (row, col, value) arrays (self loops included)."""
        r, c = np.nonzero(self.adjacency)
        return r.astype(np.int64), c.astype(np.int64), self.adjacency[r, c]

    def padded(self, max_atoms: int = 100):
        """The reference layout: (max_atoms × 75 features, max_atoms × max_atoms adjacency).

        Padding rows have zero features; the padding block of the adjacency is the identity (the
        reference normalises the padding block on its own, so every padded slot keeps a self loop).
        """
        n = self.n_atoms
        if n > max_atoms:
            raise ValueError(f"{self.smiles!r} has {n} heavy atoms > max_atoms={max_atoms}")
        x = np.zeros((max_atoms, self.features.shape[1]), dtype=np.float32)
        x[:n] = self.features
        a = np.eye(max_atoms, dtype=np.float32)
        a[:n, :n] = self.adjacency
        return x, a


def build_graph(smiles: str) -> MolGraph | None:
    """Build a graph without any cache; ``None`` for an empty or unparsable SMILES."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None or mol.GetNumAtoms() == 0:
        log.warning("RDKit cannot parse SMILES %r; the drug falls back to its fingerprint", smiles)
        return None
    x = np.stack([atom_features(a) for a in mol.GetAtoms()])
    n = mol.GetNumAtoms()
    a = np.zeros((n, n), dtype=np.float32)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        a[i, j] = a[j, i] = 1.0
    return MolGraph(smiles, _ro(x), _ro(normalized_adjacency(a)))


# ---------------------------------------------------------------------------------------------- caches
_CACHE: dict[str, MolGraph | None] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    """The on-disk cache folder for molecular graphs (not created here)."""
    root = os.environ.get("DRBENCH_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "drbench"
    return base / "molgraph"


def _disk_path(smiles: str, folder: Path) -> Path:
    key = hashlib.sha256(f"v{FEATURE_VERSION}:{smiles}".encode()).hexdigest()
    return folder / f"{key}.npz"


def _disk_load(smiles: str, folder: Path) -> MolGraph | None:
    p = _disk_path(smiles, folder)
    if not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            if str(z["smiles"]) != smiles:
                return None
            return MolGraph(smiles, _ro(z["features"].astype(np.float32)), _ro(z["adjacency"].astype(np.float32)))
    except Exception as e:  # a corrupt cache file is rebuilt
        log.warning("ignoring unreadable molgraph cache file %s: %s", p, e)
        return None


def _disk_store(g: MolGraph, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        p = _disk_path(g.smiles, folder)
        tmp = p.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, smiles=np.array(g.smiles), features=g.features, adjacency=g.adjacency)
        os.replace(tmp, p)
    except OSError as e:
        log.warning("cannot write molgraph cache under %s: %s", folder, e)


def mol_graph(smiles: str, disk_cache: bool | str | Path = False) -> MolGraph | None:
    """The cached graph of ``smiles`` (``None`` if empty/unparsable).

    The in-process cache always applies: the same :class:`MolGraph` object (read-only arrays) is
    returned for the same string. ``disk_cache=True`` also reads/writes :func:`cache_dir`; a path
    selects another folder.
    """
    smiles = smiles if isinstance(smiles, str) else ""
    with _LOCK:
        if smiles in _CACHE:
            return _CACHE[smiles]
    folder = None
    if disk_cache:
        folder = cache_dir() if disk_cache is True else Path(disk_cache)
    g = _disk_load(smiles, folder) if folder is not None and smiles.strip() else None
    if g is None:
        g = build_graph(smiles)
        if g is not None and folder is not None:
            _disk_store(g, folder)
    with _LOCK:
        return _CACHE.setdefault(smiles, g)


def mol_graphs(smiles_list, disk_cache: bool | str | Path = False) -> list:
    """:func:`mol_graph` for each SMILES of a list."""
    return [mol_graph(s, disk_cache=disk_cache) for s in smiles_list]


def clear_cache() -> None:
    """Empty the in-process cache (the disk cache is left alone)."""
    with _LOCK:
        _CACHE.clear()


def cache_size() -> int:
    with _LOCK:
        return len(_CACHE)


__all__ = ["MolGraph", "atom_features", "build_graph", "mol_graph", "mol_graphs", "normalized_adjacency",
           "clear_cache", "cache_dir", "feature_slices", "N_ATOM_FEATURES", "SYMBOLS"]

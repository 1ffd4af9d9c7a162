"""A minimal drbench method defined in a script (the README's plugin example; the tests run it).

Run it with:  python examples/plugin_example.py
"""

import numpy as np

import drbench
from drbench.methods import Capabilities, Method, Prediction
from drbench.params import PositiveInt


@drbench.register("nearest-cell")
class NearestCell(Method):
    """Scores a pair by the training labels of the k most similar cell lines (expression correlation)."""

    capabilities = Capabilities(tasks={"classification"}, protocols={"random", "new-cell-line"},
                                transductive=False, needs={"expression"})

    def __init__(self, k: PositiveInt = 10):  # an int >= 1: --set nearest-cell.k=0 is refused
        self.k = k

    def fit(self, view):
        x = view.cell_features["expression"]
        self.rows_ = np.flatnonzero(view.visible_cells)  # cells whose features we may see
        self.x_ = x[self.rows_]
        labels = np.where(view.train, view.binary, np.nan)[self.rows_]  # fit on training labels only
        self.rate_ = np.nan_to_num(labels, nan=np.nanmean(labels))
        return self

    def predict(self, query):
        x = query.cell_features["expression"]
        sim = np.corrcoef(x[query.rows], self.x_)[: len(query.rows), len(query.rows):]
        nearest = np.argsort(-sim, axis=1)[:, : self.k]
        score = self.rate_[nearest, query.cols[:, None]].mean(axis=1)
        return Prediction(np.clip(score, 0.0, 1.0))


if __name__ == "__main__":
    from drbench.runner import SweepSpec, run_sweep
    from drbench.testing import check_method

    print(check_method(NearestCell))
    report = run_sweep(SweepSpec(methods="nearest-cell,mean-effects", protocol="random", dataset="synthetic"))
    for r in report.results:
        print(r.method, r.fold, round(r.metrics["auc"], 3))

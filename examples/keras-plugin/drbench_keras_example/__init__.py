"""A drbench method written in Keras (TensorFlow backend), registered through the ``drbench.methods`` entry
point of this package's pyproject.toml.

``keras-mlp`` scores a (cell line, drug) pair with a multilayer perceptron on the concatenation of the
cell's expression profile (standardized with statistics of the cells the method may see) and the drug's
920-bit PubChem fingerprint. It is inductive: it needs no features of held-out entities at fit time, and
scores new cell lines or drugs from their features at predict time. Epochs are chosen on ``view.valid``
(AUC, or loss when the valid entries hold one class only); with no labelled valid entry it trains the
fixed budget and keeps the last epoch.

TensorFlow is imported only when a model is fitted, so ``drbench methods`` lists the method quickly and
a missing TensorFlow gives a clear error at fit time instead of breaking the registry.
"""

from __future__ import annotations

import os

import numpy as np

from drbench.api import Capabilities, Method, Prediction, Query, TrainView
from drbench.errors import DrbenchError
from drbench.metrics import roc_auc

__all__ = ["KerasMLP"]
__version__ = "0.1.0"


def _keras():
    """Import keras on the TensorFlow backend, or say how to install it."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DrbenchError(
            f"keras-mlp needs TensorFlow ({e}); install it with "
            "`pip install 'drbench-keras-example[tensorflow]'` (the CPU build, tensorflow-cpu)") from None
    if keras.backend.backend() != "tensorflow":
        raise DrbenchError(f"keras-mlp runs on the TensorFlow backend; KERAS_BACKEND is {keras.backend.backend()!r}")
    return keras, tf


def _pairs(mask: np.ndarray, labels: np.ndarray):
    rows, cols = np.nonzero(mask & ~np.isnan(labels))
    return rows, cols, labels[rows, cols].astype(np.float32)


class KerasMLP(Method):
    """MLP on [standardized expression ⊕ fingerprint] per pair, trained with binary cross-entropy."""

    capabilities = Capabilities(
        tasks={"classification"},
        protocols={"random", "new-cell-line", "new-drug", "in-vivo"},
        transductive=False,
        needs={"expression", "fingerprint"},
        selects=True,
    )

    def __init__(self, hidden: tuple = (256, 64), dropout: float = 0.2, learning_rate: float = 1e-3,
                 l2: float = 1e-5, epochs: int = 30, batch_size: int = 512, patience: int = 5,
                 threads: int = 1):
        self.hidden = hidden
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.threads = threads

    @classmethod
    def fast_params(cls) -> dict:
        return {"hidden": (16,), "epochs": 3, "batch_size": 64, "patience": 2}

    # ------------------------------------------------------------------ features
    def _inputs(self, cell_x: np.ndarray, drug_x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        c = (cell_x[rows] - self.mean_) / self.scale_
        return np.concatenate([c, drug_x[cols]], axis=1).astype(np.float32)

    def _build(self, keras, width: int):
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        layers = [keras.Input(shape=(width,))]
        hidden = self.hidden
        if isinstance(hidden, str):  # e.g. --set keras-mlp.hidden=128,32
            hidden = [h for h in hidden.replace("(", "").replace(")", "").split(",") if h.strip()]
        elif isinstance(hidden, (int, float)):
            hidden = [hidden]
        for units in hidden:
            layers.append(keras.layers.Dense(int(units), activation="relu", kernel_regularizer=reg))
            if self.dropout:
                layers.append(keras.layers.Dropout(float(self.dropout)))
        layers.append(keras.layers.Dense(1, activation="sigmoid"))
        model = keras.Sequential(layers)
        model.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)),
                      loss=keras.losses.BinaryCrossentropy())
        return model

    def _scores(self, model, cell_x, drug_x, rows, cols) -> np.ndarray:
        out = np.empty(len(rows), dtype=np.float64)
        step = 8192
        for a in range(0, len(rows), step):
            x = self._inputs(cell_x, drug_x, rows[a:a + step], cols[a:a + step])
            out[a:a + step] = np.asarray(model(x, training=False)).ravel()
        return out

    # ------------------------------------------------------------------ API
    def fit(self, view: TrainView) -> "KerasMLP":
        keras, tf = _keras()
        keras.utils.set_random_seed(int(view.seed))  # python, numpy and TensorFlow seeds
        tf.config.experimental.enable_op_determinism()
        try:  # one thread by default: deterministic and polite on shared machines (only before TF starts)
            tf.config.threading.set_intra_op_parallelism_threads(int(self.threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(self.threads))
        except RuntimeError:
            pass
        cell_x = np.asarray(view.cell_features["expression"], dtype=np.float32)
        drug_x = np.asarray(view.drug_features["fingerprint"], dtype=np.float32)
        seen = cell_x[view.visible_cells]  # statistics from the cells the method may see
        self.mean_ = np.nanmean(seen, axis=0).astype(np.float32)
        self.scale_ = np.nanstd(seen, axis=0).astype(np.float32)
        self.scale_[~(self.scale_ > 1e-8)] = 1.0
        self.mean_ = np.nan_to_num(self.mean_)

        tr_r, tr_c, tr_y = _pairs(view.train, view.binary)
        if len(tr_y) == 0:
            raise DrbenchError("keras-mlp: the view has no labelled training pair")
        va_r, va_c, va_y = _pairs(view.valid, view.binary)
        ok = np.isfinite(cell_x[va_r]).all(axis=1) & np.isfinite(drug_x[va_c]).all(axis=1)
        va_r, va_c, va_y = va_r[ok], va_c[ok], va_y[ok]  # valid pairs whose features the view shows

        model = self._build(keras, cell_x.shape[1] + drug_x.shape[1])
        rng = np.random.default_rng(int(view.seed))
        best, best_epoch, best_weights, waited, epochs_run = -np.inf, 0, None, 0, 0
        history = []
        for epoch in range(1, int(self.epochs) + 1):
            order = rng.permutation(len(tr_y))
            losses = []
            for a in range(0, len(order), int(self.batch_size)):
                idx = order[a:a + int(self.batch_size)]
                x = self._inputs(cell_x, drug_x, tr_r[idx], tr_c[idx])
                losses.append(float(model.train_on_batch(x, tr_y[idx])))
            epochs_run = epoch
            if len(va_y):
                p = self._scores(model, cell_x, drug_x, va_r, va_c)
                if 0 < va_y.sum() < len(va_y):
                    value = roc_auc(va_y, p)
                else:  # one class only: the negative log loss
                    q = np.clip(p, 1e-7, 1 - 1e-7)
                    value = float(np.mean(va_y * np.log(q) + (1 - va_y) * np.log(1 - q)))
                history.append(value)
                if value > best:
                    best, best_epoch, best_weights, waited = value, epoch, model.get_weights(), 0
                else:
                    waited += 1
                    if waited >= int(self.patience):
                        break
        if best_weights is not None:
            model.set_weights(best_weights)
        else:
            best_epoch = epochs_run
        self.model_ = model
        self.fit_info_ = {"epochs_run": epochs_run, "best_epoch": best_epoch,
                          "train_loss_last": float(np.mean(losses)) if losses else float("nan"),
                          "valid_value_best": float(best) if history else float("nan")}
        return self

    def predict(self, query: Query) -> Prediction:
        cell_x = np.asarray(query.cell_features["expression"], dtype=np.float32)
        drug_x = np.asarray(query.drug_features["fingerprint"], dtype=np.float32)
        score = self._scores(self.model_, cell_x, drug_x, np.asarray(query.rows), np.asarray(query.cols))
        return Prediction(np.clip(score, 0.0, 1.0))

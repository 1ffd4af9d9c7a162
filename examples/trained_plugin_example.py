"""A trained torch method on the training kit (the README's second plugin example; the tests run it)."""

import numpy as np
import torch
from torch import nn

import drbench
from drbench.methods import Capabilities, Method, Prediction
from drbench.methods.training import fit_pairs, pair_data, predict_pairs, seeded


class PairNet(nn.Module):
    """[cell expression ⊕ drug fingerprint] → hidden layer → (sensitivity logit, standardised IC50)."""

    def __init__(self, n_inputs: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, inputs, rows, cols):
        expr, fp = inputs
        return self.body(torch.cat([expr[rows], fp[cols]], dim=1)).unbind(1)


@drbench.register("pair-mlp")
class PairMLP(Method):
    """An MLP on each pair's expression ⊕ fingerprint, with early stopping on the validation AUC."""

    capabilities = Capabilities(tasks={"classification", "regression"}, protocols={"random", "new-cell-line"},
                                transductive=False, needs={"expression", "fingerprint"}, selects=True)

    def __init__(self, hidden: int = 64, epochs: int = 30, lr: float = 1e-3, patience: int = 5):
        self.hidden, self.epochs, self.lr, self.patience = hidden, epochs, lr, patience

    def _inputs(self, cells, drugs):  # features of entities a view holds out are NaN: they become 0
        expr = np.nan_to_num((cells["expression"] - self.mean_) / self.sd_)
        fp = np.nan_to_num(drugs["fingerprint"])
        return torch.tensor(expr, dtype=torch.float32), torch.tensor(fp, dtype=torch.float32)

    def fit(self, view):
        seen = view.cell_features["expression"][view.visible_cells]  # scale with the cells we may see
        self.mean_, self.sd_ = seen.mean(0), seen.std(0) + 1e-8
        train, valid, self.ic50_mean_, self.ic50_sd_ = pair_data(view)  # labelled train and valid pairs
        inputs = self._inputs(view.cell_features, view.drug_features)
        with seeded(view.seed):  # initial weights from the view's seed
            self.net_ = PairNet(sum(x.shape[1] for x in inputs), self.hidden)
        self.fit_info_ = fit_pairs(self.net_, inputs, train, valid, epochs=self.epochs, batch_size=256,
                                   lr=self.lr, patience=self.patience, seed=view.seed)
        return self

    def predict(self, query):
        inputs = self._inputs(query.cell_features, query.drug_features)
        p, t = predict_pairs(self.net_, inputs, query.rows, query.cols)
        return Prediction(p, t * self.ic50_sd_ + self.ic50_mean_)


if __name__ == "__main__":  # python examples/trained_plugin_example.py
    from drbench.testing import check_method
    print(check_method(PairMLP))

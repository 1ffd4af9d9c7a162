"""Test 5, case study: train on every measured entry and score every unmeasured pair.

There are no test labels; each job records the scores of the unmeasured pairs and ``topk.csv``, the top-k
cell lines per drug (:meth:`CaseStudy.job_artifacts`). A validation split is carved from the measured entries as in Test 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from drbench.datasets import Dataset
from drbench.folds import Fold
from drbench.protocols.base import Option, Protocol
from drbench.protocols.sampling import VALID, entry_split, rng_for


class CaseStudy(Protocol):
    name = "case-study"
    paper_test = "Test 5"
    kind = "random"
    scores_unlabelled = True
    description = "train on all measured entries; rank the unmeasured pairs (top-k cell lines per drug)"
    options = {
        "top_k": Option(10, "cell lines per drug in the written ranking", minimum=1),
        "valid_fraction": Option(0.1, "fraction of positives (plus as many negatives) carved for validation",
                                 greater_than=0, less_than=1),
    }

    def folds(self, dataset, seed, carve_valid=True, top_k=10, valid_fraction=0.1):
        b = dataset.binary
        train = dataset.measured.copy()
        valid = np.zeros_like(train)
        if carve_valid:
            valid = entry_split(b == 1, b == 0, valid_fraction, rng_for(seed, 0, VALID))
            train &= ~valid
        test = np.zeros_like(train)
        return [Fold(self.name, 0, seed, train, valid, test, score=~dataset.measured)]

    def job_artifacts(self, dataset, predictions, options):
        return {"topk.csv": top_k_table(dataset, predictions, options["top_k"])}


def top_k_table(dataset: Dataset, predictions: dict, k: int) -> pd.DataFrame:
    """The ``k`` highest-scored cell lines per drug among the scored (unmeasured) pairs."""
    df = pd.DataFrame({"drug_id": predictions["drug_id"], "cell_id": predictions["cell_id"],
                       "score": predictions["score"], "col": predictions["col"]})
    df["drug_name"] = dataset.drug_names[df["col"].to_numpy()]
    df["cell_name"] = df["cell_id"].map(dict(zip(dataset.cell_ids, dataset.cell_names)))
    df = df.sort_values(["drug_id", "score", "cell_id"], ascending=[True, False, True])
    df["rank"] = df.groupby("drug_id").cumcount() + 1
    df["unmeasured_pairs"] = df.groupby("drug_id")["score"].transform("size")
    return df[df["rank"] <= k][["drug_id", "drug_name", "rank", "cell_id", "cell_name", "score", "unmeasured_pairs"]]

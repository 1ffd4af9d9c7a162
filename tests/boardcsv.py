"""Test helper: write a board's per-fold CSV from a few rows (every other column of
:data:`drbench.leaderboard.CSV_COLUMNS` left empty), as ``drbench leaderboard`` writes it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from drbench.leaderboard import CSV_COLUMNS


def write_board_csv(path, rows) -> object:
    df = pd.DataFrame(rows)
    for col in CSV_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    df[CSV_COLUMNS].to_csv(path, index=False)
    return path

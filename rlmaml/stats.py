"""Statistics shared by the RL and supervised modes: one mean with its 95% confidence half-width, one moving
average. NumPy only."""

from __future__ import annotations

import math

import numpy as np


def mean_ci95(values, axis: int = -1) -> tuple:
    """(mean, 1.96·s/√n) over ``axis``, s the sample standard deviation (ddof 1).

    With fewer than two values the half-width is NaN (a spread cannot be estimated). Scalars for 1-D input,
    arrays otherwise.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[axis] if values.ndim else 1
    mean = values.mean(axis=axis)
    if n < 2:
        half = np.full_like(mean, np.nan)
    else:
        half = 1.96 * values.std(axis=axis, ddof=1) / math.sqrt(n)
    if np.ndim(mean) == 0:
        return float(mean), float(half)
    return mean, half


def moving_average(y, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` points (fewer at the start), ignoring NaNs:

        m_i = mean{ y_j : max(0, i − window + 1) ≤ j ≤ i, y_j finite }   (NaN where none is finite)
    """
    y = np.asarray(y, dtype=np.float64)
    if window <= 1 or y.size == 0:
        return y
    valid = np.isfinite(y)
    csum = np.concatenate([[0.0], np.cumsum(np.where(valid, y, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(valid)])
    hi = np.arange(1, y.size + 1)
    lo = np.maximum(0, hi - window)
    count = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), np.nan)


__all__ = ["mean_ci95", "moving_average"]

"""rlmaml.stats against hand-computed values."""

import math

import numpy as np
import pytest

from rlmaml.stats import mean_ci95, moving_average


def test_mean_ci95_by_hand():
    mean, half = mean_ci95([1.0, 2.0, 6.0])  # mean 3, s² = (4 + 1 + 9) / 2 = 7
    assert mean == 3.0 and half == pytest.approx(1.96 * math.sqrt(7 / 3))
    assert math.isnan(mean_ci95([4.0])[1])
    means, halves = mean_ci95(np.array([[1.0, 2.0, 6.0], [0.0, 0.0, 0.0]]))
    assert means.tolist() == [3.0, 0.0] and halves[0] == pytest.approx(1.96 * math.sqrt(7 / 3)) and halves[1] == 0


def test_moving_average_by_hand():
    y = [1.0, 3.0, float("nan"), 5.0, 7.0]
    assert moving_average(y, 2).tolist() == [1.0, 2.0, 3.0, 5.0, 6.0]
    assert moving_average(y, 1) is not None and moving_average([1.0, 2.0], 1).tolist() == [1.0, 2.0]
    assert math.isnan(moving_average([float("nan"), 1.0], 1)[0])

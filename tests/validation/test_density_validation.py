"""KDE density certificate against MATH.md §2.6 and its bootstrap calibration (slow).

**KDE floor table.** MATH.md §2.6 lists the Gaussian-KDE relative L² error of exact iid 2-D
BKW samples on the Huang–Wang grid ([−4, 4]², 100 × 100 cell centres), each entry the mean
over 3 seeds, rounded to 2 digits. We compute 4 independent floors per entry (2 calls of
``density_error`` with exact samples as the "particles", each giving 2 floors) and compare
means. With σ the seed-to-seed sd of one error, the difference has sd σ √(1/3 + 1/4); σ is
estimated by the mean bootstrap stderr (calibrated below) and we accept
4 σ √(1/3 + 1/4) + 5e−4 (table rounding): a correct implementation fails an entry with
probability ≈ 6e−5, ≈ 1e−3 over the 16 entries. Measured on these seeds: every entry within
1.7 σ √(1/3 + 1/4) of the table (e.g. N = 100², t = 1, h = 0.15: 0.0748 vs 0.070; t = 5,
h = 0.12: 0.0839 vs 0.090; N = 160², t = 5, h = 0.15: 0.0418 vs 0.046); σ ≈ 0.003–0.006.
About 4 min on 2 CPU cores.

**Bootstrap calibration** (t = 1, n = 4000, h = default_bandwidth = 0.176, B = 32, R = 60
seeds). With exact samples as particles both errors are iid floors:

* the mean bootstrap stderr against the sd of the 2R errors over seeds: the latter has
  relative standard error ≈ 1/√(2(2R − 1)) = 0.065, so a calibrated bootstrap lies in
  [0.8, 1.2]; resampling ties inflate it somewhat (measured 1.15), so we accept [0.8, 1.5];
* coverage of 0 by the 95% bootstrap-normal interval of the excess: if calibrated, the count
  is Binomial(60, 0.95); we accept [50, 60] (50 is its 0.05% quantile; over-coverage is the
  conservative side). Measured: 59/60.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from solvers import landau_bkw_2d
from verify._density import default_bandwidth, default_grid, density_error

pytestmark = pytest.mark.slow

BKW = landau_bkw_2d()
GRID = default_grid(2, -4.0, 4.0)
Z95 = 1.959963984540054

# (N side, t, bandwidth) -> mean relative L2 error (MATH.md §2.6, "KDE floor")
KDE_FLOOR = {
    (100, 1.0, 0.12): 8.5e-2,
    (100, 1.0, 0.15): 7.0e-2,
    (100, 5.0, 0.12): 9.0e-2,
    (100, 5.0, 0.15): 7.0e-2,
    (120, 1.0, 0.12): 7.4e-2,
    (120, 1.0, 0.15): 5.8e-2,
    (120, 5.0, 0.12): 6.6e-2,
    (120, 5.0, 0.15): 5.8e-2,
    (150, 1.0, 0.12): 5.7e-2,
    (150, 1.0, 0.15): 5.4e-2,
    (150, 5.0, 0.12): 6.0e-2,
    (150, 5.0, 0.15): 4.4e-2,
    (160, 1.0, 0.12): 5.6e-2,
    (160, 1.0, 0.15): 4.8e-2,
    (160, 5.0, 0.12): 5.5e-2,
    (160, 5.0, 0.15): 4.6e-2,
}


def _floors(t: float, n: int, bandwidth: float, seed: int, n_bootstrap: int):
    """Two iid KDE floors (exact samples as particles) and their bootstrap stderrs."""
    k_particles, k_exact, k_boot = jax.random.split(jax.random.key(seed), 3)
    res = density_error(
        BKW.sample(t, n, key=k_particles),
        lambda v: BKW.density(t, v),
        BKW.sample(t, n, key=k_exact),
        grid=GRID,
        bandwidth=bandwidth,
        key=k_boot,
        n_bootstrap=n_bootstrap,
    )
    return res, [res.density_error, res.kde_floor]


@pytest.mark.parametrize(("side", "t", "bandwidth"), sorted(KDE_FLOOR))
def test_kde_floor_matches_math_table(side, t, bandwidth):
    values, stderrs = [], []
    for seed in range(2):
        _, ests = _floors(t, side * side, bandwidth, 7919 * side + seed, n_bootstrap=8)
        values += [e.estimate for e in ests]
        stderrs += [e.stderr for e in ests]
    mean, sigma = float(np.mean(values)), float(np.mean(stderrs))
    table = KDE_FLOOR[(side, t, bandwidth)]
    tol = 4 * sigma * math.sqrt(1 / 3 + 1 / 4) + 5e-4
    print(f"N={side}^2 t={t} h={bandwidth}: {mean:.4f} vs {table} (sigma {sigma:.4f})")
    assert abs(mean - table) <= tol, (mean, table, tol)


def test_bootstrap_calibration_and_excess_coverage():
    t, n, reps = 1.0, 4000, 60
    h = default_bandwidth(n, 2, 1.0)
    values, stderrs, covered = [], [], 0
    for seed in range(reps):
        res, ests = _floors(t, n, h, seed, n_bootstrap=32)
        values += [e.estimate for e in ests]
        stderrs += [e.stderr for e in ests]
        covered += abs(res.excess.estimate) <= Z95 * res.excess.stderr
    ratio = float(np.mean(stderrs) / np.std(values, ddof=1))
    print(f"bootstrap sd / seed sd = {ratio:.3f}; excess coverage {covered}/{reps}")
    assert 0.8 <= ratio <= 1.5
    assert 50 <= covered <= reps

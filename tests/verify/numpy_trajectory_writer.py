"""Write trajectory artefacts with plain NumPy + netCDF4: no JAX, no solvercert imports.

Run as ``python tests/verify/numpy_trajectory_writer.py OUT_DIR [N]``; it writes, following
``certificates/SCHEMA.md`` § "Trajectory and sample artefacts" only:

* ``gmm_exact.nc`` — exact samples of vp-gmm-2d at t = 0.1 and 0.5 with the exact score and
  its divergence (closed form, as ``fixtures/models/vp_gmm_analytic.py``) at float32 positions
  (a PyTorch-like export; the reader converts);
* ``gmm_score13.nc`` — the same samples with the score multiplied by 1.3;
* ``gmm_no_divergence.nc`` — the exact scores without ``score_divergence``;
* ``gmm_weighted.nc`` — one time (a sample artefact): N/2 exact samples with weight 2/N
  and N/2 far-away decoys with weight 0;
* ``rotating.nc`` — a conservative trajectory: centred Maxwellian particles rotated rigidly
  (mass, momentum, second moment and log f preserved exactly in exact arithmetic);
* ``leaky.nc`` — the same particles shrinking by 1% per frame (energy leaks), ``stepper =
  "rk4"`` and no increments.

It exits with an error if anything imported JAX, so a passing run proves the artefacts were
produced without it. The formulas: under the VP SDE the data mixture Σ_k w_k N(μ_k, Σ_k)
becomes Σ_k w_k N(α μ_k, α² Σ_k + (1 − α²) I), α(t) = exp(−t β_min/2 − t²(β_max − β_min)/4)
(Song et al., ICLR 2021, eq. 29); with component scores s_k = −P_k (x − m_k), P_k = C_k⁻¹,
responsibilities r_k and s = Σ_k r_k s_k, ∇·s = Σ_k r_k (|s_k|² − tr P_k) − |s|².
"""

from __future__ import annotations

import sys
from pathlib import Path

import netCDF4
import numpy as np

BETA_MIN, BETA_MAX = 0.1, 20.0
WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]])
COVARIANCES = np.array(
    [[[0.3, 0.0], [0.0, 0.3]], [[0.5, 0.0], [0.0, 0.1]], [[0.4, 0.2], [0.2, 0.3]]]
)
TIMES = (0.1, 0.5)


def marginal(t: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.exp(-0.5 * t * BETA_MIN - 0.25 * t**2 * (BETA_MAX - BETA_MIN))
    return alpha * MEANS, alpha**2 * COVARIANCES + (1.0 - alpha**2) * np.eye(2)


def sample(t: float, n: int, rng: np.random.Generator) -> np.ndarray:
    means, covariances = marginal(t)
    component = rng.choice(len(WEIGHTS), size=n, p=WEIGHTS)
    factors = np.linalg.cholesky(covariances)
    z = rng.standard_normal((n, 2))
    return means[component] + np.einsum("nij,nj->ni", factors[component], z)


def score_and_divergence(t: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    means, covariances = marginal(t)
    precisions = np.linalg.inv(covariances)
    diff = x[:, None, :] - means[None]  # (n, k, d)
    scores = -np.einsum("kij,nkj->nki", precisions, diff)
    _, logdet = np.linalg.slogdet(covariances)
    log_r = np.log(WEIGHTS) - 0.5 * logdet + 0.5 * np.einsum("nki,nki->nk", diff, scores)
    log_r -= log_r.max(axis=1, keepdims=True)
    r = np.exp(log_r)
    r /= r.sum(axis=1, keepdims=True)
    s = np.einsum("nk,nki->ni", r, scores)
    trace = np.trace(precisions, axis1=1, axis2=2)
    divergence = np.einsum("nk,nk->n", r, np.sum(scores**2, axis=2) - trace) - np.sum(s**2, 1)
    return s, divergence


def write(path: Path, variables: dict, attrs: dict) -> None:
    with netCDF4.Dataset(path, "w", format="NETCDF4") as handle:
        sizes = {}
        for dims, value in variables.values():
            sizes.update(zip(dims, np.shape(value), strict=True))
        for dim, size in sizes.items():
            handle.createDimension(dim, size)
        for name, (dims, value) in variables.items():
            value = np.asarray(value)
            handle.createVariable(name, value.dtype, dims)[...] = value
        handle.setncatts(
            {"artefact": "solvercert-trajectories", "artefact_version": "1.0.0", **attrs}
        )


def gmm_files(out: Path, n: int, rng: np.random.Generator) -> None:
    # Stored in float32 (as a PyTorch export might be); the scores are those of the stored
    # positions, so they are exact for the data as written.
    x = np.stack([sample(t, n, rng) for t in TIMES]).astype(np.float32).astype(np.float64)
    pairs = [score_and_divergence(t, xt) for t, xt in zip(TIMES, x, strict=True)]
    score = np.stack([s for s, _ in pairs])
    divergence = np.stack([d for _, d in pairs])
    common = {
        "time": (("time",), np.array(TIMES)),
        "positions": (("time", "particle", "dim"), x.astype(np.float32)),
    }
    attrs = {"problem_id": "vp-gmm-2d", "producer": "numpy closed form"}
    dims3 = ("time", "particle", "dim")
    write(
        out / "gmm_exact.nc",
        {
            **common,
            "score": (dims3, score),
            "score_divergence": (("time", "particle"), divergence),
        },
        attrs,
    )
    write(out / "gmm_score13.nc", {**common, "score": (dims3, 1.3 * score)}, attrs)
    write(out / "gmm_no_divergence.nc", {**common, "score": (dims3, score)}, attrs)
    half = n // 2
    decoys = np.full((n - half, 2), 8.0) + rng.standard_normal((n - half, 2))
    weights = np.concatenate([np.full(half, 1.0 / half), np.zeros(n - half)])
    write(
        out / "gmm_weighted.nc",
        {
            "time": (("time",), np.array([TIMES[1]])),
            "positions": (dims3, np.concatenate([x[1, :half], decoys])[None]),
            "weights": (("particle",), weights),
        },
        attrs,
    )


def rotation_files(out: Path, n: int, rng: np.random.Generator) -> None:
    x0 = rng.standard_normal((n, 2))
    x0 -= x0.mean(axis=0)
    log_f = -0.5 * np.sum(x0**2, axis=1) - np.log(2.0 * np.pi)
    times = np.linspace(0.0, 1.0, 5)
    rotations = [np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) for a in times]
    rotating = np.stack([x0 @ r.T for r in rotations])
    leaky = np.stack([(1.0 - 0.01 * k) * x0 for k in range(times.size)])
    log_density = np.broadcast_to(log_f, (times.size, n))
    for name, positions in (("rotating", rotating), ("leaky", leaky)):
        write(
            out / f"{name}.nc",
            {
                "time": (("time",), times),
                "positions": (("time", "particle", "dim"), positions),
                "log_density": (("time", "particle"), log_density),
            },
            {"stepper": "rk4", "step_size": 0.25, "producer": f"numpy {name}"},
        )


def main() -> None:
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    rng = np.random.default_rng(20261122)
    gmm_files(out, n, rng)
    rotation_files(out, 256, rng)
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"jax", "jaxlib"})
    if loaded:
        raise SystemExit(f"JAX was imported: {loaded}")
    print("ok")


if __name__ == "__main__":
    main()

"""Deterministic blob method for the homogeneous Landau equation (Carrillo, Hu, Wang, Wu 2020).

The entropy ∫ f log f of an empirical measure f = Σ_k w_k δ_{v_k} is regularised with a
Gaussian mollifier (ε is a *variance*)

    ψ_ε(v) = (2πε)^{−d/2} exp(−|v|²/(2ε)),    E_ε(f) = ∫ f log(ψ_ε * f) = Σ_i w_i log f̃_i,
    f̃_i = Σ_k w_k ψ_ε(v_i − v_k),

and the score in the Landau particle velocity is replaced by the gradient of its first
variation, F = ∇ δE_ε/δf:

    F(v) = ∇Φ(v),  Φ(v) = log(ψ_ε * f)(v) + Σ_k w_k ψ_ε(v − v_k)/f̃_k,
    F_i = F(v_i) = Σ_k w_k ∇ψ_ε(v_i − v_k)/f̃_i + Σ_k w_k ∇ψ_ε(v_i − v_k)/f̃_k,

so that ∇_{v_i} E_ε = w_i F_i. The particles then move by dv_i/dt = −Σ_j w_j A(v_i − v_j)(F_i − F_j)
(:func:`~solvers._landau_kernel.landau_velocity` with s = F), which conserves mass,
momentum and energy and dissipates the regularised entropy exactly (semi-discrete):

    dE_ε/dt = Σ_i w_i F_i·U_i = −½ Σ_{i,j} w_i w_j (F_i − F_j)ᵀ A(v_i − v_j) (F_i − F_j) ≤ 0.

**Cost.** The sums over k are O(N²) work; they run over row blocks of ``block_size`` with
``lax.map`` (O(block_size · N) memory). Per block only r² and ψ are formed per pair; the rest
is one matrix product with the source features (w_k, w_k v_k) or (w_k/f̃_k, (w_k/f̃_k) v_k),
using Σ_k c_k ψ_ik (v_i − v_k) = v_i Σ_k c_k ψ_ik − Σ_k c_k ψ_ik v_k on positions centred at
their mean (relative round-off ≈ ε_mach |v_i|/√ε, ~1e−14 in the tests).

**Initialisation** (Carrillo et al.'s set-up, MATH.md §2.3): particles at the centres of a
uniform grid of n^d cells of side h = 2L/n on c + [−L, L]^d with weights w_i = h^d f₀(v_i);
mollifier variance ε = 0.64 h^{1.98}. The density is reconstructed as
f̃(v) = Σ_i w_i ψ_ε(v − v_i).

References
----------
.. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, "A particle method for the homogeneous Landau
   equation", J. Comput. Phys. X 7 (2020) 100066; arXiv:1910.03080.
.. [2] J. A. Carrillo, K. Craig, F. S. Patacchini, "A blob method for diffusion", Calc. Var.
   PDE 58 (2019) 53 (the regularised entropy).
.. [3] V. Ilin, J. Hu, Z. Wang, arXiv:2405.10392 (2024) (blob method as a baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from ._landau_kernel import LandauKernel, Method, landau_velocity
from ._landau_particles import (
    AbstractParticleStepper,
    AbstractScoreProvider,
    ForwardEuler,
    ParticleTrajectory,
    transport_particles,
)

_DEFAULT_BLOCK = 256


def default_blob_epsilon(h: float) -> float:
    """ε = 0.64 h^{1.98}, the mollifier variance of Carrillo et al.'s 2D set-up (MATH.md §2.3)."""
    return 0.64 * float(h) ** 1.98


def _check_ensemble(v: Array, w: Array) -> None:
    if jnp.ndim(v) != 2:
        raise ValueError(
            f"v must have shape (N, d), got {jnp.shape(v)}; batch ensembles with jax.vmap"
        )
    if jnp.shape(w) != jnp.shape(v)[:1]:
        raise ValueError(f"w must have shape ({jnp.shape(v)[0]},), got {jnp.shape(w)}")
    if jnp.result_type(v, w) != jnp.float64:
        raise ValueError(
            f"inputs must be float64 (switch on JAX x64 mode), got {jnp.result_type(v, w)}"
        )


def _gaussian_sums(x: Array, v: Array, feats: Array, eps: Array, block_size: int) -> Array:
    """S_i = Σ_k ψ_ε(x_i − v_k) F_k for all rows, blocked: shape (M, n_f)."""
    m, d = x.shape
    bs = min(block_size, m)
    n_blocks = -(-m // bs)
    xp = jnp.pad(x, ((0, n_blocks * bs - m), (0, 0))).reshape(n_blocks, bs, d)
    vt = v.T
    norm = (2.0 * jnp.pi * eps) ** (-0.5 * d)

    def block(xb: Array) -> Array:
        r2 = sum((xb[:, k : k + 1] - vt[k : k + 1, :]) ** 2 for k in range(d))
        return jnp.exp(-0.5 / eps * r2) @ feats

    return norm * lax.map(block, xp).reshape(n_blocks * bs, -1)[:m]


def _first_moments(x: Array, sums: Array) -> tuple[Array, Array]:
    """(Σ c ψ, Σ c ψ (x − v)) from sums of (c, c v)."""
    return sums[:, 0], x * sums[:, :1] - sums[:, 1:]


def _features(c: Array, v: Array) -> Array:
    return jnp.concatenate([c[:, None], c[:, None] * v], axis=1)


def _blob_parts(v, w, eps, block_size):
    """Centred positions, f̃_i and F_i."""
    vc = v - jnp.mean(v, axis=0)
    f_tilde, g = _first_moments(vc, _gaussian_sums(vc, vc, _features(w, vc), eps, block_size))
    c = w / f_tilde
    _, h = _first_moments(vc, _gaussian_sums(vc, vc, _features(c, vc), eps, block_size))
    score = -(g / f_tilde[:, None] + h) / eps
    return vc, f_tilde, score


@eqx.filter_jit
def blob_density(
    x: Float[Array, "M d"],
    v: Float[Array, "N d"],
    w: Float[Array, " N"],
    epsilon: Float[Array, ""] | float,
    *,
    block_size: int = _DEFAULT_BLOCK,
) -> Float[Array, " M"]:
    r"""Blob reconstruction f̃(x) = Σ_i w_i ψ_ε(x − v_i) at the points x.

    Parameters
    ----------
    x : array (M, d)
        Evaluation points.
    v, w : arrays (N, d), (N,)
        Particles and weights.
    epsilon : float
        Mollifier variance ε > 0.
    block_size : int, default 256
        Rows per block (memory O(block_size · N)).

    Returns
    -------
    array (M,)

    References
    ----------
    .. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """
    _check_ensemble(v, w)
    if jnp.ndim(x) != 2 or jnp.shape(x)[1] != jnp.shape(v)[1]:
        raise ValueError(f"x must have shape (M, {jnp.shape(v)[1]}), got {jnp.shape(x)}")
    centre = jnp.mean(v, axis=0)
    feats = w[:, None]
    return _gaussian_sums(x - centre, v - centre, feats, jnp.asarray(epsilon), block_size)[:, 0]


@eqx.filter_jit
def blob_score(
    v: Float[Array, "N d"],
    w: Float[Array, " N"],
    epsilon: Float[Array, ""] | float,
    *,
    block_size: int = _DEFAULT_BLOCK,
) -> Float[Array, "N d"]:
    r"""Blob score F_i = ∇δE_ε/δf(v_i) (Carrillo et al. 2020; "eq. 3.9" in the reference code).

    .. math::

        F_i = \sum_k w_k \nabla\psi_\varepsilon(v_i - v_k)\Bigl(\frac{1}{\tilde f_i}
              + \frac{1}{\tilde f_k}\Bigr), \qquad
        \tilde f_i = \sum_k w_k \psi_\varepsilon(v_i - v_k),\quad
        \nabla\psi_\varepsilon(z) = -\frac{z}{\varepsilon}\psi_\varepsilon(z)

    Equivalently w_i F_i = ∇_{v_i} E_ε with E_ε = Σ_i w_i log f̃_i. Two blocked O(N²) passes.

    Parameters
    ----------
    v, w : arrays (N, d), (N,)
        Particles and weights.
    epsilon : float
        Mollifier variance ε > 0.
    block_size : int, default 256
        Rows per block.

    Returns
    -------
    array (N, d)

    References
    ----------
    .. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """
    _check_ensemble(v, w)
    return _blob_parts(v, w, jnp.asarray(epsilon), block_size)[2]


@eqx.filter_jit
def blob_entropy(
    v: Float[Array, "N d"],
    w: Float[Array, " N"],
    epsilon: Float[Array, ""] | float,
    *,
    block_size: int = _DEFAULT_BLOCK,
) -> Float[Array, ""]:
    r"""Regularised entropy E_ε = ∫ f log(ψ_ε * f) = Σ_i w_i log f̃_i of the particle measure.

    References
    ----------
    .. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """
    _check_ensemble(v, w)
    vc = v - jnp.mean(v, axis=0)
    f_tilde = _gaussian_sums(vc, vc, w[:, None], jnp.asarray(epsilon), block_size)[:, 0]
    return jnp.sum(w * jnp.log(f_tilde))


@eqx.filter_jit
def blob_entropy_rate(
    kernel: LandauKernel,
    v: Float[Array, "N d"],
    w: Float[Array, " N"],
    epsilon: Float[Array, ""] | float,
    *,
    block_size: int = _DEFAULT_BLOCK,
    method: Method = "auto",
) -> Float[Array, ""]:
    r"""Semi-discrete dissipation dE_ε/dt of the blob method (≤ 0).

    .. math::

        \frac{dE_\varepsilon}{dt} = \sum_i w_i F_i\cdot U_i
        = -\tfrac12 \sum_{i,j} w_i w_j (F_i - F_j)^\top A(v_i - v_j)(F_i - F_j)

    References
    ----------
    .. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """
    _check_ensemble(v, w)
    score = blob_score(v, w, epsilon, block_size=block_size)
    u = landau_velocity(kernel, v, w, score, method=method)
    return jnp.sum(w * jnp.sum((score - jnp.mean(score, axis=0)) * u, axis=-1))


class BlobScore(AbstractScoreProvider):
    """Score provider for the blob method: s_i = F_i computed from the particles themselves.

    The Jacobian (for the log-density update) is that of the field F(x) = ∇Φ(x) in x with the
    particles held fixed, by ``jax.jacfwd`` over row blocks.

    Attributes
    ----------
    epsilon : float
        Mollifier variance ε (see :func:`default_blob_epsilon`).
    block_size : int, default 256
        Rows per block of the O(N²) sums.
    """

    epsilon: float = eqx.field(static=True)
    block_size: int = eqx.field(static=True, default=_DEFAULT_BLOCK)

    def __check_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError(f"epsilon must be positive, got {self.epsilon}")

    def scores(self, t, v, w):
        return blob_score(v, w, self.epsilon, block_size=self.block_size)

    def scores_and_jacobians(self, t, v, w):
        eps = jnp.asarray(self.epsilon, dtype=v.dtype)
        vc, f_tilde, score = _blob_parts(v, w, eps, self.block_size)
        feats = jnp.concatenate([_features(w, vc), _features(w / f_tilde, vc)], axis=1)
        d = v.shape[1]

        def field(x: Array) -> Array:
            psi = jnp.exp(-0.5 / eps * jnp.sum((x - vc) ** 2, axis=-1))
            sums = (2.0 * jnp.pi * eps) ** (-0.5 * d) * (psi @ feats)
            g = x * sums[0] - sums[1 : d + 1]
            h = x * sums[d + 1] - sums[d + 2 :]
            return -(g / sums[0] + h) / eps

        n = v.shape[0]
        bs = min(self.block_size, n)
        n_blocks = -(-n // bs)
        xp = jnp.pad(vc, ((0, n_blocks * bs - n), (0, 0))).reshape(n_blocks, bs, d)
        jac = lax.map(jax.vmap(jax.jacfwd(field)), xp).reshape(n_blocks * bs, d, d)[:n]
        return score, jac

    def parameters(self) -> dict[str, Any]:
        return {"provider": "blob", "epsilon": float(self.epsilon), "mollifier": "gaussian"}


# -- grid initialisation and the full solver ------------------------------------------------


def cell_centred_grid(
    n_per_dim: int, half_width: float, dim: int, centre: Sequence[float] | None = None
) -> tuple[np.ndarray, float]:
    """Centres of the n^d cells of side h = 2L/n tiling c + [−L, L]^d ('ij' order).

    Returns
    -------
    points : numpy array (n^d, d)
    h : float
    """
    if int(n_per_dim) != n_per_dim or n_per_dim < 1:
        raise ValueError(f"n_per_dim must be a positive integer, got {n_per_dim}")
    if not (math.isfinite(half_width) and half_width > 0):
        raise ValueError(f"half_width must be positive, got {half_width}")
    c = np.zeros(dim) if centre is None else np.asarray(centre, dtype=float)
    if c.shape != (dim,):
        raise ValueError(f"centre must have shape ({dim},), got {c.shape}")
    h = 2.0 * half_width / n_per_dim
    axis = -half_width + h * (np.arange(n_per_dim) + 0.5)
    mesh = np.meshgrid(*([axis] * dim), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1) + c, h


def blob_initial_particles(
    density_fn: Callable[[Float[Array, " d"]], Float[Array, ""]],
    *,
    n_per_dim: int,
    half_width: float,
    dim: int,
    centre: Sequence[float] | None = None,
    drop_below: float = 0.0,
) -> tuple[Float[Array, "N d"], Float[Array, " N"], float]:
    """Cell-centred particles with weights w_i = h^d f₀(v_i) (Carrillo et al. 2020, §4).

    Parameters
    ----------
    density_fn : callable
        f₀(v) for one v of shape ``(d,)`` (vmapped here).
    n_per_dim, half_width, dim, centre
        The grid c + [−L, L]^d with n cells per dimension (:func:`cell_centred_grid`).
    drop_below : float, default 0
        Drop cells with w_i < drop_below · max_j w_j (0 keeps every cell). Not jittable
        (the particle count depends on the data).

    Returns
    -------
    v : array (N, d)
    w : array (N,)
    h : float
        Cell side.
    """
    points, h = cell_centred_grid(n_per_dim, half_width, dim, centre)
    v = jnp.asarray(points)
    w = h**dim * jax.vmap(density_fn)(v)
    if drop_below > 0:
        keep = np.asarray(w >= drop_below * jnp.max(w))
        v, w = v[keep], w[keep]
    return v, w, h


class BlobConfig(eqx.Module):
    """Parameters of a blob-method run (frozen; stored with the result).

    Attributes
    ----------
    n_per_dim : int
        Cells per dimension N_v (N = N_v^d particles before dropping).
    half_width : float
        L: the grid tiles centre + [−L, L]^d.
    dt : float
        Time step Δt.
    centre : tuple of float or None
        Grid centre c (default the origin).
    epsilon : float or None
        Mollifier variance; None gives 0.64 h^{1.98}.
    stepper : AbstractParticleStepper, default ForwardEuler()
        Time integrator (Carrillo et al. use forward Euler).
    drop_below : float, default 0
        Relative weight below which cells are dropped.
    block_size : int, default 256
        Rows per block of the O(N²) blob sums (the Landau kernel has its own block_size).
    """

    n_per_dim: int = eqx.field(static=True)
    half_width: float = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    centre: tuple[float, ...] | None = eqx.field(static=True, default=None)
    epsilon: float | None = eqx.field(static=True, default=None)
    stepper: AbstractParticleStepper = eqx.field(static=True, default=ForwardEuler())
    drop_below: float = eqx.field(static=True, default=0.0)
    block_size: int = eqx.field(static=True, default=_DEFAULT_BLOCK)

    @property
    def h(self) -> float:
        """Cell side 2L/N_v."""
        return 2.0 * self.half_width / self.n_per_dim

    def resolved_epsilon(self) -> float:
        """ε, the default 0.64 h^{1.98} if none was given."""
        return default_blob_epsilon(self.h) if self.epsilon is None else float(self.epsilon)

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters, with ε resolved."""
        return {
            "method": "blob",
            "mollifier": "gaussian",
            "n_per_dim": int(self.n_per_dim),
            "half_width": float(self.half_width),
            "centre": None if self.centre is None else [float(c) for c in self.centre],
            "h": self.h,
            "epsilon": self.resolved_epsilon(),
            "epsilon_rule": "0.64 h^1.98" if self.epsilon is None else "given",
            "dt": float(self.dt),
            "stepper": self.stepper.name,
            "order": self.stepper.order,
            "drop_below": float(self.drop_below),
            "block_size": int(self.block_size),
        }


class BlobSolution(eqx.Module):
    """A blob-method run: particle trajectory, reconstructed densities, regularised entropy.

    Attributes
    ----------
    trajectory : ParticleTrajectory
        Positions (n_save, N, d), weights, momentum/second-moment/entropy-rate diagnostics.
    grid : array (M, d)
        Points where the density was reconstructed.
    density : array (n_save, M)
        f̃(t, x) = Σ_i w_i ψ_ε(x − V_i(t)).
    regularised_entropy : array (n_save,)
        E_ε = Σ_i w_i log f̃_i at the save times.
    config : BlobConfig
    kernel : LandauKernel
    problem_id : str or None
        Recorded by :meth:`parameters` when given.
    """

    trajectory: ParticleTrajectory
    grid: Array
    density: Array
    regularised_entropy: Array
    config: BlobConfig = eqx.field(static=True)
    kernel: LandauKernel = eqx.field(static=True)
    problem_id: str | None = eqx.field(static=True, default=None)

    def parameters(self) -> dict[str, Any]:
        """Config, kernel, particle count, save times and grid extent (JSON-serialisable)."""
        out: dict[str, Any] = {} if self.problem_id is None else {"problem_id": self.problem_id}
        out.update(self.config.parameters())
        grid = np.asarray(self.grid)
        out.update(
            gamma=float(self.kernel.gamma),
            C_gamma=float(self.kernel.C_gamma),
            n_particles=int(self.trajectory.weights.shape[0]),
            times=[float(t) for t in np.asarray(self.trajectory.times)],
            n_grid_points=int(grid.shape[0]),
            grid_min=[float(c) for c in grid.min(axis=0)],
            grid_max=[float(c) for c in grid.max(axis=0)],
        )
        return out


def solve_blob(
    initial_density: Callable[[Float[Array, " d"]], Float[Array, ""]],
    kernel: LandauKernel,
    config: BlobConfig,
    *,
    dim: int,
    save_times: Sequence[float],
    t0: float = 0.0,
    grid: Float[Array, "M d"] | None = None,
    method: Method = "auto",
    problem_id: str | None = None,
) -> BlobSolution:
    r"""Run the blob method from f₀ on a cell-centred grid and reconstruct the density.

    Particles and weights from :func:`blob_initial_particles`; dv_i/dt = U_i with s = F
    (:class:`BlobScore`) by :func:`~solvers._landau_particles.transport_particles`; at each
    save time f̃ on ``grid`` (default the particle mesh) and E_ε.

    Parameters
    ----------
    initial_density : callable
        f₀(v) for one v of shape ``(d,)``.
    kernel : LandauKernel
        Collision kernel.
    config : BlobConfig
        Grid, ε, Δt, stepper.
    dim : int
        d.
    save_times : sequence of float
        Increasing times on the grid t₀ + nΔt.
    t0 : float, default 0
        Initial time.
    grid : array (M, d), optional
        Reconstruction points.
    method : {"auto", "blocked", "moments", "naive"}
        Kernel evaluation method.
    problem_id : str, optional
        Recorded in the solution's parameters.

    Returns
    -------
    BlobSolution

    References
    ----------
    .. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """
    v0, w, _ = blob_initial_particles(
        initial_density,
        n_per_dim=config.n_per_dim,
        half_width=config.half_width,
        dim=dim,
        centre=config.centre,
        drop_below=config.drop_below,
    )
    eps = config.resolved_epsilon()
    if grid is None:
        grid = jnp.asarray(
            cell_centred_grid(config.n_per_dim, config.half_width, dim, config.centre)[0]
        )
    provider = BlobScore(epsilon=eps, block_size=config.block_size)
    trajectory = transport_particles(
        config.stepper,
        provider,
        kernel,
        v0,
        w,
        t0=t0,
        dt=config.dt,
        save_times=save_times,
        method=method,
    )
    density, entropy = _reconstruct(
        trajectory.positions, w, jnp.asarray(grid), eps, config.block_size
    )
    return BlobSolution(
        trajectory=trajectory,
        grid=jnp.asarray(grid),
        density=density,
        regularised_entropy=entropy,
        config=config,
        kernel=kernel,
        problem_id=problem_id,
    )


@eqx.filter_jit
def _reconstruct(positions, w, grid, eps, block_size):
    def one(v):
        return (
            blob_density(grid, v, w, eps, block_size=block_size),
            blob_entropy(v, w, eps, block_size=block_size),
        )

    return lax.map(one, positions)

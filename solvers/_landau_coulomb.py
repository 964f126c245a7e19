"""Landau equation with the 2D Coulomb kernel and a two-Maxwellian initial datum.

    ∂_t f = ∇·∫ A(v − v_*) f f_* (∇log f − ∇_* log f_*) dv_*,
    A(z) = (1/16) |z|^{−3} (|z|² I − z zᵀ)        (γ = −3, C_γ = 1/16, d = 2),
    f₀(v) = (1/(4π)) (e^{−|v−u₁|²/2} + e^{−|v−u₂|²/2}),  u₁ = (−2, 1), u₂ = (0, −1),

on t ∈ [0, 40] — Example 3 ("Coulomb") of Huang & Wang's score-based particle method
(their code: N = 120², Δt = 0.1, T = 40; MATH.md §2.5). No closed-form solution is known for
t > 0; f₀ is exact (density, score, sampler), and the collision invariants are

    mass ∫ f = 1,  momentum ∫ v f = ½(u₁ + u₂) = (−1, 0),
    energy ½∫|v|² f = ½(d + ½(|u₁|² + |u₂|²)) = 5/2.

The numerical reference (:meth:`LandauCoulombProblem.reference`) is the deterministic blob
method of Carrillo, Hu, Wang, Wu (2020) (:mod:`solvers._blob`): a cell-centred grid of
N_v² particles on c + [−L, L]² (default c = the mean velocity (−1, 0), L = 7, so the mass
outside is ~1e−9), mollifier variance ε = 0.64 h^{1.98}, and Heun's method (order 2) with
Δt = 0.1 by default. The semi-discrete scheme conserves mass and momentum exactly and
energy up to the stepper's drift; the reconstructed density f̃ = Σ w_i ψ_ε(· − V_i) is
returned on a grid (default Huang & Wang's plotting window [−10, 10]², 120² cell centres).

**Default certification times** (1, 5, 10, 20, 40): early relaxation, the middle of the
window, and its end (Huang & Wang plot up to T = 40), avoiding t = 0 where f₀ is exact.

References
----------
.. [1] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053 (Coulomb example).
.. [2] J. A. Carrillo, J. Hu, L. Wang, J. Wu, "A particle method for the homogeneous Landau
   equation", J. Comput. Phys. X 7 (2020) 100066 (blob method).
.. [3] V. Ilin, J. Hu, Z. Wang, arXiv:2405.10392 (2024).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._blob import BlobConfig, BlobSolution, cell_centred_grid, solve_blob
from ._landau_kernel import LandauKernel, Method
from ._landau_particles import AbstractParticleStepper, Heun
from ._landau_problem import AbstractLandauProblem
from ._problem import ProblemError


class LandauCoulombProblem(AbstractLandauProblem):
    r"""2D Coulomb Landau problem with a two-Maxwellian initial datum (Huang & Wang 2025).

    .. math::

        A(z) = C_\gamma |z|^{\gamma}(|z|^2 I - z z^\top),\quad \gamma = -3,\ C_\gamma = 1/16,
        \qquad f_0 = \tfrac{1}{4\pi}\bigl(e^{-|v-u_1|^2/2} + e^{-|v-u_2|^2/2}\bigr)

    Build with :func:`landau_coulomb_2d`.

    Attributes
    ----------
    problem_id : str
    dim : int
        2 (the initial datum is two unit-variance Maxwellians in R^d).
    gamma, C_gamma : float
        Kernel power γ = −3 and constant C_γ = 1/16.
    u1, u2 : tuple of float
        Maxwellian centres (−2, 1) and (0, −1).
    t_min, t_max : float
        [0, 40].
    default_times : tuple of float
        (1, 5, 10, 20, 40).

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    .. [2] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """

    problem_id: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    gamma: float = eqx.field(static=True)
    C_gamma: float = eqx.field(static=True)
    u1: tuple[float, ...] = eqx.field(static=True)
    u2: tuple[float, ...] = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)

    def __check_init__(self) -> None:
        if len(self.u1) != self.dim or len(self.u2) != self.dim:
            raise ProblemError(f"{self.problem_id}: u1 and u2 must have {self.dim} entries")
        if not (math.isfinite(self.C_gamma) and self.C_gamma > 0):
            raise ProblemError(f"{self.problem_id}: C_gamma must be positive, got {self.C_gamma}")
        if not self.t_min < self.t_max:
            raise ProblemError(f"{self.problem_id}: need t_min < t_max")
        bad = [t for t in self.default_times if not self.t_min <= t <= self.t_max]
        if not self.default_times or bad:
            raise ProblemError(f"{self.problem_id}: default_times must lie in the window")

    @property
    def kernel(self) -> LandauKernel:
        """A(z) = C_γ |z|^γ (|z|² I − z zᵀ)."""
        return LandauKernel(gamma=self.gamma, C_gamma=self.C_gamma)

    def _centres(self) -> Array:
        return jnp.asarray([self.u1, self.u2], dtype=float)

    def _check_x(self, x: Array) -> Array:
        x = jnp.asarray(x)
        if x.shape != (self.dim,):
            raise ValueError(
                f"x must have shape ({self.dim},), got {x.shape}; functions act on one sample, "
                "batch with jax.vmap"
            )
        return x

    # -- exact initial datum ------------------------------------------------------------------

    def initial_log_density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """log f₀(x) = logsumexp_k(−|x − u_k|²/2) − log 2 − (d/2) log 2π."""
        x = self._check_x(x)
        r2 = jnp.sum((x - self._centres()) ** 2, axis=-1)
        return jax.nn.logsumexp(-0.5 * r2) - jnp.log(2.0) - 0.5 * self.dim * jnp.log(2 * jnp.pi)

    def initial_density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """f₀(x)."""
        return jnp.exp(self.initial_log_density(x))

    def initial_score(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """∇log f₀(x) = Σ_k π_k(x)(u_k − x), π_k = softmax_k(−|x − u_k|²/2)."""
        x = self._check_x(x)
        centres = self._centres()
        resp = jax.nn.softmax(-0.5 * jnp.sum((x - centres) ** 2, axis=-1))
        return resp @ centres - x

    def sample_initial(self, n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` iid samples of f₀: a fair choice of u_k plus a standard normal vector."""
        label_key, normal_key = jax.random.split(key)
        labels = jax.random.bernoulli(label_key, 0.5, (int(n),))
        z = jax.random.normal(normal_key, (int(n), self.dim), dtype=jnp.result_type(float))
        centres = self._centres()
        return jnp.where(labels[:, None], centres[1], centres[0]) + z

    # -- invariants -----------------------------------------------------------------------

    def mass(self) -> float:
        """∫ f = 1."""
        return 1.0

    def momentum(self) -> np.ndarray:
        """∫ v f = ½(u₁ + u₂) = (−1, 0)."""
        return 0.5 * (np.asarray(self.u1) + np.asarray(self.u2))

    def energy(self) -> float:
        """½∫|v|² f = ½(d + ½(|u₁|² + |u₂|²)) = 5/2."""
        u1, u2 = np.asarray(self.u1), np.asarray(self.u2)
        return 0.5 * (self.dim + 0.5 * (u1 @ u1 + u2 @ u2))

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``problem_json``)."""
        return {
            "id": self.problem_id,
            "equation": "landau",
            "solution": "numerical (blob method reference)",
            "dim": int(self.dim),
            "gamma": float(self.gamma),
            "C_gamma": float(self.C_gamma),
            "kernel": "A(z) = C_gamma |z|^gamma (|z|^2 I - z z^T)",
            "initial": "(2 pi)^(-d/2) (exp(-|v-u1|^2/2) + exp(-|v-u2|^2/2)) / 2",
            "u1": [float(c) for c in self.u1],
            "u2": [float(c) for c in self.u2],
            "mass": self.mass(),
            "momentum": [float(c) for c in self.momentum()],
            "energy": float(self.energy()),
            "t_min": float(self.t_min),
            "t_max": float(self.t_max),
            "default_times": [float(t) for t in self.default_times],
        }

    # -- numerical reference ----------------------------------------------------------------

    def reference(
        self,
        times: Sequence[float] | None = None,
        *,
        n_per_dim: int,
        half_width: float = 7.0,
        centre: Sequence[float] | None = None,
        dt: float = 0.1,
        epsilon: float | None = None,
        stepper: AbstractParticleStepper | None = None,
        drop_below: float = 0.0,
        grid_per_dim: int = 120,
        grid_half_width: float = 10.0,
        block_size: int = 256,
        method: Method = "auto",
    ) -> BlobSolution:
        r"""Blob-method solution at ``times`` (Carrillo et al. 2020).

        Parameters
        ----------
        times : sequence of float, optional
            Increasing save times in [0, 40] on the grid nΔt; default ``default_times``.
        n_per_dim : int
            N_v; N = N_v² particles.
        half_width : float, default 7
            L of the particle grid c + [−L, L]².
        centre : sequence of float, optional
            c; default the mean velocity ½(u₁ + u₂).
        dt : float, default 0.1
            Δt (Huang & Wang's step).
        epsilon : float, optional
            Mollifier variance; default 0.64 h^{1.98}, h = 2L/N_v.
        stepper : AbstractParticleStepper, optional
            Default :class:`~solvers._landau_particles.Heun` (order 2).
        drop_below : float, default 0
            Drop cells with w_i < drop_below · max w.
        grid_per_dim, grid_half_width : int, float
            Density grid: cell centres of [−10, 10]², 120² (Huang & Wang's plotting grid).
        block_size : int, default 256
            Rows per block of the O(N²) sums.
        method : {"auto", "blocked", "naive"}
            Kernel evaluation method.

        Returns
        -------
        BlobSolution
            ``trajectory`` (particles, weights, diagnostics), ``grid``, ``density`` of shape
            (n_times, grid_per_dim²), ``regularised_entropy``; ``parameters()`` records
            everything (add this problem's ``parameters()`` for the equation).
        """
        times = tuple(self.default_times if times is None else times)
        if any(not self.t_min <= t <= self.t_max for t in times):
            raise ProblemError(f"{self.problem_id}: times must lie in [{self.t_min}, {self.t_max}]")
        config = BlobConfig(
            n_per_dim=n_per_dim,
            half_width=half_width,
            dt=dt,
            centre=tuple(float(c) for c in (self.momentum() if centre is None else centre)),
            epsilon=epsilon,
            stepper=Heun() if stepper is None else stepper,
            drop_below=drop_below,
            block_size=block_size,
        )
        grid = jnp.asarray(cell_centred_grid(grid_per_dim, grid_half_width, self.dim)[0])
        return solve_blob(
            self.initial_density,
            self.kernel,
            config,
            dim=self.dim,
            save_times=times,
            t0=self.t_min,
            grid=grid,
            method=method,
            problem_id=self.problem_id,
        )


def landau_coulomb_2d() -> LandauCoulombProblem:
    """2D Coulomb test (Huang & Wang 2025, Example 3): γ = −3, C_γ = 1/16, t ∈ [0, 40]."""
    return LandauCoulombProblem(
        problem_id="landau-coulomb-2d",
        dim=2,
        gamma=-3.0,
        C_gamma=1 / 16,
        u1=(-2.0, 1.0),
        u2=(0.0, -1.0),
        t_min=0.0,
        t_max=40.0,
        default_times=(1.0, 5.0, 10.0, 20.0, 40.0),
    )

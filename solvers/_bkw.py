"""BKW exact solution of the spatially homogeneous Landau equation for Maxwell molecules.

For the kernel A(z) = B (|z|² I − z zᵀ) (γ = 0) in R^d the Landau equation has the exact
solution (Bobylev; Krook–Wu)

    f(t, v) = (2πK)^{−d/2} exp(−|v|²/(2K)) (P + Q|v|²),
    K(t) = 1 − C exp(−2λt),  λ = B(d−1),  P = ((d+2)K − d)/(2K),  Q = (1−K)/(2K²),

a density iff d/(d+2) ≤ K ≤ 1. Mass 1, mean 0, E[v vᵀ] = I, and f = P·(χ²_d radial law) +
(1 − P)·(χ²_{d+2} radial law) on r²/K (P + QdK = 1). Because A * f and A * ∇f are explicit for
any isotropic f with E[v vᵀ] = I, the Landau dynamics of f reduces to the linear
Fokker–Planck equation ∂_t f = λ(Δf + ∇·(v f)), and the Landau particle velocity is
U(v) = −λ(s(v) + v) with s = ∇log f.

Exact derived quantities (all single-sample; batch with ``jax.vmap``):

* score s = v φ(u), φ(u) = −1/K + 2Q/(P + Qu), u = |v|²; ∇·s = d φ(u) − 4uQ²/(P + Qu)²;
* Fisher information I(t) = E|s|², entropy H(t) = ∫ f log f, dH/dt = −λ(I − d);
* characteristics X(t; v₀) of dX/dt = U(X) (radial), and d/dt log f(t, X_t) = λ(∇·s + d).

**Radial quadrature.** With x = |v|²/(2K) ~ Gamma(d/2) under the Gaussian factor,
E_f[g(|v|²)] = E_{x∼Γ(d/2)}[(P + 2QKx) g(2Kx)]. The integrand may be nearly singular at
x ≈ b = P/(2QK) → 0 (P → 0: 2D at t = 0, 3D at t = 5.5 has P = 6e−4) and log-singular for
the entropy at P = 0, so it is integrated by fixed composite 16-point Gauss–Legendre: in
τ = log x on [−41.4·2/d, 0] (unit panels; the poles of the integrand lie ≥ π off the real τ
axis, so each panel converges like 6^{−32}) and in x on [1, x_max] (panels of 2). It is
jittable and agrees with adaptive scipy quadrature to ≤ 1e−15 relative (test tolerance 1e−12).

**Characteristics in closed form.** The flow is radial and transports mass, so the mass
inside the sphere through X_t is conserved: F_t(|X_t|) = F_{t₀}(|v₀|) with the radial CDF
F_t(r) = P γ̃(d/2, r²/(2K)) + (1 − P) γ̃(d/2 + 1, r²/(2K)) (γ̃ the regularised lower incomplete
gamma function). |X_t| is found by a safeguarded Newton iteration on log r²; the direction is
unchanged. It agrees with a diffrax Dopri8 solution (rtol = atol = 1e−12) of
dr/dt = −λ r (φ(r², t) + 1) to ~2e−13 relative (tests/validation).

References
----------
.. [1] A. V. Bobylev, "Exact solutions of the Boltzmann equation", Sov. Phys. Dokl. 20
   (1975) 822–824; M. Krook, T. T. Wu, Phys. Rev. Lett. 36 (1976) 1107–1109.
.. [2] J. A. Carrillo, J. Hu, L. Wang, J. Wu, "A particle method for the homogeneous Landau
   equation", J. Comput. Phys. X 7 (2020) 100066 (BKW test for Landau).
.. [3] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import gammainc, gammaincc, gammaln
from jaxtyping import Array, Float, PRNGKeyArray

from ._landau_kernel import LandauKernel
from ._landau_problem import AbstractExactLandauProblem
from ._problem import AbstractFokkerPlanckDynamics, ProblemError

_GL_ORDER = 16
_NEWTON_STEPS = 40


@functools.cache
def _radial_rule(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x_k and weights ω_k with Σ ω_k h(x_k) ≈ ∫ x^{a−1} e^{−x} h(x) dx / Γ(a), a = d/2."""
    a = d / 2
    t, wt = np.polynomial.legendre.leggauss(_GL_ORDER)
    # x < 1 in τ = log x down to x^a = e^{−41.4} ≈ 1e−18; x > 1 up to where x^{a−1} e^{−x} < 1e−25
    tau_lo = -math.ceil(41.4 / a)
    x_hi = 2 * math.ceil(max(100.0, 4 * a + 60) / 2)
    lo = np.arange(tau_lo, 0.0)
    tau = (lo[:, None] + 0.5 + 0.5 * t[None, :]).ravel()
    w_tau = np.tile(0.5 * wt, len(lo))
    lo_x = np.arange(1.0, x_hi, 2.0)
    x_lin = (lo_x[:, None] + 1.0 + t[None, :]).ravel()
    w_lin = np.tile(wt, len(lo_x))
    x = np.concatenate([np.exp(tau), x_lin])
    # Jacobian dx = x dτ on the first part
    log_w = np.concatenate([np.log(w_tau) + a * tau, np.log(w_lin) + (a - 1) * np.log(x_lin)])
    weights = np.exp(log_w - x - math.lgamma(a))
    return x, weights


class LandauBKWProblem(AbstractExactLandauProblem, AbstractFokkerPlanckDynamics):
    r"""The BKW solution of the Landau equation with Maxwell molecules, as a problem.

    .. math::

        f(t, v) = (2\pi K)^{-d/2} e^{-|v|^2/(2K)} (P + Q|v|^2),\quad
        K = 1 - C e^{-2\lambda t},\ \lambda = B(d-1)

    The marginals solve ∂_t f = λ(Δf + ∇·(v f)): drift f(t, v) = −λ v, diffusion √(2λ).
    As a Landau problem the kernel is γ = 0, C_γ = B, the initial datum is f(t_min, ·), and
    the exact velocity, characteristics and entropy rate are known.
    Build with :func:`landau_bkw_2d` / :func:`landau_bkw_3d`.

    Attributes
    ----------
    problem_id : str
        Registry id.
    dim : int
        d ≥ 2.
    B : float
        Collision constant in A(z) = B(|z|² I − z zᵀ).
    C_bkw : float
        C in K(t) = 1 − C e^{−2λt}.
    t_min, t_max : float
        Time window; K must lie in [d/(d+2), 1] on it (``ProblemError`` otherwise).
    default_times : tuple of float
        Certification times inside the window.

    References
    ----------
    .. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    .. [2] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    """

    problem_id: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    B: float = eqx.field(static=True)
    C_bkw: float = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)

    def __check_init__(self) -> None:
        d = self.dim
        if int(d) != d or d < 2:
            raise ProblemError(f"{self.problem_id}: dim must be an integer ≥ 2, got {d}")
        if not (math.isfinite(self.B) and self.B > 0):
            raise ProblemError(f"{self.problem_id}: B must be positive, got {self.B}")
        if not (math.isfinite(self.C_bkw) and self.C_bkw >= 0):
            raise ProblemError(f"{self.problem_id}: C_bkw must be ≥ 0, got {self.C_bkw}")
        if not self.t_min < self.t_max:
            raise ProblemError(
                f"{self.problem_id}: need t_min < t_max, got {self.t_min}, {self.t_max}"
            )
        lam = self.B * (d - 1)
        k_min = 1.0 - self.C_bkw * math.exp(-2.0 * lam * self.t_min)  # K increases with t
        if k_min < d / (d + 2):
            raise ProblemError(
                f"{self.problem_id}: K(t_min) = {k_min:.6g} < d/(d+2) = {d / (d + 2):.6g}; "
                "the BKW function is not a density there (start the window later)"
            )
        bad = [t for t in self.default_times if not self.t_min <= t <= self.t_max]
        if not self.default_times or bad:
            raise ProblemError(
                f"{self.problem_id}: default_times must be non-empty and inside "
                f"[{self.t_min}, {self.t_max}], got {self.default_times}"
            )

    # -- coefficients ---------------------------------------------------------------------

    @property
    def rate(self) -> float:
        """λ = B(d − 1): K = 1 − C e^{−2λt}, U = −λ(s + v)."""
        return self.B * (self.dim - 1)

    def coefficients(self, t: Float[Array, ""]) -> tuple[Array, Array, Array]:
        """(K, P, Q) at time t."""
        d = self.dim
        k = 1.0 - self.C_bkw * jnp.exp(-2.0 * self.rate * jnp.asarray(t))
        return k, ((d + 2) * k - d) / (2.0 * k), (1.0 - k) / (2.0 * k**2)

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``problem_json``)."""
        return {
            "id": self.problem_id,
            "equation": "landau",
            "solution": "bkw",
            "dim": int(self.dim),
            "gamma": 0.0,
            "B": float(self.B),
            "C_bkw": float(self.C_bkw),
            "lambda": float(self.rate),
            "kernel": "A(z) = B (|z|^2 I - z z^T)",
            "K": "1 - C_bkw exp(-2 lambda t)",
            "t_min": float(self.t_min),
            "t_max": float(self.t_max),
            "default_times": [float(t) for t in self.default_times],
        }

    # -- Landau problem: kernel, initial datum, invariants -------------------------------

    @property
    def kernel(self) -> LandauKernel:
        """A(z) = B (|z|² I − z zᵀ): Maxwell molecules, γ = 0, C_γ = B."""
        return LandauKernel(gamma=0.0, C_gamma=self.B)

    def sample_initial(self, n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` exact iid samples of f(t_min, ·) (:meth:`sample` at ``t_min``)."""
        return self.sample(jnp.asarray(self.t_min), n, key=key)

    def initial_log_density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """log f(t_min, x)."""
        return self.log_density(jnp.asarray(self.t_min), x)

    def initial_score(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """∇log f(t_min, x)."""
        return self.score(jnp.asarray(self.t_min), x)

    def momentum(self) -> np.ndarray:
        """∫ v f = 0 (f is isotropic)."""
        return np.zeros(self.dim)

    def energy(self) -> float:
        """½∫|v|² f = d/2 at every t (E[v vᵀ] = I)."""
        return 0.5 * self.dim

    # -- exact marginals ------------------------------------------------------------------

    def _check_x(self, x: Array) -> Array:
        x = jnp.asarray(x)
        if x.shape != (self.dim,):
            raise ValueError(
                f"x must have shape ({self.dim},), got {x.shape}; functions act on one sample, "
                "batch with jax.vmap"
            )
        return x

    def _phi(self, t: Array, u: Array) -> Array:
        k, p, q = self.coefficients(t)
        return -1.0 / k + 2.0 * q / (p + q * u)

    def log_density(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        """log f(t, x) = −(d/2) log(2πK) − |x|²/(2K) + log(P + Q|x|²)."""
        x = self._check_x(x)
        k, p, q = self.coefficients(t)
        u = jnp.sum(x * x)
        return -0.5 * self.dim * jnp.log(2 * jnp.pi * k) - u / (2 * k) + jnp.log(p + q * u)

    def density(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        """f(t, x)."""
        return jnp.exp(self.log_density(t, x))

    def score(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """s = ∇log f = x φ(|x|²), φ(u) = −1/K + 2Q/(P + Qu)."""
        x = self._check_x(x)
        return x * self._phi(t, jnp.sum(x * x))

    def score_divergence(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        """∇·s = d φ(u) − 4uQ²/(P + Qu)², u = |x|²."""
        x = self._check_x(x)
        _, p, q = self.coefficients(t)
        u = jnp.sum(x * x)
        return self.dim * self._phi(t, u) - 4.0 * u * q**2 / (p + q * u) ** 2

    def sample(self, t: Float[Array, ""], n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` exact iid samples: r²/K ~ χ²_d w.p. P, else χ²_{d+2}; uniform direction.

        A standard normal vector z ∈ R^{d+2} gives the direction z_{1:d}/|z_{1:d}|, independent
        of r²/K = |z_{1:d}|² (χ²_d) or |z|² (χ²_{d+2}); the mixture label is a uniform draw.
        """
        return self._sample(jnp.asarray(t), int(n), key)

    @eqx.filter_jit
    def _sample(self, t: Array, n: int, key: PRNGKeyArray) -> Array:
        d = self.dim
        k, p, _ = self.coefficients(t)
        normal_key, mix_key = jax.random.split(key)
        z = jax.random.normal(normal_key, (n, d + 2), dtype=jnp.result_type(k))
        wide = jax.random.uniform(mix_key, (n,), dtype=jnp.result_type(k)) >= p
        head = jnp.sum(z[:, :d] ** 2, axis=1)
        r2 = head + jnp.where(wide, jnp.sum(z[:, d:] ** 2, axis=1), 0.0)
        return jnp.sqrt(k) * z[:, :d] * jnp.sqrt(r2 / head)[:, None]

    def radial_expectation(self, t: Float[Array, ""], g) -> Float[Array, ""]:
        r"""E_{f_t}[g(|v|²)] by the fixed radial quadrature (module docstring).

        Parameters
        ----------
        t : scalar array
            Time.
        g : callable
            Elementwise function of u = |v|² (array in, same-shape array out).
        """
        x, w = _radial_rule(self.dim)
        k, p, q = self.coefficients(t)
        x = jnp.asarray(x)
        return jnp.sum(jnp.asarray(w) * (p + 2 * q * k * x) * g(2 * k * x))

    def fisher_information(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """I(t) = E|∇log f|² = E[u φ(u)²] (radial quadrature, ~1e−14 relative)."""
        return self._fisher(jnp.asarray(t))

    @eqx.filter_jit
    def _fisher(self, t: Array) -> Array:
        return self.radial_expectation(t, lambda u: u * self._phi(t, u) ** 2)

    def entropy(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """H(t) = ∫ f log f (radial quadrature, ~1e−14 relative); H_∞ = −(d/2)(log 2π + 1)."""
        return self._entropy(jnp.asarray(t))

    @eqx.filter_jit
    def _entropy(self, t: Array) -> Array:
        k, p, q = self.coefficients(t)
        const = -0.5 * self.dim * jnp.log(2 * jnp.pi * k)
        return self.radial_expectation(t, lambda u: const - u / (2 * k) + jnp.log(p + q * u))

    def entropy_rate(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """dH/dt = −λ (I(t) − d) (≤ 0)."""
        return -self.rate * (self.fisher_information(t) - self.dim)

    # -- Fokker–Planck form and exact Lagrangian quantities ------------------------------------

    def drift(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """f(t, x) = −λ x of the equivalent Fokker–Planck equation."""
        return -self.rate * self._check_x(x)

    def diffusion(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """g = √(2λ) (so ½ g² Δ = λ Δ)."""
        return jnp.sqrt(2.0 * self.rate) * jnp.ones_like(jnp.asarray(t, dtype=float))

    def velocity(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """Exact Landau particle velocity U(t, x) = −λ (s(t, x) + x)."""
        return -self.rate * (self.score(t, x) + x)

    def log_density_rate(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        """d/dt log f(t, X_t) = −∇·U = λ (∇·s + d) along a characteristic through x."""
        return self.rate * (self.score_divergence(t, x) + self.dim)

    def _radial_cdf(self, t: Array, z: Array) -> tuple[Array, Array, Array]:
        """(F, 1 − F, z dF/dz) for z = r²/(2K): the χ²_d / χ²_{d+2} mixture."""
        a = 0.5 * self.dim
        _, p, _ = self.coefficients(t)
        cdf = p * gammainc(a, z) + (1 - p) * gammainc(a + 1, z)
        sf = p * gammaincc(a, z) + (1 - p) * gammaincc(a + 1, z)
        log_z = jnp.log(z)
        dens = p * jnp.exp(a * log_z - z - gammaln(a)) + (1 - p) * jnp.exp(
            (a + 1) * log_z - z - gammaln(a + 1)
        )
        return cdf, sf, dens

    def characteristic(
        self, t0: Float[Array, ""], x0: Float[Array, " d"], t1: Float[Array, ""]
    ) -> Float[Array, " d"]:
        """Exact characteristic X(t1) of dX/dt = U(t, X) with X(t0) = x0.

        Solves F_{t1}(|X|) = F_{t0}(|x0|) for the radial CDF (module docstring) by Newton's
        method on log r² with steps capped at 2, in the CDF when F ≤ ½ and in the survival
        function otherwise (relative accuracy in both tails); x0 = 0 stays at 0.
        """
        return self._characteristic(jnp.asarray(t0), self._check_x(x0), jnp.asarray(t1))

    @eqx.filter_jit
    def _characteristic(self, t0: Array, x0: Array, t1: Array) -> Array:
        k0, _, _ = self.coefficients(t0)
        k1, _, _ = self.coefficients(t1)
        r2 = jnp.sum(x0 * x0)
        moving = r2 > 0
        z0 = jnp.where(moving, r2 / (2 * k0), 1.0)
        cdf0, sf0, _ = self._radial_cdf(t0, z0)
        use_cdf = cdf0 <= 0.5
        target = jnp.where(use_cdf, jnp.log(cdf0), jnp.log(sf0))

        def newton(_, log_z):
            z = jnp.exp(log_z)
            cdf, sf, dens = self._radial_cdf(t1, z)
            value = jnp.where(use_cdf, jnp.log(cdf), jnp.log(sf))
            slope = jnp.where(use_cdf, dens / cdf, -dens / sf)
            return log_z - jnp.clip((value - target) / slope, -2.0, 2.0)

        log_z1 = lax.fori_loop(0, _NEWTON_STEPS, newton, jnp.log(z0 * k0 / k1))
        scale = jnp.sqrt(jnp.exp(log_z1) * 2 * k1 / jnp.where(moving, r2, 1.0))
        return jnp.where(moving, x0 * scale, x0)


def landau_bkw_2d() -> LandauBKWProblem:
    """2D BKW test (Carrillo et al. 2020; Huang & Wang 2025): B = 1/16, C = 1/2, t ∈ [0, 5].

    K = 1 − ½ e^{−t/8}; at t = 0, K = ½ and P = 0 (the score is singular at v = 0, and the
    Hyvärinen integrand has infinite variance), so the default times avoid t = 0.
    """
    return LandauBKWProblem(
        problem_id="landau-bkw-2d",
        dim=2,
        B=1 / 16,
        C_bkw=0.5,
        t_min=0.0,
        t_max=5.0,
        default_times=(0.5, 1.0, 2.0, 5.0),
    )


def landau_bkw_3d() -> LandauBKWProblem:
    """3D BKW test (as in Ilin, Hu, Wang's code): B = 1/24, C = 1, t ∈ [5.5, 10.5].

    K = 1 − e^{−t/6} ≥ 3/5 needs t ≥ 6 ln 2.5 ≈ 5.498.
    """
    return LandauBKWProblem(
        problem_id="landau-bkw-3d",
        dim=3,
        B=1 / 24,
        C_bkw=1.0,
        t_min=5.5,
        t_max=10.5,
        default_times=(6.0, 7.0, 8.0, 10.0),
    )

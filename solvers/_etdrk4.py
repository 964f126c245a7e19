r"""ETDRK4: fourth-order exponential time differencing Runge–Kutta for diagonal stiff systems.

For v̂' = L v̂ + N(t, v̂) with a *diagonal* linear part L (Fourier multipliers: −νk² for
diffusion) the scheme of Cox & Matthews (2002) integrates L exactly. With step h,
E = e^{hL}, E₂ = e^{hL/2}:

.. math::

    a &= E_2 v_n + Q N(t_n, v_n), \qquad
    b = E_2 v_n + Q N(t_n + h/2, a), \\
    c &= E_2 a + Q \bigl(2N(t_n + h/2, b) - N(t_n, v_n)\bigr), \\
    v_{n+1} &= E v_n + f_1 N(t_n, v_n) + 2 f_2 \bigl(N(t_n + h/2, a) + N(t_n + h/2, b)\bigr)
              + f_3 N(t_n + h, c),

with z = hL and

.. math::

    Q = h\,\frac{e^{z/2} - 1}{z},\quad
    f_1 = h\,\frac{-4 - z + e^z (4 - 3z + z^2)}{z^3},\quad
    f_2 = h\,\frac{2 + z + e^z (z - 2)}{z^3},\quad
    f_3 = h\,\frac{-4 - 3z - z^2 + e^z (4 - z)}{z^3}.

These suffer catastrophic cancellation for small |z| (and are 0/0 at z = 0), so, following
Kassam & Trefethen (2005), each is evaluated as the mean of its values on the circle of radius
1 around z, g(z) = (1/M) Σ_j g(z + e^{2πi(j−½)/M}) — the trapezoid rule for Cauchy's integral,
exact to round-off for these entire functions (M = 32: the neglected Taylor terms are
O(1/(M+3)!)). For real L the conjugate-symmetric points make the mean real. At z = 0 the
scheme is the classical RK4.

ETDRK4 is fourth order for non-stiff problems; for stiff parabolic problems Hochbruck &
Ostermann (2005) prove an order-reduction bound (to 2 in the worst case, in norms that see the
boundary layers), but for smooth periodic solutions of Burgers/KS/Navier–Stokes order 4 is
observed (Kassam & Trefethen, Fig. 4.1; tests/validation/test_pde_solver_orders.py).

References
----------
.. [1] S. M. Cox, P. C. Matthews, "Exponential time differencing for stiff systems",
   J. Comput. Phys. 176 (2002) 430–455.
.. [2] A.-K. Kassam, L. N. Trefethen, "Fourth-order time-stepping for stiff PDEs", SIAM J.
   Sci. Comput. 26 (2005) 1214–1233.
.. [3] M. Hochbruck, A. Ostermann, "Explicit exponential Runge–Kutta methods for semilinear
   parabolic problems", SIAM J. Numer. Anal. 43 (2005) 1069–1090.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, Inexact

from ._stepping import integrate_to_times

Nonlinear = Callable[[Float[Array, ""], Inexact[Array, "*modes"]], Inexact[Array, "*modes"]]
"""N(t, v̂): the nonlinear part, same shape as the state v̂."""

N_CONTOUR = 32


class ETDRK4Coefficients(eqx.Module):
    """E = e^{hL}, E₂ = e^{hL/2}, Q, f₁, f₂, f₃ for one step size h (module docstring)."""

    exp_full: Inexact[Array, "*modes"]
    exp_half: Inexact[Array, "*modes"]
    q: Inexact[Array, "*modes"]
    f1: Inexact[Array, "*modes"]
    f2: Inexact[Array, "*modes"]
    f3: Inexact[Array, "*modes"]


@functools.partial(jax.jit, static_argnames=("n_contour",))
def etdrk4_coefficients(
    linear: Inexact[Array, "*modes"], dt: Float[Array, ""], *, n_contour: int = N_CONTOUR
) -> ETDRK4Coefficients:
    r"""ETDRK4 coefficients by the contour integrals of Kassam & Trefethen (2005).

    Parameters
    ----------
    linear : array
        Diagonal L (real, e.g. −νk², or complex for dispersive terms).
    dt : scalar
        Step h ≥ 0 (may be traced).
    n_contour : int, default 32
        M, points on the circle |ζ − hL| = 1.
    """
    linear = jnp.asarray(linear)
    hl = dt * linear
    dtype = jnp.result_type(hl, 1j)
    r = jnp.exp(2j * jnp.pi * (jnp.arange(n_contour) + 0.5) / n_contour).astype(dtype)
    z = hl[..., None] + r
    ez, ez2 = jnp.exp(z), jnp.exp(z / 2)
    z3 = z**3
    parts = [
        (ez2 - 1) / z,
        (-4 - z + ez * (4 - 3 * z + z**2)) / z3,
        (2 + z + ez * (z - 2)) / z3,
        (-4 - 3 * z - z**2 + ez * (4 - z)) / z3,
    ]
    means = [dt * jnp.mean(p, axis=-1) for p in parts]
    if not jnp.iscomplexobj(linear):
        means = [m.real for m in means]
    return ETDRK4Coefficients(jnp.exp(hl), jnp.exp(hl / 2), *means)


def etdrk4_step(
    coefficients: ETDRK4Coefficients,
    nonlinear: Nonlinear,
    v: Inexact[Array, "*modes"],
    t: Float[Array, ""],
    dt: Float[Array, ""],
) -> Inexact[Array, "*modes"]:
    """One ETDRK4 step v_n → v_{n+1} from t to t + h (formulas in the module docstring)."""
    c = coefficients
    nv = nonlinear(t, v)
    a = c.exp_half * v + c.q * nv
    na = nonlinear(t + dt / 2, a)
    b = c.exp_half * v + c.q * na
    nb = nonlinear(t + dt / 2, b)
    cc = c.exp_half * a + c.q * (2 * nb - nv)
    nc = nonlinear(t + dt, cc)
    return c.exp_full * v + c.f1 * nv + 2 * c.f2 * (na + nb) + c.f3 * nc


def etdrk4(
    linear: Inexact[Array, "*modes"],
    nonlinear: Nonlinear,
    v0: Inexact[Array, "*modes"],
    *,
    t0: float,
    dt: float,
    n_steps: int,
) -> Inexact[Array, "*modes"]:
    """v̂(t₀ + n_steps·h) for v̂' = L v̂ + N(t, v̂): ``n_steps`` ETDRK4 steps in one ``lax.scan``.

    Jittable (``n_steps`` static), batch with ``jax.vmap``, reverse-differentiable.
    """
    coefficients = etdrk4_coefficients(linear, dt)

    def body(v, i):
        return etdrk4_step(coefficients, nonlinear, v, t0 + i * dt, dt), None

    v, _ = lax.scan(body, jnp.asarray(v0), jnp.arange(int(n_steps), dtype=jnp.result_type(float)))
    return v


def etdrk4_save_at(
    linear: Inexact[Array, "*modes"],
    nonlinear: Nonlinear,
    v0: Inexact[Array, "*modes"],
    *,
    t0: float,
    times: Sequence[float],
    dt: float,
) -> Inexact[Array, " T *modes"]:
    """v̂ at each of ``times`` (non-decreasing, ≥ t₀) with steps ≤ Δt.

    Intervals between save times are split into equal steps (:mod:`solvers._stepping`); the
    coefficients are recomputed once per interval.
    """

    def make_step(h):
        coefficients = etdrk4_coefficients(linear, h)
        return lambda v, t: etdrk4_step(coefficients, nonlinear, v, t, h)

    return integrate_to_times(make_step, jnp.asarray(v0), t0=t0, times=times, dt=dt)

"""BKW exact solution: reference tables, exact identities, sampler, characteristics."""

from __future__ import annotations

import functools
import json
import math
from decimal import Decimal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from jax.test_util import check_grads

from solvers._bkw import LandauBKWProblem, landau_bkw_2d, landau_bkw_3d
from solvers._problem import ProblemError

P2, P3 = landau_bkw_2d(), landau_bkw_3d()
PROBLEMS = {2: P2, 3: P3}

# Identities evaluated in float64 from closed forms: a few ulps times the condition of the
# expression (autodiff of a rational function of |v|², exp/log of O(1) numbers).
RTOL_IDENTITY, ATOL_IDENTITY = 1e-12, 1e-13

# MATH.md §2.6 tables, copied as printed: (d, t, K, P, Q, I, H, dH/dt); "" = not printed.
TABLE = [
    (2, "0", "0.500000", "0", "1", "4.000000", "-2.721946", "-0.125000"),
    (2, "0.5", "0.530293", "0.11425", "0.83515", "2.989215", "-2.764864", "-6.1826e-2"),
    (2, "1", "0.558752", "0.21030", "0.70667", "2.601423", "-2.789049", "-3.7589e-2"),
    (2, "2", "0.610600", "0.36227", "0.52222", "2.260031", "-2.814192", "-1.6252e-2"),
    (2, "2.5", "0.634192", "0.42319", "0.45476", "2.178488", "-2.820952", "-1.1155e-2"),
    (2, "5", "0.732369", "0.63457", "0.24949", "2.033863", "-2.834236", "-2.1164e-3"),
    (2, "10", "0.856748", "0.83280", "0.09758", "2.001980", "-2.837642", "-1.2376e-4"),
    (3, "5.5", "0.600150", "0.00063", "", "3.884655", "-4.193052", "-7.3721e-2"),
    (3, "6", "0.632121", "0.12703", "", "3.442700", "-4.218982", "-3.6892e-2"),
    (3, "6.5", "0.661535", "0.23254", "", "3.256376", "-4.233109", "-2.1365e-2"),
    (3, "7", "0.688597", "0.32166", "", "3.156757", "-4.241518", "-1.3063e-2"),
    (3, "8", "0.736403", "0.46307", "", "3.064112", "-4.250086", "-5.3427e-3"),
    (3, "10", "0.811124", "0.65072", "", "3.012957", "-4.255340", "-1.0797e-3"),
]

# MATH.md §2.6 exact characteristics: (d, t0, r0, t1, r(t1)), printed to 8 decimals.
CHARACTERISTICS = [
    (2, 0.0, 0.5, 1.0, 0.35151542),
    (2, 0.0, 0.5, 5.0, 0.24843577),
    (2, 0.0, 1.0, 1.0, 0.94151048),
    (2, 0.0, 1.0, 5.0, 0.82373056),
    (2, 0.0, 2.0, 1.0, 2.05294206),
    (2, 0.0, 2.0, 5.0, 2.15069162),
    (3, 5.5, 0.5, 6.5, 0.34887268),
    (3, 5.5, 0.5, 10.0, 0.28130422),
    (3, 5.5, 1.0, 6.5, 0.91143632),
    (3, 5.5, 1.0, 10.0, 0.80852227),
    (3, 5.5, 2.0, 6.5, 2.02033812),
    (3, 5.5, 2.0, 10.0, 2.03730253),
]


def half_unit(printed: str) -> float:
    """Half a unit in the last printed digit of a decimal string (the table's rounding)."""
    return 0.5 * 10.0 ** Decimal(printed).as_tuple().exponent


def scipy_expectation(problem: LandauBKWProblem, t: float, g) -> float:
    """E_f[g(|v|²)] by adaptive scipy quadrature in r, independent of the library's rule."""
    d = problem.dim
    k, p, q = (float(c) for c in problem.coefficients(t))
    area = 2 * math.pi ** (d / 2) / math.gamma(d / 2)

    def integrand(r):
        u = r * r
        dens = (2 * math.pi * k) ** (-d / 2) * math.exp(-u / (2 * k)) * (p + q * u)
        return area * r ** (d - 1) * dens * g(u)

    pieces = [(0.0, 1e-3), (1e-3, 0.1), (0.1, 1.0), (1.0, 4.0), (4.0, 12.0)]
    return sum(
        scipy.integrate.quad(integrand, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
        for a, b in pieces
    )


def random_points(d: int, n: int, seed: int) -> jax.Array:
    return 1.5 * jax.random.normal(jax.random.key(seed), (n, d))


# -- problem objects ------------------------------------------------------------------------


def test_builders_and_parameters():
    for problem, d, times in ((P2, 2, (0.0, 5.0)), (P3, 3, (5.5, 10.5))):
        assert problem.problem_id == f"landau-bkw-{d}d"
        assert problem.dim == d
        assert (problem.t_min, problem.t_max) == times
        assert all(times[0] < t <= times[1] for t in problem.default_times)
        params = problem.parameters()
        assert json.loads(json.dumps(params)) == params
        assert params["lambda"] == pytest.approx(problem.B * (d - 1), rel=1e-15, abs=0)
    assert P2.rate == 1 / 16
    assert P3.rate == 1 / 12


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"t_min": 5.0}, "K\\(t_min\\)"),  # 3D needs t ≥ 6 ln 2.5 ≈ 5.498
        ({"C_bkw": -0.1}, "C_bkw"),
        ({"B": 0.0}, "B must"),
        ({"default_times": (11.0,)}, "default_times"),
        ({"t_max": 5.0}, "t_min < t_max"),
        ({"dim": 1}, "dim"),
    ],
)
def test_invalid_parameters_raise(changes, match):
    fields = {
        "problem_id": "bkw-test",
        "dim": 3,
        "B": 1 / 24,
        "C_bkw": 1.0,
        "t_min": 5.5,
        "t_max": 10.5,
        "default_times": (6.0,),
    }
    fields.update(changes)
    with pytest.raises(ProblemError, match=match):
        LandauBKWProblem(**fields)


def test_shape_errors_mention_vmap():
    with pytest.raises(ValueError, match="vmap"):
        P2.score(1.0, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="vmap"):
        P3.log_density(6.0, jnp.zeros(2))


# -- reference values -----------------------------------------------------------------------


@functools.cache
def table_values(d: int) -> dict[float, np.ndarray]:
    """(K, P, Q, I, H, dH/dt) at the table's times, one jitted vmap per dimension."""
    problem = PROBLEMS[d]
    times = [float(r[1]) for r in TABLE if r[0] == d]

    def row(t):
        return jnp.stack(
            [
                *problem.coefficients(t),
                problem.fisher_information(t),
                problem.entropy(t),
                problem.entropy_rate(t),
            ]
        )

    values = np.asarray(jax.jit(jax.vmap(row))(jnp.asarray(times)))
    return dict(zip(times, values, strict=True))


@pytest.mark.parametrize("row", TABLE, ids=[f"{r[0]}d-t{r[1]}" for r in TABLE])
def test_reference_table(row):
    """K, P, Q, I(t), H(t), dH/dt match MATH.md §2.6 to half a unit in the last digit."""
    d, t, *printed = row
    computed = table_values(d)[float(t)]
    for value, text in zip(computed, printed, strict=True):
        if text:
            assert float(value) == pytest.approx(float(text), abs=half_unit(text), rel=0)


@pytest.mark.parametrize("d", [2, 3])
def test_equilibrium_entropy(d):
    """H → −(d/2)(log 2π + 1) as K → 1 (t large; K = 1 − 1e−13·C at t = 15/λ)."""
    problem = PROBLEMS[d]
    h_inf = -(d / 2) * (math.log(2 * math.pi) + 1)
    t = 15.0 / problem.rate
    assert float(problem.entropy(t)) == pytest.approx(h_inf, rel=1e-11, abs=1e-11)


@pytest.mark.parametrize("d", [2, 3])
def test_moments_and_radial_quadrature(d):
    """Mass 1, E|v|² = d, E|v|⁴ = PK²(d²+2d) + QK³d(d+2)(d+4), I and H: library rule vs scipy.

    The composite Gauss–Legendre rule is exact to ~1e−15 on these smooth integrands and scipy's
    adaptive quad is asked for epsrel 1e−13, so both must agree with the closed forms to 1e−12.
    """
    problem = PROBLEMS[d]
    for t in (*problem.default_times, problem.t_min):
        k, p, q = (float(c) for c in problem.coefficients(t))
        m4 = p * k**2 * (d**2 + 2 * d) + q * k**3 * d * (d + 2) * (d + 4)
        for g, exact in ((lambda u: u**0, 1.0), (lambda u: u, d), (lambda u: u**2, m4)):
            lib = float(problem.radial_expectation(t, g))
            ref = scipy_expectation(problem, t, g)
            assert lib == pytest.approx(exact, rel=1e-12, abs=1e-13)
            assert ref == pytest.approx(exact, rel=1e-12, abs=1e-13)

        def fisher_integrand(u, k=k, p=p, q=q):
            return u * (-1 / k + 2 * q / (p + q * u)) ** 2

        def entropy_integrand(u, k=k, p=p, q=q):
            return -0.5 * d * math.log(2 * math.pi * k) - u / (2 * k) + math.log(p + q * u)

        fisher = scipy_expectation(problem, t, fisher_integrand)
        entropy = scipy_expectation(problem, t, entropy_integrand)
        assert float(problem.fisher_information(t)) == pytest.approx(fisher, rel=1e-12, abs=0)
        assert float(problem.entropy(t)) == pytest.approx(entropy, rel=1e-12, abs=0)


@pytest.mark.parametrize("d", [2, 3])
def test_entropy_rate_is_derivative_of_entropy(d):
    """dH/dt = −λ(I − d): autodiff of the quadrature H(t) against the Fisher formula."""
    problem = PROBLEMS[d]
    times = jnp.asarray(problem.default_times)
    dh = jax.vmap(jax.grad(problem.entropy))(times)
    rate = jax.vmap(problem.entropy_rate)(times)
    np.testing.assert_allclose(dh, rate, rtol=1e-11, atol=1e-14)


# -- exact pointwise identities -------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3])
def test_score_divergence_velocity_match_autodiff(d):
    """s = ∇log f, ∇·s = tr ∇s, U = −λ(s + v) and d/dt log f(t, X_t) = −∇·U (autodiff)."""
    problem = PROBLEMS[d]
    x = random_points(d, 64, seed=d)

    @jax.jit
    @functools.partial(jax.vmap, in_axes=(0, None))
    @functools.partial(jax.vmap, in_axes=(None, 0))
    def pairs(t, v):
        jac = jax.jacfwd(problem.score, argnums=1)(t, v)
        div_u = jnp.trace(jax.jacfwd(problem.velocity, argnums=1)(t, v))
        return (
            problem.score(t, v),
            jax.grad(problem.log_density, argnums=1)(t, v),
            problem.score_divergence(t, v),
            jnp.trace(jac),
            problem.velocity(t, v),
            problem.log_density_rate(t, v),
            div_u,
        )

    score, grad, div, trace, u, rate, div_u = pairs(jnp.asarray(problem.default_times), x)
    np.testing.assert_allclose(score, grad, rtol=RTOL_IDENTITY, atol=ATOL_IDENTITY)
    np.testing.assert_allclose(div, trace, rtol=RTOL_IDENTITY, atol=ATOL_IDENTITY)
    np.testing.assert_allclose(u, -problem.rate * (score + x), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(rate, -div_u, rtol=RTOL_IDENTITY, atol=ATOL_IDENTITY)


@pytest.mark.parametrize("d", [2, 3])
def test_density_solves_reduced_fokker_planck(d):
    """∂_t f = λ(Δf + ∇·(v f)) = −∇·(drift f) + ½ g² Δf, all derivatives by autodiff."""
    problem = PROBLEMS[d]
    x = random_points(d, 32, seed=10 + d)
    lam = problem.rate

    def residual(t, v):
        f = lambda t, v: problem.density(t, v)  # noqa: E731
        dt = jax.grad(f, argnums=0)(t, v)
        lap = jnp.trace(jax.hessian(f, argnums=1)(t, v))
        div_vf = jax.jacfwd(lambda v: v * f(t, v))(v)
        fp = lam * (lap + jnp.trace(div_vf))
        drift_div = jnp.trace(jax.jacfwd(lambda v: problem.drift(t, v) * f(t, v))(v))
        generic = -drift_div + 0.5 * problem.diffusion(t) ** 2 * lap
        return dt, fp, generic

    times = jnp.asarray(problem.default_times)
    dt, fp, generic = jax.jit(jax.vmap(jax.vmap(residual, (None, 0)), (0, None)))(times, x)
    scale = float(jnp.max(jnp.abs(dt)))
    np.testing.assert_allclose(dt, fp, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(dt, generic, rtol=1e-10, atol=1e-12 * scale)


# -- characteristics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row", CHARACTERISTICS, ids=[f"{r[0]}d-r{r[2]}-t{r[3]}" for r in CHARACTERISTICS]
)
def test_characteristics_match_table(row):
    """Closed-form radial characteristic vs MATH.md §2.6 (8 printed decimals; tolerance 1e−7)."""
    d, t0, r0, t1, r1 = row
    direction = jnp.ones(d) / math.sqrt(d)
    x1 = PROBLEMS[d].characteristic(t0, r0 * direction, t1)
    assert float(jnp.linalg.norm(x1)) == pytest.approx(r1, abs=1e-7, rel=0)
    np.testing.assert_allclose(x1 / jnp.linalg.norm(x1), direction, rtol=1e-14, atol=1e-14)


def rk4_characteristics(problem, t0: float, t1: float, x0: jax.Array, steps: int = 1000):
    """Integrate dX/dt = U(t, X) and d/dt log f = λ(∇·s + d) by classical RK4 (lax.scan).

    Independent of the closed form; global error O(h⁴) with h = (t1 − t0)/steps."""
    h = (t1 - t0) / steps

    def rhs(t, y):
        x, _ = y
        return problem.velocity(t, x), problem.log_density_rate(t, x)

    def step(y, t):
        k1 = rhs(t, y)
        k2 = rhs(t + h / 2, jax.tree.map(lambda a, b: a + h / 2 * b, y, k1))
        k3 = rhs(t + h / 2, jax.tree.map(lambda a, b: a + h / 2 * b, y, k2))
        k4 = rhs(t + h, jax.tree.map(lambda a, b: a + h * b, y, k3))
        combine = lambda a, b1, b2, b3, b4: a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4)  # noqa: E731
        return jax.tree.map(combine, y, k1, k2, k3, k4), None

    def solve(x):
        y0 = (x, problem.log_density(t0, x))
        return jax.lax.scan(step, y0, t0 + h * jnp.arange(steps))[0]

    return jax.jit(jax.vmap(solve))(x0)


@pytest.mark.parametrize("d", [2])
def test_characteristics_ode_and_log_density_transport(d):
    """Closed form vs an RK4 solution of the characteristic ODE, and log f integrated along it
    equals log f_exact at the end. h = 4.5e−3 and the field varies on O(1) scales with
    λ = 1/16, so the RK4 error is ~h⁴ ≈ 4e−10; tolerance 1e−8. (diffrax at 1e−12 in both
    dimensions: tests/validation.)"""
    problem = PROBLEMS[d]
    t0, t1 = problem.default_times[0], problem.default_times[-1]
    x0 = random_points(d, 8, seed=40 + d)
    x_ode, logf_ode = rk4_characteristics(problem, t0, t1, x0)
    x_cf = jax.vmap(problem.characteristic, (None, 0, None))(t0, x0, t1)
    np.testing.assert_allclose(x_cf, x_ode, rtol=1e-8, atol=1e-8)
    logf_exact = jax.vmap(problem.log_density, (None, 0))(t1, x_ode)
    np.testing.assert_allclose(logf_ode, logf_exact, rtol=1e-8, atol=1e-8)


def test_characteristic_edge_cases():
    t0, t1 = 1.0, 3.0
    np.testing.assert_array_equal(P2.characteristic(t0, jnp.zeros(2), t1), jnp.zeros(2))
    # far tail (F ≈ 1, solved in the survival function) and the identity map t1 = t0
    for x0 in (jnp.array([7.0, -3.0]), jnp.array([1e-4, 2e-4])):
        np.testing.assert_allclose(P2.characteristic(t0, x0, t0), x0, rtol=1e-12, atol=0)
        back = P2.characteristic(t1, P2.characteristic(t0, x0, t1), t0)
        np.testing.assert_allclose(back, x0, rtol=1e-11, atol=0)


# -- sampler --------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [2, 3])
def test_sampler_moments_and_radial_law(d):
    """E|v|² = d, E|v|⁴ within 5 Monte Carlo standard errors; KS test of r against F_t."""
    problem = PROBLEMS[d]
    n = 100_000
    times = problem.default_times[::2]
    keys = jax.random.split(jax.random.key(d), len(times))
    for t, key in zip(times, keys, strict=True):
        v = problem.sample(t, n, key=key)
        assert v.shape == (n, d)
        assert v.dtype == jnp.float64
        u = np.asarray(jnp.sum(v**2, axis=1))
        k, p, q = (float(c) for c in problem.coefficients(t))
        m4 = p * k**2 * (d**2 + 2 * d) + q * k**3 * d * (d + 2) * (d + 4)
        for sample, exact in ((u, d), (u**2, m4)):
            half_width = 5 * sample.std() / math.sqrt(n)
            assert sample.mean() == pytest.approx(exact, abs=half_width, rel=0)
        np.testing.assert_allclose(np.asarray(jnp.mean(v, 0)), 0.0, atol=5 * math.sqrt(1 / n))

        def cdf(r, k=k, p=p):
            z = r**2 / (2 * k)
            return p * scipy.special.gammainc(d / 2, z) + (1 - p) * scipy.special.gammainc(
                d / 2 + 1, z
            )

        result = scipy.stats.kstest(np.sqrt(u[:20_000]), cdf)
        assert result.pvalue > 1e-3, result


def test_sampler_key_is_keyword_only_and_reproducible():
    with pytest.raises(TypeError):
        P2.sample(1.0, 10, jax.random.key(0))  # type: ignore[misc]
    a = P2.sample(1.0, 10, key=jax.random.key(0))
    b = P2.sample(1.0, 10, key=jax.random.key(0))
    c = P2.sample(1.0, 10, key=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


# -- transformations ------------------------------------------------------------------------


def test_jit_and_vmap():
    """The problem is a pytree with static fields only: it passes through jax.jit as an
    argument; methods vmap over (t, x) (and are vmapped throughout the tests above)."""
    x = random_points(2, 4, seed=50)
    times = jnp.asarray(P2.default_times)
    score = jax.jit(lambda p, t, x: p.score(t, x))(P2, 1.0, x[0])
    np.testing.assert_allclose(score, P2.score(1.0, x[0]), rtol=1e-15, atol=1e-15)
    batched = jax.jit(jax.vmap(P2.log_density))(times, x)
    looped = jnp.stack([P2.log_density(t, xi) for t, xi in zip(times, x, strict=True)])
    np.testing.assert_allclose(batched, looped, rtol=1e-14, atol=1e-14)
    fisher = jax.vmap(P2.fisher_information)(times)
    np.testing.assert_allclose(fisher, [P2.fisher_information(t) for t in times], rtol=1e-14)


def test_grads():
    """Autodiff of log f in (t, x) against finite differences; ∇s is checked against the
    closed-form divergence above and d/dt of the quadrature H(t) by dH/dt = −λ(I − d)."""
    x = random_points(3, 1, seed=60)[0]
    t = jnp.asarray(P3.default_times[1])
    check_grads(jax.jit(P3.log_density), (t, x), order=1, modes=["fwd", "rev"])

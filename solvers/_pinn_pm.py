r"""PINN-PM: a global-in-time neural particle model of the homogeneous Landau equation.

Two networks are learned together (Kim, Son, Kim, Lee 2026):

* a **score network** :math:`s_\theta(t, v) \approx \nabla\log f_t(v)`,
* a **characteristic-flow network** :math:`X_\theta(t, v_0)`, the position at time t of the
  particle that started at :math:`v_0` at :math:`t_{\min}`.

There is no time stepping: the Landau dynamics is imposed by the continuous-time residual
along the particle trajectories :math:`X_i(t) = X_\theta(t, V^0_i)`,
:math:`V^0_i \sim f_0` iid, with weights :math:`w_i = 1/N`,

.. math::

    R_i(t) = \partial_t X_\theta(t, V^0_i) - U_N[s_\theta](X_i(t)),\qquad
    U_N[s](x) = -\frac1N \sum_j A(x - X_j)\,\bigl(s(t, x) - s(t, X_j)\bigr),

(:math:`\partial_t` by ``jax.jvp``, :math:`U_N` by :func:`solvers.landau_velocity`, O(N)
for Maxwell molecules), while the score network is fitted to the law of the pushed
particles by implicit score matching (Hyvärinen 2005),

.. math::

    J(s) = \frac1N\sum_i \bigl(|s(t, X_i)|^2 + 2\,\nabla\cdot s(t, X_i)\bigr)
         = E|s - \nabla\log f^\theta_t|^2 - I(f^\theta_t) + O_P(N^{-1/2}),

with the exact divergence (the Jacobian trace, ``jax.jacfwd``), to the known initial score
at :math:`t_{\min}` by regression (as the first step of Huang & Wang), and to the
transport of the score by the particle velocity: a density transported by
:math:`\partial_t f + \nabla\cdot(fU) = 0` has a score that solves
:math:`\partial_t s + \nabla(U\cdot s + \nabla\cdot U) = 0`, whose residual with
:math:`U = U_N[s_\theta]` (:func:`score_transport_residual`) is penalised at collocation
points. The last term is this module's addition (the paper's exact loss is not public): with
score matching alone the score's time derivative stayed 10–30% off (Fokker–Planck residual of
0.02–0.1 relative on 2D BKW, even for a score fitted to exact samples). All terms are
averaged over a batch of times drawn in the window. In the flow residual the score
network's parameters are held fixed (``stop_gradient``): the residual moves the flow
towards the velocity the current score induces, so it cannot be lowered by bending the
score away from the particles' law.

**Parametrisation.** With :math:`\tau = (t - t_{\min})/(t_{\max} - t_{\min})` and two SiLU
MLPs :math:`n_s, n_X`,

.. math::

    s_\theta(t, v) = -v + n_s\bigl(\tau, v, (1 + |v|^2)^{-1}\bigr),\qquad
    X_\theta(t, v_0) = \bigl(1 - \ell\,(t - t_{\min})\bigr)\,
        \bigl(v_0 + (t - t_{\min})\, n_X(\tau, v_0, |v_0|)\bigr),

so :math:`X_\theta(t_{\min}, v_0) = v_0` exactly and, with the last layers initialised to
zero, training starts from the Maxwellian score −v and the identity flow. The radial inputs
are features, not constraints (the networks need not be isotropic): scores of near-isotropic
densities are functions of :math:`|v|^2` (the 2D BKW score is sharp in it at early times;
the bounded transform keeps the network's growth in the tails linear),
and where the initial density vanishes at the origin (2D BKW at t = 0) the exact flow is
:math:`X \approx c(t)\,v_0|v_0|` near :math:`v_0 = 0`, which a smooth function of
:math:`v_0` alone resolves poorly. With ``isotropic=True`` the forms are rotation equivariant,

.. math::

    s_\theta(t, v) = v\,\bigl(-1 + n_s(\tau, (1 + |v|^2)^{-1})\bigr),\qquad
    X_\theta(t, v_0) = \bigl(1 - \ell\,(t - t_{\min})\bigr)\,
        v_0\bigl(1 + (t - t_{\min})\, n_X(\tau, |v_0|)\bigr)

with scalar networks: the exact score and characteristics of a problem whose kernel and
initial datum are rotation invariant have these forms (BKW: s = vφ(t, |v|²), X radial).
Generic networks leave score errors with a tangential component, which the particle
velocity amplifies by |x|² in the tails (U_N(x) contains |x|²(I − x̂x̂ᵀ)s(x)); on 2D BKW a
score error of ~1% at |x| ≈ 3 gave flow errors 50 times the bulk's there. The *leak*
:math:`\ell \ge 0` (default 0) is a deliberate defect for testing certificates: it shrinks
every particle, so the energy :math:`\tfrac12 E|X_t|^2` decays like
:math:`(1 - \ell(t - t_{\min}))^2` instead of being conserved.

References
----------
.. [1] M. Kim, S.-J. Son, Y. Kim, D. Lee, "A physics-informed, global-in-time neural particle
   method for the spatially homogeneous Landau equation", arXiv:2603.10874 (2026).
.. [2] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053.
.. [3] A. Hyvärinen, "Estimation of non-normalized statistical models by score matching",
   J. Mach. Learn. Res. 6 (2005) 695–709.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._landau_kernel import LandauKernel, Method, landau_velocity, landau_velocity_and_divergence

_RADIUS_SHIFT = 1e-24
SingleFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]


def _check_x(x: Array, dim: int, name: str) -> Array:
    x = jnp.asarray(x)
    if x.shape != (dim,):
        raise ValueError(
            f"{name} must have shape ({dim},), got {x.shape}; the model acts on one sample, "
            "batch with jax.vmap"
        )
    return x


def _zero_last_layer(mlp: eqx.nn.MLP) -> eqx.nn.MLP:
    last = mlp.layers[-1]
    return eqx.tree_at(
        lambda m: (m.layers[-1].weight, m.layers[-1].bias),
        mlp,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )


class PINNPM(eqx.Module):
    r"""Score network and characteristic-flow network of PINN-PM (module docstring).

    .. math::

        s_\theta(t, v) = -v + n_s(\tau, v, |v|^2),\qquad
        X_\theta(t, v_0) = (1 - \ell(t - t_{\min}))\,(v_0 + (t - t_{\min})\,n_X(\tau, v_0, |v_0|)),
        \qquad \tau = \frac{t - t_{\min}}{t_{\max} - t_{\min}}

    Build with :func:`pinn_pm_model`.

    Attributes
    ----------
    score_net, flow_net : eqx.nn.MLP
        :math:`n_s` and :math:`n_X`, maps :math:`\mathbb R^{2+d} \to \mathbb R^d`.
    dim : int
        d.
    t_min, t_max : float
        The window; :math:`X_\theta(t_{\min}, v_0) = v_0`.
    leak : float
        ℓ ≥ 0, the energy-leak defect (0: none).
    isotropic : bool
        Rotation-equivariant forms s = v(−1 + n_s), X = v₀(1 + (t − t_min) n_X) with scalar
        networks of radial features (module docstring).

    References
    ----------
    .. [1] M. Kim, S.-J. Son, Y. Kim, D. Lee, arXiv:2603.10874 (2026).
    """

    score_net: eqx.nn.MLP
    flow_net: eqx.nn.MLP
    dim: int = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    leak: float = eqx.field(static=True, default=0.0)
    isotropic: bool = eqx.field(static=True, default=False)

    def __check_init__(self) -> None:
        if not (math.isfinite(self.t_min) and math.isfinite(self.t_max)) or not (
            self.t_min < self.t_max
        ):
            raise ValueError(f"need finite t_min < t_max, got {self.t_min}, {self.t_max}")
        if not (math.isfinite(self.leak) and self.leak >= 0):
            raise ValueError(f"leak must be a finite number ≥ 0, got {self.leak}")

    def _tau(self, t: Array, x: Array) -> Array:
        return (jnp.asarray(t, dtype=x.dtype) - self.t_min) / (self.t_max - self.t_min)

    def score(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """s_θ(t, x) = −x + n_s(τ, x, 1/(1 + |x|²)); x(−1 + n_s(τ, 1/(1 + |x|²))) if isotropic."""
        x = _check_x(x, self.dim, "x")
        # 1/(1 + |x|²), not |x|²: a bounded feature keeps the MLP's growth linear in the tails
        bounded = 1.0 / (1.0 + jnp.sum(x * x))
        tau = self._tau(t, x)
        if self.isotropic:
            return x * (-1.0 + self.score_net(jnp.stack([tau, bounded])))
        return -x + self.score_net(jnp.concatenate([tau[None], x, bounded[None]]))

    def flow(self, t: Float[Array, ""], x0: Float[Array, " d"]) -> Float[Array, " d"]:
        """X_θ(t, x0) = (1 − ℓ(t − t_min)) (x0 + (t − t_min) n_X(τ, x0, |x0|)).

        If isotropic, X_θ = (1 − ℓ(t − t_min)) x0 (1 + (t − t_min) n_X(τ, |x0|)). Either way
        X_θ(t_min, x0) = x0 exactly (the factors are 1 and the increment 0).
        """
        x0 = _check_x(x0, self.dim, "x0")
        elapsed = jnp.asarray(t, dtype=x0.dtype) - self.t_min
        # the tiny shift keeps the gradient of |x0| finite at x0 = 0 (NaN-free training)
        radius = jnp.sqrt(jnp.sum(x0 * x0) + _RADIUS_SHIFT)
        tau = self._tau(t, x0)
        if self.isotropic:
            moved = x0 * (1.0 + elapsed * self.flow_net(jnp.stack([tau, radius])))
        else:
            moved = x0 + elapsed * self.flow_net(jnp.concatenate([tau[None], x0, radius[None]]))
        if self.leak == 0:
            return moved
        return (1.0 - self.leak * elapsed) * moved


def pinn_pm_model(
    *,
    dim: int,
    width: int,
    depth: int,
    t_min: float,
    t_max: float,
    leak: float = 0.0,
    isotropic: bool = False,
    key: PRNGKeyArray,
) -> PINNPM:
    """Build a :class:`PINNPM` with SiLU MLPs and zero last layers (score −v, identity flow).

    Parameters
    ----------
    dim : int
        d, the velocity dimension.
    width, depth : int
        Hidden width and number of hidden layers of both MLPs.
    t_min, t_max : float
        Window of the model; times are fed to the networks as τ = (t − t_min)/(t_max − t_min).
    leak : float, default 0
        Energy-leak defect ℓ: the flow is multiplied by 1 − ℓ(t − t_min).
    isotropic : bool, default False
        Rotation-equivariant forms (module docstring), scalar-output networks of
        (τ, 1/(1 + |v|²)) and (τ, |v₀|); for problems whose kernel and initial datum are
        rotation invariant (BKW), whose exact score and flow are radial.
    key : PRNG key
        Keyword-only; initialises both networks.

    Returns
    -------
    PINNPM
    """
    if int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    score_key, flow_key = jax.random.split(key)
    # inputs: (τ, v, one radial feature), or (τ, radial feature) for the isotropic forms
    in_size, out_size = (2, "scalar") if isotropic else (dim + 2, dim)
    nets = [
        _zero_last_layer(
            eqx.nn.MLP(
                in_size=in_size,
                out_size=out_size,
                width_size=int(width),
                depth=int(depth),
                activation=jax.nn.silu,
                key=k,
            )
        )
        for k in (score_key, flow_key)
    ]
    return PINNPM(
        score_net=nets[0],
        flow_net=nets[1],
        dim=int(dim),
        t_min=float(t_min),
        t_max=float(t_max),
        leak=float(leak),
        isotropic=bool(isotropic),
    )


# -- losses -------------------------------------------------------------------------------


def flow_residual_loss(
    flow: SingleFn,
    score: SingleFn,
    kernel: LandauKernel,
    t: Float[Array, ""],
    v0: Float[Array, "N d"],
    *,
    method: Method = "auto",
) -> Float[Array, ""]:
    r"""Mean-square flow-map residual along the trajectories of N particles at one time.

    .. math::

        L_R(t) = \frac1N\sum_i \bigl|\partial_t X(t, V^0_i) - U_N[s](X_i)\bigr|^2,\qquad
        U_N[s](x) = -\frac1N\sum_j A(x - X_j)(s(t, x) - s(t, X_j)),

    with :math:`X_i = X(t, V^0_i)`, :math:`\partial_t` by ``jax.jvp`` and U_N by
    :func:`solvers.landau_velocity` (the j = i term is 0). For the exact flow and score and
    :math:`V^0_i \sim f_0` iid it is the finite-N floor :math:`\frac1N\sum_i|U - U_N|^2`,
    O(1/N).

    Parameters
    ----------
    flow : callable
        :math:`X(t, x_0)`, ``((), (d,)) -> (d,)``.
    score : callable
        :math:`s(t, x)`, ``((), (d,)) -> (d,)``.
    kernel : LandauKernel
        A(z) = C_γ |z|^γ (|z|² I − z zᵀ).
    t : scalar array
        Time.
    v0 : array (N, d)
        Initial particles V⁰_i (weights 1/N).
    method : {"auto", "blocked", "moments", "naive"}
        Kernel evaluation method of :func:`solvers.landau_velocity`.

    Returns
    -------
    scalar array
        L_R(t).

    References
    ----------
    .. [1] M. Kim, S.-J. Son, Y. Kim, D. Lee, arXiv:2603.10874 (2026).
    """
    t = jnp.asarray(t, dtype=v0.dtype)

    def one(x0):
        return jax.jvp(lambda tt: flow(tt, x0), (t,), (jnp.ones_like(t),))

    x, xdot = jax.vmap(one)(v0)
    s = jax.vmap(score, in_axes=(None, 0))(t, x)
    w = jnp.full(v0.shape[:1], 1.0 / v0.shape[0], dtype=v0.dtype)
    u = landau_velocity(kernel, x, w, s, method=method)
    return jnp.mean(jnp.sum((xdot - u) ** 2, axis=-1))


def implicit_score_matching_loss(
    score: SingleFn, t: Float[Array, ""], x: Float[Array, "N d"]
) -> Float[Array, ""]:
    r"""Implicit score-matching loss of a score field on samples x (Hyvärinen 2005).

    .. math::

        J_N(s) = \frac1N\sum_i \bigl(|s(t, x_i)|^2 + 2\,\nabla\cdot s(t, x_i)\bigr),

    the divergence exactly, as the trace of ``jax.jacfwd`` (d forward passes). For
    :math:`x_i \sim f` iid, :math:`E J_N = E_f|s - \nabla\log f|^2 - I(f)`,
    :math:`I(f) = E_f|\nabla\log f|^2`.

    Parameters
    ----------
    score : callable
        s(t, x), ``((), (d,)) -> (d,)``.
    t : scalar array
        Time.
    x : array (N, d)
        Samples.

    Returns
    -------
    scalar array
        J_N(s).

    References
    ----------
    .. [1] A. Hyvärinen, J. Mach. Learn. Res. 6 (2005) 695–709, Thm 1.
    """
    t = jnp.asarray(t, dtype=x.dtype)

    def one(xi):
        s, jac = _value_and_jacobian(lambda y: score(t, y), xi)
        return jnp.sum(s * s) + 2.0 * jnp.trace(jac)

    return jnp.mean(jax.vmap(one)(x))


def _value_and_jacobian(fn: Callable[[Array], Array], x: Array) -> tuple[Array, Array]:
    """(fn(x), ∇fn(x)) by d forward-mode passes sharing one primal evaluation."""
    basis = jnp.eye(x.shape[0], dtype=x.dtype)
    value, columns = jax.vmap(lambda e: jax.jvp(fn, (x,), (e,)), out_axes=(None, 1))(basis)
    return value, columns


def score_regression_loss(
    score: SingleFn,
    t: Float[Array, ""],
    x: Float[Array, "N d"],
    target: Float[Array, "N d"],
) -> Float[Array, ""]:
    r"""Relative L² misfit to known score values (the initial fit of Huang & Wang).

    .. math::

        L_0 = \frac{\sum_i |s(t, x_i) - s^*_i|^2}{\sum_i |s^*_i|^2}

    Parameters
    ----------
    score : callable
        s(t, x), ``((), (d,)) -> (d,)``.
    t : scalar array
        Time (t_min for the initial fit).
    x, target : arrays (N, d)
        Points and the known score there.

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053 (first time step).
    """
    s = jax.vmap(score, in_axes=(None, 0))(jnp.asarray(t, dtype=x.dtype), x)
    return jnp.sum((s - target) ** 2) / jnp.sum(target**2)


def score_transport_residual(
    score: SingleFn,
    kernel: LandauKernel,
    t: Float[Array, ""],
    sources: Float[Array, "N d"],
    source_scores: Float[Array, "N d"],
    x: Float[Array, " d"],
    *,
    method: Method = "auto",
) -> Float[Array, " d"]:
    r"""Residual of the score's transport equation at one point x.

    If f solves the continuity equation :math:`\partial_t f + \nabla\cdot(f U) = 0`, its score
    :math:`s = \nabla\log f` solves :math:`\partial_t s + \nabla(U\cdot s + \nabla\cdot U) = 0`
    (the gradient of :math:`\partial_t\log f + U\cdot\nabla\log f + \nabla\cdot U = 0`). With
    the particle velocity field of the sources :math:`(X_j, s_j)`, weights 1/N,

    .. math::

        R_T(x) = \partial_t s(t, x) + \nabla_x\bigl(U_N(x)\cdot s(t, x) + \nabla\cdot U_N(x)\bigr),
        \qquad U_N(x) = -\frac1N\sum_j A(x - X_j)(s(t, x) - s_j),

    :math:`\nabla\cdot U_N` as in :func:`solvers.landau_velocity_and_divergence` (it needs
    :math:`\nabla s`, so :math:`R_T` needs the Hessian of s: forward mode inside reverse
    mode). For Maxwell molecules and an isotropic f with unit covariance :math:`U = -λ(s + v)`
    and :math:`R_T` is the score form of the Fokker–Planck residual of MATH.md §2.6.

    Parameters
    ----------
    score : callable
        s(t, x), ``((), (d,)) -> (d,)``, twice differentiable in x, once in t.
    kernel : LandauKernel
        The collision kernel.
    t : scalar array
        Time.
    sources, source_scores : arrays (N, d)
        Particle positions X_j and score values s_j defining U_N (held fixed).
    x : array (d,)
        The point.
    method : {"auto", "blocked", "moments", "naive"}
        Kernel evaluation method.

    Returns
    -------
    array (d,)
        R_T(x).

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053 (the log-density update
       along trajectories, d/dt log f = −∇·U).
    """
    t = jnp.asarray(t, dtype=x.dtype)
    n = sources.shape[0]
    w = jnp.full((n,), 1.0 / n, dtype=x.dtype)

    def potential(y):
        s, jac = _value_and_jacobian(lambda z: score(t, z), y)
        u, div = landau_velocity_and_divergence(
            kernel, sources, w, source_scores, jac[None], x=y[None], sx=s[None], method=method
        )
        return jnp.sum(u[0] * s) + div[0]

    _, ds_dt = jax.jvp(lambda tt: score(tt, x), (t,), (jnp.ones_like(t),))
    return ds_dt + jax.grad(potential)(x)


def _frozen(tree: Any) -> Any:
    """The same pytree with every array leaf behind ``stop_gradient``."""
    return jax.tree.map(lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, tree)


class PINNPMLosses(eqx.Module):
    r"""The terms of the PINN-PM objective on one batch: per time and collocation scale
    (shape ``(T, C)``, C = ``len(collocation_scales)``), per time ``(T,)``, or scalar.

    A training objective combines them, e.g. relative forms ``residual / velocity_sq``
    and ``transport / score_rate_sq`` (each time and scale divided by its own size, so that
    slow late times and the sparse core and tails weigh as much as the bulk), plus
    ``score_matching`` and ``initial``.

    Attributes
    ----------
    residual : array (T, C)
        Mean of :math:`|\partial_t X_\theta - \mathrm{sg}[U_N[s_\theta](X_\theta)]|^2` over
        each scale's collocation points.
    velocity_sq : array (T, C)
        :math:`\mathrm{sg}[\overline{|U_N[s_\theta]|^2}]` there, the scale of the residual.
    score_matching : array (T,)
        :func:`implicit_score_matching_loss` at the pushed particles (positions frozen).
    transport : array (T, C)
        Mean of :math:`|R_T|^2` (:func:`score_transport_residual`) over each scale's
        transport points (0 without them).
    score_rate_sq : array (T, C)
        :math:`\mathrm{sg}[\overline{|\partial_t s_\theta|^2}]` over the same points.
    initial : scalar array
        :func:`score_regression_loss` at t_min.
    """

    residual: Array
    velocity_sq: Array
    score_matching: Array
    transport: Array
    score_rate_sq: Array
    initial: Array


def pinn_pm_losses(
    model: PINNPM,
    kernel: LandauKernel,
    times: Float[Array, " T"],
    v0: Float[Array, "N d"],
    initial_score: Callable[[Float[Array, " d"]], Float[Array, " d"]],
    *,
    n_residual: int | None = None,
    n_score: int | None = None,
    n_transport: int = 0,
    collocation_scales: tuple[float, ...] = (1.0,),
    method: Method = "auto",
) -> PINNPMLosses:
    r"""The PINN-PM loss terms on one batch of particles and times.

    At each time :math:`t_k` the N particles :math:`X_j = X_\theta(t_k, V^0_j)` and their
    scores :math:`s_j = s_\theta(t_k, X_j)` are the sources of :math:`U_N` (forward passes
    only, held fixed), and

    * the flow residual :math:`|\partial_t X_\theta(t_k, y_0) - \mathrm{sg}[U_N(X_\theta(t_k,
      y_0))]|^2` is averaged over the collocation points :math:`y_0 = c\,V^0_i`,
      i < ``n_residual``, c in ``collocation_scales`` (sg = ``stop_gradient``: the residual
      moves only the flow network, towards the velocity of the current score);
    * implicit score matching :math:`J_N` on the first ``n_score`` particles fits the score
      to the particles' law;
    * the score-transport residual :math:`|R_T|^2` (:func:`score_transport_residual`) is
      averaged over :math:`y = c\,X_i`, i < ``n_transport``, c in ``collocation_scales``:
      it ties :math:`\partial_t s_\theta` to the transport by :math:`U_N`;

    and at :math:`t_{\min}` the score is regressed on the known initial score at the N
    particles and at :math:`c\,V^0_i`, i < ``n_score``, c > 1 (:func:`score_regression_loss`).
    Scales c ≠ 1 put collocation points where few particles go (c < 1: the core, where the
    2D BKW score is sharp at early times; c > 1: the tails, where the networks would
    otherwise extrapolate); the PDE residuals vanish everywhere for the exact solution, so
    this changes the weighting, not the minimiser. The flow network is trained by the
    residual only, the score network by the other terms.

    Parameters
    ----------
    model : PINNPM
        The networks (its leak is applied as in :meth:`PINNPM.flow`).
    kernel : LandauKernel
        The problem's collision kernel.
    times : array (T,)
        Times in the window.
    v0 : array (N, d)
        Initial particles V⁰_i ~ f₀ (weights 1/N), shared by all times.
    initial_score : callable
        ∇log f₀, ``(d,) -> (d,)`` (the problem's ``initial_score``).
    n_residual : int, optional
        Particles whose (scaled) initial positions are residual collocation points (default
        all N).
    n_score : int, optional
        Particles used by score matching (default all N).
    n_transport : int, default 0
        Particles whose (scaled) positions are transport collocation points (0: the term is 0).
    collocation_scales : tuple of float, default (1.0,)
        The factors c above.
    method : {"auto", "blocked", "moments", "naive"}
        Kernel evaluation method.

    Returns
    -------
    PINNPMLosses

    References
    ----------
    .. [1] M. Kim, S.-J. Son, Y. Kim, D. Lee, arXiv:2603.10874 (2026).
    .. [2] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    """
    n = v0.shape[0]
    n_residual = n if n_residual is None else int(n_residual)
    n_score = n if n_score is None else int(n_score)
    n_transport = int(n_transport)
    if not (0 < n_residual <= n and 0 < n_score <= n and 0 <= n_transport <= n):
        raise ValueError(
            f"need 0 < n_residual, n_score <= N and 0 <= n_transport <= N = {n}, got "
            f"n_residual = {n_residual}, n_score = {n_score}, n_transport = {n_transport}"
        )
    if not collocation_scales or any(not c > 0 for c in collocation_scales):
        raise ValueError(f"collocation_scales must be positive numbers, got {collocation_scales}")
    scales = jnp.asarray(collocation_scales, dtype=v0.dtype)
    frozen = _frozen(model)
    weights = jnp.full((n,), 1.0 / n, dtype=v0.dtype)

    def collocate(points: Array) -> Array:
        return (scales[:, None, None] * points[None]).reshape(-1, points.shape[-1])

    # the particles and their spread-out copies (c > 1; the tails of f₀ are rare among
    # particles), not the contracted ones: f₀ may vanish at the origin (2D BKW), where its
    # score is singular, and c < 1 would put regression targets there
    spread = [c for c in collocation_scales if c > 1]
    initial_points = jnp.concatenate([v0, *(c * v0[:n_score] for c in spread)])
    initial_target = jax.vmap(initial_score)(initial_points)

    def per_time(t):
        def moving(y0):
            return jax.jvp(lambda tt: model.flow(tt, y0), (t,), (jnp.ones_like(t),))

        x = jax.vmap(frozen.flow, in_axes=(None, 0))(t, v0)
        s = jax.vmap(frozen.score, in_axes=(None, 0))(t, x)
        y, ydot = jax.vmap(moving)(collocate(v0[:n_residual]))
        y = jax.lax.stop_gradient(y)
        sy = jax.vmap(frozen.score, in_axes=(None, 0))(t, y)
        u = landau_velocity(kernel, x, weights, s, x=y, sx=sy, method=method)
        n_scales = len(collocation_scales)

        def by_scale(values: Array) -> Array:
            # collocate() stacks the scales first: one mean per scale
            return jnp.mean(values.reshape(n_scales, -1), axis=1)

        residual = by_scale(jnp.sum((ydot - u) ** 2, axis=-1))
        velocity_sq = by_scale(jnp.sum(u * u, axis=-1))
        ism = implicit_score_matching_loss(model.score, t, x[:n_score])
        if n_transport == 0:
            zero = jnp.zeros((n_scales,), v0.dtype)
            return residual, velocity_sq, ism, zero, zero
        points = collocate(x[:n_transport])
        r_t = jax.vmap(
            lambda p: score_transport_residual(model.score, kernel, t, x, s, p, method=method)
        )(points)
        ds_dt = jax.vmap(
            lambda p: jax.jvp(lambda tt: frozen.score(tt, p), (t,), (jnp.ones_like(t),))[1]
        )(points)
        return (
            residual,
            velocity_sq,
            ism,
            by_scale(jnp.sum(r_t * r_t, axis=-1)),
            by_scale(jnp.sum(ds_dt * ds_dt, axis=-1)),
        )

    residual, velocity_sq, ism, transport, rate_sq = jax.vmap(per_time)(
        jnp.asarray(times, dtype=v0.dtype)
    )
    return PINNPMLosses(
        residual=residual,
        velocity_sq=jax.lax.stop_gradient(velocity_sq),
        score_matching=ism,
        transport=transport,
        score_rate_sq=jax.lax.stop_gradient(rate_sq),
        initial=score_regression_loss(model.score, model.t_min, initial_points, initial_target),
    )

r"""Small equinox surrogates of 1-D periodic PDEs: a periodic PINN and a Fourier neural operator.

Both expose the field roles of ``verify certify`` (:mod:`verify._model`) as methods and are
rebuilt from checkpoints (:mod:`verify._checkpoint`) by their builders,
``"solvers.field_networks:periodic_pinn"`` and
``"solvers.field_networks:fourier_neural_operator_1d"``, called with JSON hyper-parameters and
a keyword-only ``key``.

**Periodic PINN** (:class:`PeriodicPINN`, role ``field(t, x) -> (1,)``). A multilayer
perceptron of the features

.. math::

    \varphi(t, x) = \big(\tau,\ \sin k\kappa x,\ \cos k\kappa x\ (k = 1..K)\big),
    \qquad \tau = \frac{2t - t_{\min} - t_{\max}}{t_{\max} - t_{\min}},
    \quad \kappa = 2\pi/L,

so u_θ(t, x) = MLP(φ(t, x)) is L-periodic in x *by construction*, with every x-derivative
periodic too: the periodic boundary condition holds to round-off and need not be learned
(Dong & Ni 2021). The activation is smooth (tanh or SiLU) so that the second derivatives of
the PDE residual exist; τ ∈ [−1, 1] on the time window keeps the first layer's inputs O(1).

**Fourier neural operator** (:class:`FourierNeuralOperator1d`, role
``operator(u0, t) -> (n, C)``; Li et al. 2021). On the grid x_j = jL/n with channels last,

.. math::

    v^{0}_j = P\,(u_{0,j}, s), \qquad
    v^{\ell+1} = \sigma\big(W_\ell v^\ell + b_\ell + \mathcal K_\ell v^\ell\big), \qquad
    (\mathcal K_\ell v)\hat{}_k = R_{\ell,k}\,\hat v_k \ (0 \le k < m),\ 0 \text{ otherwise},

with s = (t − t_min)/(t_max − t_min) fed as a constant input channel, m = ``modes`` Fourier
modes kept by each spectral convolution (complex weights R stored as two real float64
arrays, ``weight_real`` and ``weight_imag``), σ = GELU after every layer except the last
(as in Li et al.), and a two-layer pointwise projection Q to C channels. The output is

.. math::

    \mathcal G_\theta(u_0, t) = u_0 + s\, Q(v^{L}),

so the initial condition holds exactly at t = t_min (a hard constraint) and the network
learns the change of the state. The grid coordinate is *not* an input (Li et al. append
it): without it every layer commutes with periodic shifts of the grid, as the solution
operator of a translation-invariant PDE does. The spectral convolutions act on any grid
with ⌊n/2⌋ + 1 ≥ m points (:meth:`FourierNeuralOperator1d.apply`); ``operator`` checks the
training resolution n.

Both models act on one sample (batch with ``jax.vmap``); leaves take JAX's default float
dtype, float64 when the caller switched x64 on (this module never does).

References
----------
.. [1] M. Raissi, P. Perdikaris, G. E. Karniadakis, "Physics-informed neural networks",
   J. Comput. Phys. 378 (2019) 686–707.
.. [2] S. Dong, N. Ni, "A method for representing periodic functions and enforcing exactly
   periodic boundary conditions with deep neural networks", J. Comput. Phys. 435 (2021)
   110242.
.. [3] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier Neural Operator for Parametric Partial Differential Equations",
   ICLR 2021.
"""

from __future__ import annotations

import math
from typing import Any, Literal, final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = [
    "FourierNeuralOperator1d",
    "PeriodicPINN",
    "SpectralConv1d",
    "fourier_neural_operator_1d",
    "periodic_pinn",
]

_ACTIVATIONS = {"tanh": jnp.tanh, "silu": jax.nn.silu}


def _float_dtype() -> Any:
    # float64 under x64 (checkpoints store float64 leaves), float32 otherwise.
    return jnp.result_type(float)


def _scalar_time(t: ArrayLike) -> Float[Array, ""]:
    t = jnp.asarray(t, dtype=jnp.result_type(t, float))
    if t.ndim != 0:
        raise ValueError(f"t must be a scalar, got shape {t.shape}; batch with jax.vmap")
    return t


def _check_window(t_min: float, t_max: float) -> tuple[float, float]:
    t_min, t_max = float(t_min), float(t_max)
    if not (math.isfinite(t_min) and math.isfinite(t_max) and t_min < t_max):
        raise ValueError(f"need finite t_min < t_max, got {t_min}, {t_max}")
    return t_min, t_max


# --------------------------------------------------------------------------- PINN


@final
class PeriodicPINN(eqx.Module):
    """u_θ(t, x) = MLP(φ(t, x)), exactly L-periodic in x (module docstring).

    Build with :func:`periodic_pinn`.
    """

    mlp: eqx.nn.MLP
    length: float = eqx.field(static=True)
    n_harmonics: int = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)

    def features(self, t: ArrayLike, x: Float[Array, " 1"]) -> Float[Array, " 1+2K"]:
        """φ(t, x) = (τ, sin kκx, cos kκx for k = 1..K), shape (1 + 2K,)."""
        t = _scalar_time(t)
        x = jnp.asarray(x)
        if x.shape != (1,):
            raise ValueError(
                f"x must have shape (1,), got {x.shape}; the PINN acts on one point, batch "
                "with jax.vmap"
            )
        tau = (2 * t - self.t_min - self.t_max) / (self.t_max - self.t_min)
        k = jnp.arange(1, self.n_harmonics + 1, dtype=x.dtype)
        phase = (2 * math.pi / self.length) * k * x[0]
        return jnp.concatenate([tau[None], jnp.sin(phase), jnp.cos(phase)])

    def field(self, t: ArrayLike, x: Float[Array, " 1"]) -> Float[Array, " 1"]:
        """u_θ(t, x), shape (1,) (one point; the ``field`` role)."""
        return self.mlp(self.features(t, x))


def periodic_pinn(
    *,
    width: int,
    depth: int,
    n_harmonics: int,
    length: float,
    t_min: float,
    t_max: float,
    activation: Literal["tanh", "silu"] = "tanh",
    key: PRNGKeyArray,
) -> PeriodicPINN:
    """Build a :class:`PeriodicPINN` (a checkpoint builder).

    Parameters
    ----------
    width, depth : int
        Hidden width and number of hidden layers of the MLP (``equinox.nn.MLP``).
    n_harmonics : int
        K ≥ 1, harmonics sin kκx, cos kκx among the inputs.
    length : float
        Period L.
    t_min, t_max : float
        Time window, mapped to τ ∈ [−1, 1].
    activation : {"tanh", "silu"}, default "tanh"
        Smooth hidden activation.
    key : PRNG key
        Initialisation (keyword-only, no default).
    """
    if n_harmonics < 1:
        raise ValueError(f"n_harmonics must be >= 1, got {n_harmonics}")
    if not (math.isfinite(length) and length > 0):
        raise ValueError(f"length must be positive, got {length}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    t_min, t_max = _check_window(t_min, t_max)
    mlp = eqx.nn.MLP(
        1 + 2 * int(n_harmonics),
        1,
        int(width),
        int(depth),
        activation=_ACTIVATIONS[activation],
        dtype=_float_dtype(),
        key=key,
    )
    return PeriodicPINN(mlp, float(length), int(n_harmonics), t_min, t_max)


# --------------------------------------------------------------------------- FNO


@final
class SpectralConv1d(eqx.Module):
    """(K v)^_k = R_k v̂_k for the m lowest rfft modes k < m, zero above (Li et al. 2021).

    ``weight_real``, ``weight_imag`` have shape (m, width_in, width_out): R = real + i imag.
    """

    weight_real: Float[Array, "m i o"]
    weight_imag: Float[Array, "m i o"]

    @property
    def modes(self) -> int:
        return self.weight_real.shape[0]

    def __call__(self, v: Float[Array, "n i"]) -> Float[Array, "n o"]:
        n = v.shape[0]
        if n // 2 + 1 < self.modes:
            raise ValueError(f"a grid of {n} points has fewer than {self.modes} rfft modes")
        v_hat = jnp.fft.rfft(v, axis=0)[: self.modes]
        weight = self.weight_real + 1j * self.weight_imag
        out = jnp.einsum("ki,kio->ko", v_hat, weight)
        out = jnp.pad(out, ((0, n // 2 + 1 - self.modes), (0, 0)))
        return jnp.fft.irfft(out, n=n, axis=0)


@final
class FourierNeuralOperator1d(eqx.Module):
    """G_θ(u₀, t) = u₀ + s Q(v^L) (module docstring); build with
    :func:`fourier_neural_operator_1d`."""

    lift: eqx.nn.Linear
    spectral: tuple[SpectralConv1d, ...]
    pointwise: tuple[eqx.nn.Linear, ...]
    project_hidden: eqx.nn.Linear
    project_out: eqx.nn.Linear
    n: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)

    def apply(self, u0: Float[Array, "m C"], t: ArrayLike) -> Float[Array, "m C"]:
        """G_θ(u₀, t) on any grid of m points with ⌊m/2⌋ + 1 ≥ ``modes``."""
        t = _scalar_time(t)
        u0 = jnp.asarray(u0)
        if u0.ndim != 2 or u0.shape[1] != self.channels:
            raise ValueError(
                f"u0 must have shape (m, {self.channels}) (channels last, one state), got "
                f"{u0.shape}; batch with jax.vmap"
            )
        s = (t - self.t_min) / (self.t_max - self.t_min)
        inputs = jnp.concatenate([u0, jnp.broadcast_to(s, (u0.shape[0], 1))], axis=1)
        v = jax.vmap(self.lift)(inputs)
        last = len(self.spectral) - 1
        for i, (conv, linear) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            v = conv(v) + jax.vmap(linear)(v)
            if i < last:
                v = jax.nn.gelu(v)
        hidden = jax.nn.gelu(jax.vmap(self.project_hidden)(v))
        return u0 + s * jax.vmap(self.project_out)(hidden)

    def operator(self, u0: Float[Array, "n C"], t: ArrayLike) -> Float[Array, "n C"]:
        """The state at time t from u₀ = q(t_min) on the training grid, shape (n, C)."""
        if jnp.shape(u0) != (self.n, self.channels):
            raise ValueError(
                f"u0 must have shape ({self.n}, {self.channels}) (the training grid, channels "
                f"last, one state), got {jnp.shape(u0)}; batch with jax.vmap, or use apply() "
                "on another grid"
            )
        return self.apply(u0, t)


def fourier_neural_operator_1d(
    *,
    n: int,
    width: int,
    modes: int,
    layers: int,
    t_min: float,
    t_max: float,
    channels: int = 1,
    projection_width: int | None = None,
    key: PRNGKeyArray,
) -> FourierNeuralOperator1d:
    """Build a :class:`FourierNeuralOperator1d` (a checkpoint builder).

    Parameters
    ----------
    n : int
        Grid points of the training grid (checked by ``operator``).
    width : int
        Channels of the hidden state v.
    modes : int
        m, rfft modes kept by each spectral convolution (1 ≤ m ≤ ⌊n/2⌋ + 1).
    layers : int
        Number of Fourier layers (≥ 1).
    t_min, t_max : float
        Time window; s = (t − t_min)/(t_max − t_min) is the time channel.
    channels : int, default 1
        C, channels of the state.
    projection_width : int, optional
        Hidden width of the projection Q (default 2 × width).
    key : PRNG key
        Initialisation (keyword-only, no default). Spectral weights are uniform on
        [−1/width, 1/width] in both parts; the linear maps use equinox's default.
    """
    n, width, modes, layers, channels = int(n), int(width), int(modes), int(layers), int(channels)
    if not 1 <= modes <= n // 2 + 1:
        raise ValueError(f"modes must be in [1, n//2 + 1] = [1, {n // 2 + 1}], got {modes}")
    if layers < 1 or width < 1 or channels < 1:
        raise ValueError(f"need layers, width, channels >= 1, got {layers}, {width}, {channels}")
    t_min, t_max = _check_window(t_min, t_max)
    hidden = int(projection_width or 2 * width)
    dtype = _float_dtype()
    lift_key, hidden_key, out_key, *layer_keys = jax.random.split(key, 3 + 3 * layers)
    scale = 1.0 / width
    spectral, pointwise = [], []
    for i in range(layers):
        real_key, imag_key, linear_key = layer_keys[3 * i : 3 * i + 3]
        shape = (modes, width, width)
        spectral.append(
            SpectralConv1d(
                jax.random.uniform(real_key, shape, dtype, -scale, scale),
                jax.random.uniform(imag_key, shape, dtype, -scale, scale),
            )
        )
        pointwise.append(eqx.nn.Linear(width, width, dtype=dtype, key=linear_key))
    return FourierNeuralOperator1d(
        lift=eqx.nn.Linear(channels + 1, width, dtype=dtype, key=lift_key),
        spectral=tuple(spectral),
        pointwise=tuple(pointwise),
        project_hidden=eqx.nn.Linear(width, hidden, dtype=dtype, key=hidden_key),
        project_out=eqx.nn.Linear(hidden, channels, dtype=dtype, key=out_key),
        n=n,
        channels=channels,
        t_min=t_min,
        t_max=t_max,
    )

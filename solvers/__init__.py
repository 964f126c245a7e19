"""Reference solvers in JAX: exact solutions and validated numerical methods.

This layer imports JAX, equinox and diffrax only; it knows nothing of certificates.
Problems (equation, data, time window, exact quantities) are added one module each,
with one line in the problem registry.
"""

__all__: list[str] = []

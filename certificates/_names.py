"""Names fixed by the certificate schema: groups, dimensions, variables, attributes.

Every string that appears in a certificate file is spelled here once, so the writer,
the validator, the gate and the report renderers cannot drift apart. The meaning of
each name is documented in ``certificates/SCHEMA.md``.
"""

from __future__ import annotations

import enum
from typing import Final

SCHEMA_VERSION: Final = "1.2.0"
"""Version of the written contract (semantic versioning; readers accept the same major)."""

# --- root attributes ---------------------------------------------------------------
ATTR_SCHEMA_VERSION: Final = "schema_version"
ATTR_CREATED_AT: Final = "created_at"
ATTR_TOOL_VERSION: Final = "tool_version"
ATTR_JAX_VERSION: Final = "jax_version"
ATTR_BACKEND: Final = "backend"
ATTR_X64: Final = "x64"
ATTR_SEED: Final = "seed"
ATTR_PROBLEM_ID: Final = "problem_id"
ATTR_PROBLEM_JSON: Final = "problem_json"
ATTR_MODEL_SPEC: Final = "model_spec"
ATTR_MODEL_SHA256: Final = "model_sha256"
ATTR_CONFIG_JSON: Final = "config_json"
ATTR_BOUNDS_JSON: Final = "bounds_json"
ATTR_CONFIDENCE: Final = "confidence"
ATTR_CORRECTION: Final = "correction"
ATTR_VERDICT: Final = "verdict"
ATTR_CONTENT_SHA256: Final = "content_sha256"

# --- groups, dimensions, coordinates -----------------------------------------------
VERDICTS_GROUP: Final = "verdicts"
ROW_DIM: Final = "row"
TIME_DIM: Final = "time"

# --- per-check variables inside a family group ---------------------------------------
# A check named ``c`` is stored as the estimate variable ``c`` plus these companions.
SUFFIX_STDERR: Final = "_stderr"
SUFFIX_LOWER: Final = "_lower"
SUFFIX_UPPER: Final = "_upper"
SUFFIX_N_SAMPLES: Final = "_n_samples"
SUFFIX_REASON: Final = "_reason"
CHECK_SUFFIXES: Final = (SUFFIX_STDERR, SUFFIX_LOWER, SUFFIX_UPPER, SUFFIX_N_SAMPLES, SUFFIX_REASON)

# Attributes of an estimate variable (what makes a variable a *check*).
ATTR_UNITS: Final = "units"
ATTR_LONG_NAME: Final = "long_name"
ATTR_FORMULA_ID: Final = "formula_id"
ATTR_NORMALISER: Final = "normaliser"
ATTR_EPS: Final = "eps"
ATTR_EVIDENCE: Final = "evidence"
ATTR_INTERVAL_METHOD: Final = "interval_method"
ATTR_FAMILY: Final = "family"
ATTR_DESCRIPTION: Final = "description"

# --- the /verdicts table -------------------------------------------------------------
COL_CHECK: Final = "check"
COL_GROUP: Final = "group"
COL_TIME: Final = "time"
COL_ESTIMATE: Final = "estimate"
COL_STDERR: Final = "stderr"
COL_LOWER: Final = "lower"
COL_UPPER: Final = "upper"
COL_THRESHOLD: Final = "threshold"
COL_COMPARISON: Final = "comparison"
COL_VERDICT: Final = "verdict"
COL_EVIDENCE: Final = "evidence"
COL_CONFIDENCE: Final = "confidence"
COL_INTERVAL_METHOD: Final = "interval_method"
COL_N_SAMPLES: Final = "n_samples"
COL_REASON: Final = "reason"

VERDICT_COLUMNS: Final = (
    COL_CHECK,
    COL_GROUP,
    COL_TIME,
    COL_ESTIMATE,
    COL_STDERR,
    COL_LOWER,
    COL_UPPER,
    COL_THRESHOLD,
    COL_COMPARISON,
    COL_VERDICT,
    COL_EVIDENCE,
    COL_CONFIDENCE,
    COL_INTERVAL_METHOD,
    COL_N_SAMPLES,
    COL_REASON,
)


class Verdict(enum.StrEnum):
    """Outcome of comparing a confidence interval with a bound."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


class Evidence(enum.StrEnum):
    """How strongly an estimate supports its verdict.

    EXACT: computed in closed form or deterministically (no sampling error).
    STATISTICAL: a Monte Carlo estimate with a confidence interval that holds at the
    recorded confidence level under the stated assumptions (CLT or Chebyshev).
    EMPIRICAL: an interval or value without a probabilistic guarantee (e.g. from a
    finite-difference fallback or a heuristic).
    """

    EXACT = "EXACT"
    STATISTICAL = "STATISTICAL"
    EMPIRICAL = "EMPIRICAL"


class Comparison(enum.StrEnum):
    """Direction of a bound: the estimate must be at most (``<=``) or at least (``>=``) τ."""

    AT_MOST = "<="
    AT_LEAST = ">="


class IntervalMethod(enum.StrEnum):
    """How the confidence interval of an estimate is (re)built from stored statistics.

    EXACT: lower = upper = estimate.
    NORMAL: estimate ± z_{1-α/2} · stderr (two-sided CLT interval).
    CHEBYSHEV: estimate ± stderr / sqrt(α) (distribution-free, needs finite variance).
    FIXED: the stored lower/upper, valid at the stored confidence only.
    """

    EXACT = "exact"
    NORMAL = "normal"
    CHEBYSHEV = "chebyshev"
    FIXED = "fixed"


class Correction(enum.StrEnum):
    """Multiple-comparison control across the k random intervals of one certificate."""

    BONFERRONI = "bonferroni"
    NONE = "none"

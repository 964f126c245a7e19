"""Problem registry: ids, problem files, and one-line errors."""

from __future__ import annotations

import json

import pytest

from solvers._problem import AbstractExactMarginals, AbstractProblem, ProblemError
from solvers._registry import get_problem, load_problem_file, problem_ids

DOCUMENTED_FILE = """\
id = "my-ou-mixture"
family = "linear-sde-gmm"
[sde]
kind = "ou"            # "ou" (drift -rate*x, diffusion g), "vp" (beta_min, beta_max), "ve" (sigma_min, sigma_max)
rate = 1.0
diffusion = 1.0
t_min = 1e-3
t_max = 10.0
times = [0.1, 0.5, 1.0, 3.0]   # optional default certification times
[data]
weights = [0.5, 0.5]
means = [[-1.0, 0.0], [1.0, 0.0]]
covariances = [[[0.2, 0.0], [0.0, 0.2]], [[0.2, 0.0], [0.0, 0.2]]]
"""  # noqa: E501 (the issue's documented file, verbatim)


def test_builtin_ids():
    assert set(problem_ids()) >= {
        "landau-bkw-2d",
        "landau-bkw-3d",
        "vp-gmm-2d",
        "ve-gmm-2d",
        "ou-gmm-2d",
    }


@pytest.mark.parametrize("problem_id", problem_ids())
def test_builtin_problems_are_consistent(problem_id):
    problem = get_problem(problem_id)
    assert isinstance(problem, AbstractProblem)
    assert problem.problem_id == problem_id
    assert problem.t_min < problem.t_max
    assert all(problem.t_min <= t <= problem.t_max for t in problem.default_times)
    assert list(problem.default_times) == sorted(set(problem.default_times))
    json.dumps(problem.parameters())  # problem_json must be serialisable


@pytest.mark.parametrize("problem_id", ["landau-bkw-2d", "landau-bkw-3d"])
def test_landau_defaults_avoid_the_singular_initial_time(problem_id):
    problem = get_problem(problem_id)
    assert isinstance(problem, AbstractExactMarginals)
    if problem_id == "landau-bkw-2d":
        # the Hyvärinen integrand has infinite variance at t = 0 (MATH.md §1.3 b)
        assert min(problem.default_times) > 0.0


def test_documented_problem_file(tmp_path):
    path = tmp_path / "problem.toml"
    path.write_text(DOCUMENTED_FILE)
    problem = get_problem(path)
    assert problem.problem_id == "my-ou-mixture"
    assert problem.dim == 2
    assert tuple(problem.default_times) == (0.1, 0.5, 1.0, 3.0)
    assert load_problem_file(path).parameters() == problem.parameters()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("id = [\n", "not valid TOML"),
        ('id = "x"\nfamily = "heat"\n', "family 'heat'"),
        ('id = "x"\n', "family None"),
    ],
)
def test_invalid_problem_files(tmp_path, text, fragment):
    path = tmp_path / "problem.toml"
    path.write_text(text)
    with pytest.raises(ProblemError, match=fragment) as raised:
        get_problem(path)
    assert str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unknown_id_lists_known_ids():
    with pytest.raises(ProblemError, match="unknown problem 'landau-bkw-4d'") as raised:
        get_problem("landau-bkw-4d")
    assert "landau-bkw-2d" in str(raised.value)


def test_missing_problem_file(tmp_path):
    with pytest.raises(ProblemError, match="does not exist"):
        get_problem(tmp_path / "nope.toml")

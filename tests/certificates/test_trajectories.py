"""Trajectory artefacts: round trip, files from plain xarray/netCDF4, validation, no JAX."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

import certificates as cert
from certificates import TrajectoryArtefact, TrajectoryError, read_trajectories, write_trajectories

REPO = Path(__file__).resolve().parents[2]
T, N, D = 3, 5, 2


def full_artefact() -> TrajectoryArtefact:
    rng = np.random.default_rng(0)
    return TrajectoryArtefact(
        time=np.array([0.0, 0.5, 1.0]),
        positions=rng.normal(size=(T, N, D)),
        weights=rng.uniform(0.1, 1.0, size=N),
        score=rng.normal(size=(T, N, D)),
        score_divergence=rng.normal(size=(T, N)),
        log_density=rng.normal(size=(T, N)),
        velocity=rng.normal(size=(T, N, D)),
        step_time=np.array([0.0, 0.25, 0.5, 0.75]),
        second_moment_increment=np.array([1e-3, 2e-3, 3e-3, 4e-3]),
        problem_id="landau-bkw-2d",
        stepper="forward_euler",
        step_size=0.25,
        producer="test",
    )


ARRAYS = [
    f.name
    for f in dataclasses.fields(TrajectoryArtefact)
    if f.name not in ("problem_id", "stepper", "step_size", "producer")
]


def assert_same(a: TrajectoryArtefact, b: TrajectoryArtefact) -> None:
    for name in ARRAYS:
        left, right = getattr(a, name), getattr(b, name)
        if left is None:
            assert right is None, name
        else:
            # float64 written and read back: bit-identical
            np.testing.assert_array_equal(left, right, err_msg=name)
    for name in ("problem_id", "stepper", "step_size", "producer"):
        assert getattr(a, name) == getattr(b, name), name


def test_round_trip_every_field(tmp_path):
    artefact = full_artefact()
    assert_same(artefact, read_trajectories(write_trajectories(tmp_path / "a.nc", artefact)))


def test_round_trip_minimal_sample_artefact_writes_no_absent_attributes(tmp_path):
    artefact = TrajectoryArtefact(time=np.array([0.3]), positions=np.ones((1, 4, 3)))
    path = write_trajectories(tmp_path / "s.nc", artefact)
    read = read_trajectories(path)
    assert_same(artefact, read)
    assert read.is_sample
    np.testing.assert_array_equal(read.particle_weights(), np.full(4, 0.25))
    with netCDF4.Dataset(path) as handle:
        assert set(handle.ncattrs()) == {"artefact", "artefact_version", "producer"}
        assert set(handle.variables) == {"time", "positions"}
        assert handle.variables["positions"].dimensions == ("time", "particle", "dim")


def test_arrays_are_float64_and_read_only():
    artefact = TrajectoryArtefact(time=[0, 1], positions=np.zeros((2, 3, 1), np.float32))
    assert artefact.positions.dtype == np.float64
    assert artefact.time.dtype == np.float64
    with pytest.raises(ValueError, match="read-only"):
        artefact.positions[0, 0, 0] = 1.0


def test_file_written_by_plain_xarray_reads(tmp_path):
    # What docs/trajectories.md tells a PyTorch user to do (float32 tensors, no weights).
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 2)).astype(np.float32)
    xr.Dataset(
        {
            "positions": (("time", "particle", "dim"), x),
            "score": (("time", "particle", "dim"), -x),
        },
        coords={"time": [0.1, 0.2]},
        attrs={
            "artefact": "solvercert-trajectories",
            "artefact_version": "1.0.0",
            "problem_id": "vp-gmm-2d",
            "stepper": "heun",
            "step_size": 0.05,
        },
    ).to_netcdf(tmp_path / "x.nc", engine="netcdf4")
    read = read_trajectories(tmp_path / "x.nc")
    np.testing.assert_array_equal(read.positions, x.astype(np.float64))
    np.testing.assert_array_equal(read.score, -x.astype(np.float64))
    assert (read.problem_id, read.stepper, read.step_size) == ("vp-gmm-2d", "heun", 0.05)
    assert read.weights is None


def write_raw(path: Path, variables: dict, attrs: dict | None = None) -> Path:
    with netCDF4.Dataset(path, "w") as handle:
        for name, (dims, value) in variables.items():
            for dim, size in zip(dims, np.shape(value), strict=True):
                if dim not in handle.dimensions:
                    handle.createDimension(dim, size)
            handle.createVariable(name, np.asarray(value).dtype, dims)[...] = value
        handle.setncatts(
            {"artefact": "solvercert-trajectories", "artefact_version": "1.0.0"}
            if attrs is None
            else attrs
        )
    return path


GOOD = {
    "time": (("time",), [0.0, 1.0]),
    "positions": (("time", "particle", "dim"), np.ones((2, 3, 2))),
}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"time": np.array([0.0, 0.0, 1.0])}, "strictly increasing"),
        ({"time": np.array([0.0, 1.0])}, "3 times"),
        ({"positions": np.ones((3, 5))}, "dims"),
        ({"positions": np.full((T, N, D), np.nan)}, "NaN"),
        ({"score": np.ones((T, N, D + 1))}, "'score' must have shape"),
        ({"log_density": np.ones((T, N + 1))}, "'log_density' must have shape"),
        ({"weights": -np.ones(N)}, "non-negative"),
        ({"weights": np.zeros(N)}, "sum to zero"),
        ({"second_moment_increment": None}, "go together"),
        ({"step_time": np.array([0.0, 0.5, 0.25, 0.75])}, "'step_time' must be strictly"),
        ({"step_time": np.array([0.0, 0.25, 0.5, 1.0])}, "must lie in"),
        ({"second_moment_increment": -np.ones(4)}, "non-negative"),
        ({"step_size": 0.0}, "step_size"),
        ({"stepper": 3}, "stepper"),
        ({"positions": np.array([[["a"]]])}, "real numbers"),
    ],
)
def test_invalid_artefacts_raise_one_line_errors(changes, match):
    fields = {
        f.name: getattr(full_artefact(), f.name) for f in dataclasses.fields(TrajectoryArtefact)
    }
    with pytest.raises(TrajectoryError, match=match) as info:
        TrajectoryArtefact(**{**fields, **changes})
    assert "\n" not in str(info.value)


def test_write_validates_again_and_leaves_the_old_file(tmp_path):
    path = write_trajectories(tmp_path / "a.nc", full_artefact())
    before = path.read_bytes()
    broken = full_artefact()
    # An in-place change through a view bypasses construction; the writer checks again.
    object.__setattr__(broken, "time", np.array([1.0, 0.5, 0.0]))
    with pytest.raises(TrajectoryError, match="strictly increasing"):
        write_trajectories(path, broken)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]  # no temporary left


def test_error_class_maps_to_invalid_input():
    # verify/cli.py maps CertificateError to exit 4; TrajectoryError must be one.
    assert issubclass(TrajectoryError, cert.CertificateError)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p, "no such file"),
        (lambda p: (p.mkdir(), p)[1], "is a folder"),
        (lambda p: (p.write_text("time,x\n0,1\n"), p)[1], "not a NetCDF-4 file"),
        (lambda p: write_raw(p, GOOD, {"title": "something else"}), "not a trajectory artefact"),
        (
            lambda p: write_raw(
                p, GOOD, {"artefact": "solvercert-trajectories", "artefact_version": "2.0.0"}
            ),
            "not readable by this version",
        ),
        (
            lambda p: write_raw(
                p, GOOD, {"artefact": "solvercert-trajectories", "artefact_version": "one"}
            ),
            "MAJOR.MINOR.PATCH",
        ),
        (lambda p: write_raw(p, {"time": GOOD["time"]}), "'positions' is missing"),
        (
            lambda p: write_raw(p, {**GOOD, "weights": (("time",), [1.0, 1.0])}),
            "'weights' must have dims",
        ),
        (
            lambda p: write_raw(p, {**GOOD, "weights": (("particle",), [1.0, -1.0, 1.0])}),
            "non-negative",
        ),
        (
            lambda p: write_raw(
                p,
                GOOD,
                {
                    "artefact": "solvercert-trajectories",
                    "artefact_version": "1.0.0",
                    "step_size": "fast",
                },
            ),
            "step_size",
        ),
    ],
)
def test_unreadable_or_foreign_files_raise_one_line_errors(tmp_path, make, match):
    path = make(tmp_path / "bad.nc")
    with pytest.raises(TrajectoryError, match=match) as info:
        read_trajectories(path)
    assert "\n" not in str(info.value)
    assert str(tmp_path / "bad.nc") in str(info.value)


def test_truncated_file(tmp_path):
    path = write_trajectories(tmp_path / "a.nc", full_artefact())
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(TrajectoryError, match="corrupt or truncated") as info:
        read_trajectories(path)
    assert "\n" not in str(info.value)


def test_a_certificate_is_not_a_trajectory_artefact(tmp_path):
    from tests.helpers import make_certificate

    path = cert.write_certificate(make_certificate(), tmp_path / "c.nc")
    with pytest.raises(TrajectoryError, match="not a trajectory artefact"):
        read_trajectories(path)


SCRIPT = textwrap.dedent(
    """
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np

    import certificates as cert

    artefact = cert.TrajectoryArtefact(
        time=np.array([0.0, 1.0]), positions=np.ones((2, 3, 2)), stepper="rk4"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = cert.write_trajectories(Path(folder) / "t.nc", artefact)
        read = cert.read_trajectories(path)
        assert read.stepper == "rk4", read
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"jax", "jaxlib"})
    assert not loaded, loaded
    print("ok")
    """
)


def test_trajectories_never_import_jax():
    # A fresh interpreter: this test session has JAX loaded by conftest.py.
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"

"""The certificate layer works on a machine without JAX: it never imports it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    import tempfile
    from pathlib import Path

    import certificates as cert
    from tests.helpers import make_certificate

    certificate = make_certificate()
    with tempfile.TemporaryDirectory() as folder:
        path = cert.write_certificate(certificate, Path(folder) / "c.nc")
        read = cert.read_certificate(path)
        assert cert.schema_problems(read.tree) == []
        result = cert.gate(read, cert.parse_bound_expressions(["score_gap<=1e-3"]))
        assert result.verdict is cert.Verdict.FAIL, result
        regated = read.with_gate(result)
        cert.read_certificate(cert.write_certificate(regated, Path(folder) / "r.nc"))
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"jax", "jaxlib"})
    assert not loaded, loaded
    print("ok")
    """
)


def test_certificates_never_import_jax():
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

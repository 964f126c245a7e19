from tests.helpers import make_certificate

import certificates as cert


def test_default_certificate_passes_and_validates():
    certificate = make_certificate()
    assert certificate.verdict is cert.Verdict.PASS, [r.reason for r in certificate.rows]
    assert cert.schema_problems(certificate.tree) == []

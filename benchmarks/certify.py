"""Benchmark of ``verify certify``: wall time, peak memory and where the time goes.

Cases (the certify issue's performance targets):

* ``vp``: ``vp-gmm-2d``, the exact score as the model, 10⁴ samples at 8 times;
* ``bkw``: ``landau-bkw-2d``, the exact flow + score (PINN-PM style) model, 10⁴ particles at
  6 times.

Each case runs in a fresh subprocess (so peak RSS is its own) through the library entry
point, with x64 on as in the CLI. Stage times come from the progress callback; a second
run in the same process shows the cost without compilation (the tool compiles once per
run: time is a traced argument). Usage::

    python benchmarks/certify.py            # both cases, a table on stdout
    python benchmarks/certify.py --case vp --samples 2000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "vp": {
        "problem": "vp-gmm-2d",
        "model": "tests.verify.models_for_certify:vp_exact",
        "times": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0),
    },
    "bkw": {
        "problem": "landau-bkw-2d",
        "model": "tests.verify.models_for_certify:bkw2_flow",
        "times": (0.5, 1.0, 2.0, 3.0, 4.0, 5.0),
    },
}


def _child(case: str, samples: int) -> dict:
    # The models live in tests/verify/models_for_certify.py (exact solutions as models).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import jax

    jax.config.update("jax_enable_x64", True)
    from solvers import get_problem
    from verify._certify import CertifyConfig, certify
    from verify._model import load_model

    spec = CASES[case]
    problem = get_problem(spec["problem"])
    config = CertifyConfig(times=spec["times"], n_samples=samples, seed=0)
    model = load_model(spec["model"], role=None, dim=problem.dim, probe_time=spec["times"][0])
    runs = []
    for _ in range(2):
        stages: list[tuple[str, float]] = []

        def progress(description, done, total, stages=stages):
            stages.append((description, time.perf_counter()))

        start = time.perf_counter()
        result = certify(problem, model, config, progress=progress)
        wall = time.perf_counter() - start
        split = {
            name: round(stages[i + 1][1] - stamp, 2) for i, (name, stamp) in enumerate(stages[:-1])
        }
        runs.append({"wall_s": round(wall, 2), "stages_s": split, "verdict": str(result.verdict)})
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "case": case,
        "samples": samples,
        "times": len(spec["times"]),
        "backend": jax.default_backend(),
        "first_run": runs[0],
        "second_run": runs[1],
        "peak_rss_mib": round(peak_mib),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.samples)))
        return
    for case in args.case or sorted(CASES, reverse=True):
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--samples", str(args.samples)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Throughput of the Landau particle velocity: pair interactions per second.

    python benchmarks/landau_pairwise.py [--sizes 4096 16384 65536] [--json out.json]

For N particles of the 2D BKW solution (t = 1, exact score, weights 1/N) it times one
evaluation of U_i = −Σ_j w_j A(V_i − V_j)(s_i − s_j) in float64 on the default JAX device and
reports N² / seconds (best of ``--repeats`` after a warm-up call that compiles; every call ends
with ``block_until_ready``) for

* ``blocked``  the blocked pairwise path, Coulomb γ = −3 (O(N²) work, O(block·N) memory);
* ``moments``  the O(N) moment path for Maxwell molecules γ = 0 (its *effective* pairs/s);
* ``naive``    the broadcast reference (γ = −3), skipped where N·N·d·8 bytes exceeds
  ``--naive-limit-gb`` (it materialises several such arrays).

Issue targets (2-core CPU, float64, 2D): blocked ≥ 0.5·10⁹ pairs/s at N = 16,384, and
≥ 10× the naive path in the same run (compared at the largest N the naive path ran).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)  # entry point: float64 throughout

import jax.numpy as jnp  # noqa: E402

from solvers._bkw import landau_bkw_2d  # noqa: E402
from solvers._landau_kernel import LandauKernel, landau_velocity  # noqa: E402

TARGET_PAIRS_PER_S = 0.5e9
TARGET_N = 16_384
TARGET_SPEEDUP = 10.0


def best_time(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def ensemble(n: int, seed: int):
    problem = landau_bkw_2d()
    t = 1.0
    v = problem.sample(t, n, key=jax.random.key(seed))
    s = jax.vmap(problem.score, (None, 0))(t, v)
    return v, jnp.full((n,), 1.0 / n), s


def run(args: argparse.Namespace) -> dict:
    device = jax.devices()[0]
    backend = jax.default_backend()
    block = args.block_size or (128 if backend == "cpu" else 4096)
    paths = {
        "blocked": (LandauKernel(gamma=-3.0, C_gamma=1 / 16, block_size=block), "blocked"),
        "moments": (LandauKernel(gamma=0.0, C_gamma=1 / 16, block_size=block), "moments"),
        "naive": (LandauKernel(gamma=-3.0, C_gamma=1 / 16, block_size=block), "naive"),
    }
    rows = []
    for n in args.sizes:
        v, w, s = ensemble(n, args.seed)
        for name, (kernel, method) in paths.items():
            row = {"path": name, "gamma": kernel.gamma, "N": n}
            naive_gb = n * n * 2 * 8 / 1e9
            if name == "naive" and naive_gb > args.naive_limit_gb:
                row["skipped"] = f"N*N*d*8 = {naive_gb:.1f} GB > {args.naive_limit_gb} GB"
            else:

                def fn(v, w, s, kernel=kernel, method=method):
                    return landau_velocity(kernel, v, w, s, method=method)

                seconds = best_time(fn, (v, w, s), args.repeats)
                row.update(seconds=seconds, pairs_per_second=n * n / seconds)
            rows.append(row)
            print(format_row(row), flush=True)
    return {
        "benchmark": "landau_pairwise",
        "device": str(device),
        "device_kind": getattr(device, "device_kind", ""),
        "backend": backend,
        "jax_version": jax.__version__,
        "x64": bool(jax.config.jax_enable_x64),
        "dtype": "float64",
        "dim": 2,
        "block_size": block,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "results": rows,
        "targets": check_targets(rows),
    }


def format_row(row: dict) -> str:
    head = f"{row['path']:>8}  γ = {row['gamma']:>4}  N = {row['N']:>7,}"
    if "skipped" in row:
        return f"{head}  skipped: {row['skipped']}"
    rate = row["pairs_per_second"] / 1e9
    return f"{head}  {row['seconds'] * 1e3:10.2f} ms  {rate:9.3f}e9 pairs/s"


def check_targets(rows: list[dict]) -> dict:
    timed = {(r["path"], r["N"]): r for r in rows if "seconds" in r}
    out: dict = {}
    blocked = timed.get(("blocked", TARGET_N))
    if blocked is not None:
        rate = blocked["pairs_per_second"]
        out["blocked_pairs_per_second_at_16384"] = rate
        out["blocked_rate_target_met"] = rate >= TARGET_PAIRS_PER_S
    naive_sizes = [n for (p, n) in timed if p == "naive" and ("blocked", n) in timed]
    if naive_sizes:
        n = max(naive_sizes)
        speedup = timed[("naive", n)]["seconds"] / timed[("blocked", n)]["seconds"]
        out["speedup_vs_naive"] = {"N": n, "factor": speedup}
        out["speedup_target_met"] = speedup >= TARGET_SPEEDUP
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16_384, 65_536])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls; the best counts")
    parser.add_argument("--block-size", type=int, default=None, help="rows per block")
    parser.add_argument("--naive-limit-gb", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="write the results here")
    args = parser.parse_args()
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", "")
    print(f"backend {jax.default_backend()}  device {device} ({kind})")
    print(f"jax {jax.__version__}  float64  d = 2  repeats {args.repeats}")
    report = run(args)
    targets = report["targets"]
    if "blocked_pairs_per_second_at_16384" in targets:
        rate = targets["blocked_pairs_per_second_at_16384"]
        verdict = "met" if targets["blocked_rate_target_met"] else "NOT met"
        print(f"target blocked ≥ 0.5e9 pairs/s at N = 16,384: {rate / 1e9:.3f}e9 ({verdict})")
    if "speedup_vs_naive" in targets:
        sp = targets["speedup_vs_naive"]
        verdict = "met" if targets["speedup_target_met"] else "NOT met"
        print(f"target blocked ≥ 10× naive (N = {sp['N']:,}): {sp['factor']:.1f}× ({verdict})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

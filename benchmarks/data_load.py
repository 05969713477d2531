"""Benchmark: first (decode) vs cached load of a JPEG-stored dataset, each in a fresh Python process.

The cold run gets an empty temporary SELFGROW_CACHE, so it decodes every JPEG and writes the
cache; the cached runs reuse that folder. Only the `selfgrow.data.load` call is timed (inside
the child process), so interpreter start-up and imports are excluded from both sides.

    python benchmarks/data_load.py --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def child(dataset: str, data_dir: str | None) -> None:
    """Time one load in this process and print seconds plus a digest of the pixels as JSON."""
    from selfgrow.data import load

    start = time.perf_counter()
    data = load(dataset, data_dir)
    seconds = time.perf_counter() - start
    digest = hashlib.sha1(data.x_train.numpy().tobytes() + data.x_test.numpy().tobytes()).hexdigest()[:12]
    print(json.dumps({"seconds": seconds, "digest": digest, "train": len(data.y_train), "test": len(data.y_test)}))


def timed_run(dataset: str, data_dir: str | None, cache: str) -> dict:
    """Run `child` in a fresh interpreter with SELFGROW_CACHE=cache and return its JSON report."""
    command = [sys.executable, __file__, "--child", "--dataset", dataset]
    if data_dir:
        command += ["--data-dir", data_dir]
    env = {**os.environ, "SELFGROW_CACHE": cache}
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="dataset root (default: $SELFGROW_DATA or ~/.cache/selfgrow)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--repeats", type=int, default=3, help="number of cached loads")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dataset, args.data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="selfgrow-bench-cache-") as cache:
        cold = timed_run(args.dataset, args.data_dir, cache)
        cached = [timed_run(args.dataset, args.data_dir, cache) for _ in range(args.repeats)]
    print(f"{args.dataset}: {cold['train']} train + {cold['test']} test images, each load in a fresh process")
    print(f"{'run':<10}{'cache':<8}{'load s':>9}  pixels sha1")
    print(f"{'first':<10}{'empty':<8}{cold['seconds']:>9.3f}  {cold['digest']}")
    for i, run in enumerate(cached, 1):
        print(f"{'cached ' + str(i):<10}{'warm':<8}{run['seconds']:>9.3f}  {run['digest']}")
    median = statistics.median(r["seconds"] for r in cached)
    same = all(r["digest"] == cold["digest"] for r in cached)
    print(f"speed-up first / median cached: {cold['seconds'] / median:.1f}x; cached pixels identical: {same}")


if __name__ == "__main__":
    main()

"""``python -m benchmarks.audit``: the audit's time and peak memory on large recordings.

Two workloads, each audited in a child process of its own (so that its
peak resident memory, ``ru_maxrss``, is the audit's alone):

* a hand-written NAG on 1M float32 elements for 50 steps, as a ``.npz``
  trajectory: every candidate nagref knows, replayed;
* a PyTorch model of about 10M parameters (two 2,236 x 2,236 linear
  layers) trained for 50 steps under ``nagref.record.torch``: a 4 GB
  ``.trajectory`` file, read lazily.

``--quick`` divides the sizes by 100. The files go to a temporary directory
(``--dir``), removed afterwards.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, resource, sys, time
import nagref
from nagref.auditing import audit_model
path = sys.argv[1]
start = time.perf_counter()
report = audit_model(path) if path.endswith(".trajectory") else nagref.audit(path)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "candidates": len(report.matches),
                  "bitwise": report.bitwise[:3]}))
"""


def _nag_npz(path: Path, n: int, steps: int) -> None:
    rng = np.random.default_rng(0)
    initial = rng.standard_normal(n).astype(np.float32)
    grads = rng.standard_normal((steps, n)).astype(np.float32)
    params = np.empty_like(grads)
    p, velocity = initial.copy(), np.zeros_like(initial)
    lr, mu = np.float32(0.01), np.float32(0.9)
    for t in range(steps):
        velocity = mu * velocity + lr * grads[t]
        p = p - velocity
        params[t] = p
    np.savez(path, initial=initial, grads=grads, params=params, lr=0.01, momentum=0.9,
             nesterov=False)  # fmt: skip


def _torch_run(path: Path, width: int, steps: int) -> None:
    torch = importlib.import_module("torch")
    record = importlib.import_module("nagref.record")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, width))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    x = torch.randn(8, width)
    with record.torch(opt, path, model=net):
        for _ in range(steps):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()


def _audit(path: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="sizes divided by 100")
    parser.add_argument("--dir", default=None, help="where the recordings go (default: a temp dir)")
    args = parser.parse_args(argv)
    scale = 100 if args.quick else 1
    with tempfile.TemporaryDirectory(dir=args.dir) as where:
        npz = Path(where) / "nag.npz"
        _nag_npz(npz, 1_000_000 // scale, 50)
        run = Path(where) / "model.trajectory"
        _torch_run(run, 2236 // (10 if args.quick else 1), 50)
        for name, path in (("1M float32 x 50 steps, .npz", npz),
                           ("torch model, 10M parameters x 50 steps", run)):  # fmt: skip
            size = path.stat().st_size / 1e6
            result = _audit(path)
            print(f"{name}: file {size:,.0f} MB; audit {result['seconds']:.2f} s, peak "
                  f"{result['peak_mb']:,.0f} MB, {result['candidates']} candidates; bitwise "
                  f"{result['bitwise']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmarks: nagref beside torch.optim.SGD and Optax, timed in one process.

Run ``python -m benchmarks`` (``--quick`` for small sizes). Not part of the
test suite: performance claims here are ratios measured side by side, never
timed assertions in tests.
"""

"""Replay the golden trajectories recorded from the live frameworks.

The files in this directory were recorded with
``python -m nagref.live.recordings conformance/vectors 4`` from the
framework versions named in each file. Replaying them needs only NumPy, so
the conventions stay checked where the frameworks are not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nagref.live import VARIANTS, compare, run_nagref
from nagref.live.recordings import read

HERE = Path(__file__).parent
FILES = sorted(HERE.glob("*.txt"))


def test_one_file_per_convention_variant_and_dtype() -> None:
    expected = {
        f"{c}-{v}-{d}.txt"
        for c, variants in VARIANTS.items()
        for v, ds in variants.items()
        for d in ds
    }
    assert {f.name for f in FILES} == expected


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_nagref_replays_the_recorded_trajectory(path: Path) -> None:
    cases = read(path)
    assert len(cases) >= 4
    for case in cases:
        spec = case.spec
        assert path.stem == f"{spec.convention}-{spec.variant}-{spec.dtype}"
        with np.errstate(all="ignore"):
            result = compare(spec, case.trajectory, run_nagref(spec, (case.initial, case.grads)))
        assert result.bitwise, f"{path.name}: {result.first} ({case.framework})"


def test_the_files_cover_special_values_and_simd_tails() -> None:
    for path in FILES:
        first = read(path)[0]
        assert first.spec.shape == (37,)
        assert first.spec.special > 0

"""The golden-vector text format: exact round trips and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nagref._compare import bitwise_equal
from nagref.live import Spec
from nagref.live.recordings import Recorded, read, write


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_write_read_round_trip_is_bit_exact(tmp_path: Path, dtype: str) -> None:
    info = np.finfo(dtype)
    values = np.array(
        [0.0, -0.0, info.smallest_subnormal, -info.max, np.inf, -np.inf, np.nan, 0.1], dtype
    )
    spec = Spec("tensorflow", "apply_momentum", dtype, (8,), 1, (0.1, 0.2))
    trajectory = [(values, values[::-1].copy()), (values * 2, None)]
    case = Recorded("tensorflow 0", spec, values, np.stack([values, values]), trajectory)
    write(tmp_path / "v.txt", [case, case])
    back = read(tmp_path / "v.txt")
    assert len(back) == 2
    assert back[0].spec == spec
    assert bitwise_equal(back[0].initial, values).all()
    assert back[0].trajectory[1][1] is None
    assert bitwise_equal(back[1].trajectory[0][1], values[::-1]).all()


def test_a_file_that_is_not_vectors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="not a nagref vectors file"):
        read(path)

"""nagref.audit: every candidate recognises its own trajectory; near misses and the rest."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import _apply, auditing, formulations
from nagref.auditing import Trajectory, format_report
from nagref.cli import main
from nagref.conventions import keras, optax, pytorch, tensorflow

LAMBDA = np.linspace(0.1, 2.0, 41)
LR, MU, STEPS = 0.05, 0.9, 12


def _record(
    step: Callable[[Any, Any, Any, int], tuple[Any, Any]], state: Any, dtype: str
) -> dict[str, Any]:
    """Run ``step`` on f = ½ Σ λ x² with the gradient at the stored parameter."""
    x = np.random.default_rng(3).standard_normal(LAMBDA.size).astype(dtype)
    lam = LAMBDA.astype(dtype)
    initial, grads, params = x.copy(), [], []
    with np.errstate(all="ignore"):
        for t in range(STEPS):
            g = (lam * x).astype(dtype)
            x, state = step(x, g, state, t)
            grads.append(g)
            params.append(x)
    return {"initial": initial, "grads": np.stack(grads), "params": np.stack(params)}


def _lr(t: int) -> float:
    return LR * (1 + 0.1 * t)  # a learning rate that changes every step


CASES: dict[str, tuple[Callable[..., Any], Any, bool]] = {
    "pytorch single-tensor, nesterov": (
        lambda p, g, s, t: pytorch.sgd(p, g, s, lr=_lr(t), momentum=MU, nesterov=True),
        None,
        True,
    ),
    "pytorch fused": (
        lambda p, g, s, t: pytorch.sgd(p, g, s, lr=_lr(t), momentum=MU, fused=True),
        None,
        False,
    ),
    "keras jax, nesterov": (
        lambda p, g, s, t: keras.sgd(
            p, g, s, learning_rate=_lr(t), momentum=MU, nesterov=True, backend="jax"
        ),
        None,
        True,
    ),
    "optax jit": (
        lambda p, g, s, t: optax.sgd(p, g, s, learning_rate=_lr(t), momentum=MU, jit=True),
        None,
        False,
    ),
    "tensorflow apply_momentum, nesterov": (
        lambda p, g, s, t: tensorflow.apply_momentum(
            p, s, g, lr=_lr(t), momentum=MU, use_nesterov=True
        ),
        "zeros",
        True,
    ),
    "formulations.bengio": (
        lambda p, g, s, t: formulations.bengio(p, g, s, epsilon=_lr(t), mu=MU, mu_next=MU),
        "zeros",
        True,
    ),
    "formulations.polyak": (
        lambda p, g, s, t: formulations.polyak(p, g, s, alpha=_lr(t), beta=MU),
        "copy",
        False,
    ),
    "nagref.momentum (lecture form)": (
        lambda p, g, s, t: nagref.momentum(p, g, s, lr=_lr(t), momentum=MU),
        "zeros",
        False,
    ),
}


def _save(tmp_path: Path, name: str, dtype: str, *, record_nesterov: bool) -> Path:
    step, state, nesterov = CASES[name]
    x0 = np.random.default_rng(3).standard_normal(LAMBDA.size).astype(dtype)
    initial_state = {"zeros": np.zeros_like(x0), "copy": x0.copy(), None: None}[state]
    arrays = _record(step, initial_state, dtype)
    arrays |= {"lr": np.array([_lr(t) for t in range(STEPS)]), "momentum": np.float64(MU)}
    if record_nesterov:
        arrays["nesterov"] = np.bool_(nesterov)
    path = tmp_path / "trajectory.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_each_candidate_recognises_its_own_trajectory(
    tmp_path: Path, name: str, dtype: str
) -> None:
    report = nagref.audit(_save(tmp_path, name, dtype, record_nesterov=False))
    assert name in report.bitwise
    assert report.exit_code == 0
    assert report.matches[0].status == "bitwise"
    one = report.verdict.startswith("VERDICT: bitwise: ")
    assert one == (len(report.bitwise) == 1)  # else: indistinguishable, every name given
    assert report.verdict.startswith("VERDICT: indistinguishable: ") != one
    assert name in report.verdict
    # with nesterov recorded, only that setting is tried
    recorded = nagref.audit(_save(tmp_path, name, dtype, record_nesterov=True))
    assert name in recorded.bitwise
    assert len(recorded.matches) < len(report.matches)


def test_a_one_ulp_change_is_a_near_match_pinned_to_its_step_and_element(tmp_path: Path) -> None:
    path = _save(tmp_path, "pytorch single-tensor, nesterov", "float32", record_nesterov=True)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["params"][2, 7] = np.nextafter(arrays["params"][2, 7], np.float32(np.inf))
    np.savez(path, **arrays)
    report = nagref.audit(path)
    assert report.bitwise == []
    assert report.exit_code == 1
    best = report.matches[0]
    assert best.status == "within"
    assert best.max_ulp == 1.0
    assert best.elements_differing == 1
    assert best.first is not None
    assert (best.first.step, best.first.index, best.first.ulps) == (3, (7,), 1.0)
    assert "no bitwise match; within 4 ULP" in report.verdict
    strict = nagref.audit(path, tolerance_ulps=0)
    assert strict.matches[0].status == "diverges"
    assert "leaves the recording at step 3, element [7]" in strict.verdict


def test_a_vector_file_audits_to_its_own_function(tmp_path: Path) -> None:
    assert (
        main(["vectors", "--out", str(tmp_path), "--convention", "keras", "--dtype", "float32"])
        == 0
    )
    report = nagref.audit(tmp_path / "keras-numpy-float32-lr-change-nesterov.json")
    assert "keras numpy, nesterov" in report.bitwise


RECORDINGS = Path(__file__).parents[2] / "conformance" / "recordings"


def test_a_recordings_dampening_weight_decay_and_maximize_are_replayed() -> None:
    audited = distinguished = 0
    for path in sorted(RECORDINGS.glob("pytorch-*.json")):
        spec = json.loads(path.read_text())["spec"]
        given = spec["dampening"] or spec["weight_decay"] or spec["maximize"]
        if not given or spec["variant"] not in ("single-tensor", "foreach", "compiled"):
            continue
        report = nagref.audit(path)
        assert f"pytorch {spec['variant']}" in [n.split(",")[0] for n in report.bitwise], path.name
        assert (report.dampening, report.weight_decay) == (
            spec["dampening"], spec["weight_decay"] or 0.0
        ), path.name  # fmt: skip
        assert report.maximize is spec["maximize"]
        first = format_report(report).splitlines()[0]
        assert ("maximize True" in first) is spec["maximize"], first
        audited += 1
        # the same arrays replayed without them: mostly, the variant no longer reproduces them
        tr = auditing.load(path)
        bare = Trajectory(tr.initial, tr.grads, tr.params, tr.lr, tr.momentum, tr.nesterov)
        plain = [n.split(",")[0] for n in nagref.audit(bare).bitwise]
        distinguished += f"pytorch {spec['variant']}" not in plain
    assert audited >= 30  # of the live suite's recordings
    assert distinguished > audited // 2, (distinguished, audited)


def test_the_command_line_prints_the_ranking_or_json_and_exits_by_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path, "optax jit", "float64", record_nesterov=False)
    assert main(["audit", str(path)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[-1].startswith(("VERDICT: bitwise: ", "VERDICT: indistinguishable"))
    assert "rank  candidate" in text
    assert main(["audit", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "optax jit" in data["bitwise"]
    assert data["matches"][0]["status"] == "bitwise"
    assert data["steps"] == STEPS
    with np.load(path) as loaded:
        arrays = dict(loaded)
    arrays["params"] = arrays["params"] * 1.5
    np.savez(path, **arrays)
    assert main(["audit", str(path), "--ulps", "2"]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("VERDICT: no match; closest: ")


def test_a_trajectory_object_and_a_bad_tolerance() -> None:
    x = np.ones(3)
    tr = Trajectory(
        x, np.ones((1, 3)), np.full((1, 3), 0.9), (0.1,), (0.0,), False, source="memory"
    )
    report = nagref.audit(tr)
    assert "nagref.sgd" in report.bitwise
    assert "audit of memory: 1 steps, float64" in format_report(report)
    with pytest.raises(ValueError, match="tolerance_ulps must be a finite number >= 0, got -1"):
        nagref.audit(tr, tolerance_ulps=-1)


@pytest.mark.parametrize(
    ("argument", "error", "message"),
    [
        ({"trajectory": 123}, TypeError, "trajectory must be a Trajectory .* got int 123"),
        ({"trajectory": b"t.npz"}, TypeError, "trajectory must be .* got bytes b't.npz'"),
        ({"tolerance_ulps": "4"}, TypeError, "tolerance_ulps must be a real number, got str '4'"),
        ({"tolerance_ulps": True}, TypeError, "tolerance_ulps must be a real number, got bool"),
        ({"tolerance_ulps": 10**400}, ValueError, "tolerance_ulps .* too large for a float"),
        ({"tolerance_ulps": 10**5000}, ValueError, "tolerance_ulps .* too large for a float"),
        ({"tolerance_ulps": math.nan}, ValueError, "tolerance_ulps .* >= 0, got nan"),
        ({"tolerance_ulps": -1}, ValueError, "tolerance_ulps .* >= 0, got -1"),
    ],
)
def test_audit_names_the_argument_it_refuses(
    argument: dict[str, Any], error: type[Exception], message: str
) -> None:
    x = np.ones(3)
    good = Trajectory(x, np.ones((1, 3)), np.ones((1, 3)), (0.1,), (0.0,), source="memory")
    kwargs: dict[str, Any] = {"trajectory": good, "tolerance_ulps": 4.0} | argument
    with pytest.raises(error, match=message) as info:
        nagref.audit(kwargs["trajectory"], tolerance_ulps=kwargs["tolerance_ulps"])
    assert not isinstance(info.value, OverflowError)


def test_the_audit_names_the_threads_of_the_recorded_two_thread_run() -> None:
    """The issue's case recorded from torch with 2 threads: 32,769 float16 elements cut into
    two chunks, each with its own scalar tail (elements 16384 and 32768 differ from one
    thread's)."""
    path = RECORDINGS / "pytorch-single-tensor-float16-4.json"
    assert json.loads(path.read_text())["spec"]["extra"] == {"threads": 2.0}
    report = nagref.audit(path)
    assert "pytorch single-tensor, 2+ threads" in report.bitwise  # more threads cut no more
    assert "pytorch single-tensor" not in report.bitwise
    one = next(m for m in report.matches if m.candidate == "pytorch single-tensor")
    assert one.first is not None
    assert one.elements_differing == 2
    assert one.first.index == (16384,)


@pytest.mark.parametrize(
    "name",
    [
        "keras-tensorflow-float32-0.json",
        "pytorch-foreach-bfloat16-1.json",
        "sklearn-update_params-float64-1.json",
        "mlx-eager-float16-2.json",
    ],
)
def test_candidates_that_run_one_computation_share_it_and_the_report_is_unchanged(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = RECORDINGS / name
    computed: list[int] = []
    run = _apply.run
    monkeypatch.setattr(_apply, "run", lambda *a: computed.append(1) or run(*a))
    shared = nagref.audit(path).to_json()
    calls_shared = len(computed)
    monkeypatch.setattr(auditing.replaying, "sharing", contextlib.nullcontext)
    computed.clear()
    alone = nagref.audit(path).to_json()
    assert shared == alone
    assert calls_shared < len(computed)  # some candidates coincide on every file here

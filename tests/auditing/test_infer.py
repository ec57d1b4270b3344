"""Unknown lr and momentum: inferred exactly from the first steps, then verified by the replay."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import nagref
from nagref.auditing import (
    Trajectory,
    TrajectoryError,
    audit_model,
    format_model_report,
    format_report,
)
from nagref.auditing.model_trajectory import LENGTH, MAGIC
from nagref.auditing.report import schema
from nagref.cli import main
from nagref.conventions import keras, optax, pytorch

Step = Callable[[Any, Any, Any, int], tuple[Any, Any]]


def _run(step: Step, state: Any, dtype: str, *, n: int = 64, steps: int = 8) -> dict[str, Any]:
    """``step`` on f = ½ Σ λ x², the gradient at the stored parameter."""
    rng = np.random.default_rng(5)
    lam = rng.uniform(0.1, 2.0, n).astype(dtype)
    x = rng.standard_normal(n).astype(dtype)
    initial, grads, params = x.copy(), [], []
    for t in range(steps):
        g = (lam * x).astype(dtype)
        x, state = step(x, g, state, t)
        grads.append(g)
        params.append(x.copy())
    return {"initial": initial, "grads": np.stack(grads), "params": np.stack(params)}


def _torch(lr: float, mu: float, nesterov: bool) -> Step:
    return lambda p, g, s, t: pytorch.sgd(p, g, s, lr=lr, momentum=mu, nesterov=nesterov)


def _save(tmp_path: Path, arrays: dict[str, Any], name: str = "run.npz") -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


RUNS = {  # name: (step, initial state, dtype, lr, momentum, a candidate that must match)
    "torch nesterov": (_torch(0.05, 0.9, True), None, "float32", 0.05, 0.9,
                       "pytorch single-tensor, nesterov"),
    "torch, an inexact lr": (_torch(0.0123, 0.95, False), None, "float32", 0.0123, 0.95,
                             "pytorch single-tensor"),
    "torch float64": (_torch(0.0123, 0.95, False), None, "float64", 0.0123, 0.95,
                      "pytorch single-tensor"),
    "keras on jax, float32 hyperparameters on float64": (
        lambda p, g, s, t: keras.sgd(p, g, s, learning_rate=0.0123, momentum=0.95,
                                     nesterov=True, backend="jax"),
        "zeros", "float64", 0.0123, 0.95, "keras jax, nesterov"),
    "optax jit": (
        lambda p, g, s, t: optax.sgd(p, g, s, learning_rate=0.0123, momentum=0.95, jit=True),
        None, "float32", 0.0123, 0.95, "optax jit"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(RUNS))
def test_a_run_without_lr_and_momentum_is_audited_with_the_values_inferred(
    tmp_path: Path, name: str
) -> None:
    step, state, dtype, lr, mu, who = RUNS[name]
    initial_state = np.zeros(64, dtype) if state == "zeros" else None
    report = nagref.audit(_save(tmp_path, _run(step, initial_state, dtype)))
    assert report.inference is not None
    assert report.inference.inferred == ("lr", "momentum")
    assert report.inference.steps == (1, 2)
    assert who in report.bitwise
    found = report.inference.of(who)
    assert found is not None
    assert (found.lr, found.momentum, found.exact) == (lr, mu, True)  # the decimals typed
    assert f"(lr {lr!r}, momentum {mu!r}: inferred from steps 1-2)" in report.verdict
    first = format_report(report).splitlines()[0]
    assert "; lr and momentum inferred from steps 1-2 (constant values assumed): " in first
    assert f"lr {lr!r}, momentum {mu!r} (" in first
    row = next(line for line in format_report(report).splitlines() if f"  {who}  " in line)
    assert f"{lr!r}, {mu!r}" in row


def test_only_what_the_file_lacks_is_inferred_and_infer_distrusts_the_rest(
    tmp_path: Path,
) -> None:
    arrays = _run(_torch(0.05, 0.9, True), None, "float32")
    report = nagref.audit(_save(tmp_path, arrays | {"lr": 0.05}))
    assert report.inference is not None
    assert report.inference.inferred == ("momentum",)
    assert "pytorch single-tensor, nesterov" in report.bitwise
    assert report.inference.summary().startswith("momentum inferred from steps 1-2")
    wrong = _save(tmp_path, arrays | {"lr": 0.1, "momentum": 0.9})  # the user was not sure
    assert nagref.audit(wrong).bitwise == []
    assert nagref.audit(wrong).inference is None
    again = nagref.audit(wrong, infer=True)
    assert again.inference is not None
    assert again.inference.inferred == ("lr", "momentum")
    assert "pytorch single-tensor, nesterov" in again.bitwise
    with pytest.raises(TypeError, match="infer must be True or False, got str 'yes'"):
        nagref.audit(wrong, infer="yes")  # type: ignore[arg-type]


def test_a_schedule_is_inferred_as_its_first_value_and_leaves_where_it_changes(
    tmp_path: Path,
) -> None:
    lrs = [0.05] * 4 + [0.02] * 4
    step: Step = lambda p, g, s, t: pytorch.sgd(p, g, s, lr=lrs[t], momentum=0.9)  # noqa: E731
    report = nagref.audit(_save(tmp_path, _run(step, None, "float32")))
    assert report.inference is not None
    assert report.inference.exact
    torch = next(m for m in report.matches if m.candidate == "pytorch single-tensor")
    assert torch.status == "diverges"
    assert torch.first is not None
    assert torch.first.step == 5  # the step whose lr changed
    assert torch.history[:4] == (0.0, 0.0, 0.0, 0.0)
    assert report.exit_code == 1


def test_zero_gradients_fail_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays = _run(_torch(0.05, 0.9, False), None, "float32")
    arrays["grads"][:] = 0
    arrays["params"][:] = arrays["initial"]
    path = _save(tmp_path, arrays)
    with pytest.raises(TrajectoryError, match="cannot infer lr: step 1's gradient is zero"):
        nagref.audit(path)
    with pytest.raises(SystemExit) as info:
        main(["audit", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].endswith("step 1's gradient is zero or not finite at every element; record "
                           "lr and momentum")  # fmt: skip


def test_proportional_gradients_cannot_fix_the_momentum(tmp_path: Path) -> None:
    arrays = _run(_torch(0.05, 0.9, False), None, "float32", steps=2)
    arrays["grads"][1] = arrays["grads"][0]  # step 2's gradient is step 1's
    arrays["params"][1] = arrays["params"][0] - np.float32(0.05 * 1.9) * arrays["grads"][0]
    with pytest.raises(TrajectoryError, match="cannot infer momentum: steps 1 and 2's gradients"):
        nagref.audit(_save(tmp_path, arrays))


def test_an_update_no_recipe_explains_says_so_and_what_to_do(tmp_path: Path) -> None:
    def signs(p: Any, g: Any, s: Any, t: int) -> tuple[Any, Any]:  # sign SGD: no candidate's
        return (p - np.float32(0.01) * np.sign(g) * np.float32(1 + 0.1 * t)).astype(p.dtype), s

    report = nagref.audit(_save(tmp_path, _run(signs, None, "float32")))
    assert report.inference is not None
    assert not report.inference.exact
    assert report.bitwise == []
    assert report.verdict.endswith(
        "; no lr and momentum reproduce steps 1-2 bit for bit: record them in the file (or "
        "check that it records an SGD, momentum or NAG run)"
    )
    assert "no value reproduces steps 1-2 bit for bit" in format_report(report).splitlines()[0]
    assert all(not v.exact for v in report.inference.values)
    assert report.exit_code == 1


def _write(path: Path, tensors: dict[str, tuple[int, Any, Any, Any]], groups: list[Any]) -> None:
    """A .trajectory written record by record (the writer always records lr and momentum)."""
    out = bytearray(MAGIC)

    def record(header: dict[str, Any], payload: bytes = b"") -> None:
        text = json.dumps(header).encode()
        out.extend(LENGTH.pack(len(text)) + text + payload)

    record({"record": "run", "framework": "torch", "version": "2", "optimizer": "SGD",
            "threads": 1, "options": {}})  # fmt: skip
    for name, (group, x0, _, _) in tensors.items():
        record({"record": "tensor", "name": name, "group": group, "dtype": str(x0.dtype),
                "shape": list(x0.shape), "nbytes": x0.nbytes}, x0.tobytes())  # fmt: skip
    steps = len(next(iter(tensors.values()))[2])
    for t in range(steps):
        record({"record": "step", "step": t + 1, "groups": groups})
        for k, (_, _, grads, params) in enumerate(tensors.values()):
            for role, value in (("grad", grads[t]), ("param", params[t])):
                record({"record": role, "step": t + 1, "tensor": k, "nbytes": value.nbytes},
                       value.tobytes())  # fmt: skip
    record({"record": "end", "steps": steps})
    path.write_bytes(bytes(out))


def _model(hypers: list[tuple[float, float]], shapes: dict[str, tuple[int, tuple[int, ...]]]
           ) -> dict[str, tuple[int, Any, Any, Any]]:  # fmt: skip
    rng = np.random.default_rng(1)
    tensors = {}
    for name, (group, shape) in shapes.items():
        lr, mu = hypers[group]
        lam = rng.uniform(0.1, 2.0, shape).astype(np.float32)
        x = rng.standard_normal(shape).astype(np.float32)
        x0, grads, params, buf = x.copy(), [], [], None
        for _ in range(6):
            g = lam * x
            x, buf = pytorch.sgd(x, g, buf, lr=lr, momentum=mu, nesterov=True)
            grads.append(g)
            params.append(x.copy())
        tensors[name] = (group, x0, grads, params)
    return tensors


def test_a_whole_run_infers_each_groups_values(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    tensors = _model([(0.0123, 0.95), (0.05, 0.9)],
                     {"w": (0, (20, 8)), "b": (0, (8,)), "head": (1, (30,))})  # fmt: skip
    _write(path, tensors, [{"nesterov": True}, {"lr": 0.05, "nesterov": True}])
    report = audit_model(path)
    assert [(i.group, i.inferred) for i in report.inference] == [
        (0, ("lr", "momentum")), (1, ("momentum",))
    ]  # fmt: skip
    zero, one = report.inference
    assert (zero.values[0].lr, zero.values[0].momentum, zero.values[0].exact) == (
        0.0123,
        0.95,
        True,
    )
    assert (one.values[0].lr, one.values[0].momentum, one.values[0].exact) == (0.05, 0.9, True)
    assert "pytorch single-tensor, nesterov" in report.bitwise
    assert "(group 0: lr 0.0123, momentum 0.95: inferred from steps 1-2)" in report.verdict
    first = format_model_report(report).splitlines()[0]
    assert "; lr and momentum of group 0 inferred from steps 1-2" in first
    assert "; momentum of group 1 inferred from steps 1-2" in first
    out = report.to_json()
    jsonschema.Draft202012Validator(schema()).validate(out)
    assert out["inference"][0]["values"][0]["lr"] == 0.0123
    recorded = tmp_path / "recorded.trajectory"
    _write(recorded, tensors, [{"lr": 0.0123, "momentum": 0.95, "nesterov": True},
                               {"lr": 0.05, "momentum": 0.9, "nesterov": True}])  # fmt: skip
    assert audit_model(recorded).inference == ()
    assert [i.group for i in audit_model(recorded, infer=True).inference] == [0, 1]


def test_an_lr_recorded_at_some_steps_only_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    tensors = _model([(0.05, 0.9)], {"w": (0, (8,))})
    _write(path, tensors, [{"nesterov": True}])
    data = path.read_bytes()
    header = json.dumps({"record": "step", "step": 3, "groups": [{"nesterov": True}]}).encode()
    changed = json.dumps({"record": "step", "step": 3,
                          "groups": [{"lr": 0.05, "nesterov": True}]}).encode()  # fmt: skip
    data = data.replace(LENGTH.pack(len(header)) + header, LENGTH.pack(len(changed)) + changed)
    path.write_bytes(data)
    with pytest.raises(TrajectoryError, match="step 3, group 0: lr is recorded at some steps"):
        audit_model(path)


def test_the_single_reports_json_with_inference_matches_the_schema(tmp_path: Path) -> None:
    report = nagref.audit(_save(tmp_path, _run(_torch(0.05, 0.9, True), None, "float32")))
    out = report.to_json()
    jsonschema.Draft202012Validator(schema()).validate(out)
    assert out["inference"]["inferred"] == ["lr", "momentum"]
    assert out["inference"]["values"][0] == {
        "lr": 0.05, "momentum": 0.9, "exact": True,
        "candidates": list(report.inference.values[0].candidates),  # type: ignore[union-attr]
    }  # fmt: skip
    assert isinstance(out["inference"]["unresolved"], list)


def test_weight_decay_and_a_single_step_are_refused(tmp_path: Path) -> None:
    arrays = _run(_torch(0.05, 0.9, False), None, "float32")
    decayed = _save(tmp_path, arrays | {"weight_decay": 0.01}, "decayed.npz")
    with pytest.raises(TrajectoryError, match="cannot infer lr or momentum with weight decay"):
        nagref.audit(decayed)
    one = {k: v[:1] if k != "initial" else v for k, v in arrays.items()}
    with pytest.raises(TrajectoryError, match="inferring momentum needs 2 steps"):
        nagref.audit(_save(tmp_path, one, "one.npz"))
    report = nagref.audit(_save(tmp_path, one | {"momentum": 0.9}, "lr.npz"))
    assert report.inference is not None
    assert report.inference.steps == (1,)
    assert report.inference.of("pytorch single-tensor") is not None
    assert "pytorch single-tensor" in report.bitwise
    assert (
        "lr inferred from step 1 (constant values assumed): lr 0.05, momentum 0.9"
        in (format_report(report).splitlines()[0])
    )


def test_zeros_infinities_and_nans_in_the_recording_are_left_out_of_the_fit() -> None:
    rng = np.random.default_rng(3)
    lam = rng.uniform(0.1, 2.0, 256).astype(np.float32)
    lam[::7] = 0  # zero gradients throughout
    x = rng.standard_normal(256).astype(np.float32)
    x[5], x[9] = np.inf, np.nan
    initial, grads, params, buf = x.copy(), [], [], None
    with np.errstate(all="ignore"):
        for _ in range(6):
            g = lam * x
            x, buf = pytorch.sgd(x, g, buf, lr=0.0123, momentum=0.95)
            grads.append(g)
            params.append(x.copy())
    tr = Trajectory(initial, np.stack(grads), np.stack(params), None, None, source="specials")
    report = nagref.audit(tr)
    assert report.inference is not None
    found = report.inference.of("pytorch single-tensor")
    assert found is not None
    assert (found.lr, found.momentum, found.exact) == (0.0123, 0.95, True)
    assert "pytorch single-tensor" in report.bitwise

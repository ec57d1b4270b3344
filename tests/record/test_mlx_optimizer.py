"""nagref.record.mlx on real MLX runs: each audits to MLX's own convention."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref.auditing import audit_model, open_model
from nagref.record import mlx as record_mlx

mx = require("mlx.core")
nn = require("mlx.nn")
optim = require("mlx.optimizers")
utils = require("mlx.utils")


def _setup(dtype: str, **sgd: Any) -> tuple[Any, Any, Any]:
    mx.random.seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    model.set_dtype(getattr(mx, dtype))
    options = {"learning_rate": optim.cosine_decay(0.1, 20), "momentum": 0.9}
    opt = optim.SGD(**(options | sgd))
    loss_and_grad = nn.value_and_grad(model, lambda m, x, y: ((m(x) - y) ** 2).mean())
    return model, opt, loss_and_grad


def _train(path: Path | None, dtype: str = "float32", steps: int = 12, **sgd: Any) -> list[Any]:
    model, opt, loss_and_grad = _setup(dtype, **sgd)
    x = mx.random.normal((32, 4)).astype(getattr(mx, dtype))
    y = mx.random.normal((32, 3)).astype(getattr(mx, dtype))

    def loop() -> None:
        for _ in range(steps):
            _, grads = loss_and_grad(model, x, y)
            opt.update(model, grads)
            mx.eval(model.parameters(), opt.state)

    if path is None:
        loop()
    else:
        with record_mlx(opt, path, quiet=True):
            loop()
    flat = utils.tree_flatten(model.parameters())
    return [np.array(v.view(mx.uint16) if v.dtype == mx.bfloat16 else v) for _, v in flat]


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(p.tobytes() == q.tobytes() for p, q in zip(a, b, strict=True))


def test_a_bfloat16_run_with_dampening_audits_to_mlx_alone(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    sgd: dict[str, Any] = {"dampening": 0.1, "weight_decay": 1e-2}
    assert _same(_train(path, "bfloat16", **sgd), _train(None, "bfloat16", **sgd))
    m = open_model(path)
    assert (m.run["framework"], m.run["optimizer"]) == ("mlx", "SGD")
    names = ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert [t.name for t in m.tensors] == names
    assert {t.dtype for t in m.tensors} == {"bfloat16"}
    schedule = optim.cosine_decay(0.1, 20)
    assert list(m.groups[0].lr) == [float(schedule(mx.array(t))) for t in range(12)]
    assert m.groups[0].fixed == {"dampening": 0.1, "weight_decay": 1e-2,
                                "nesterov": False, "maximize": False}  # fmt: skip
    report = audit_model(path)
    # eager and mx.compile'd: the same bits by MLX's design (nagref.conventions.mlx)
    assert list(report.bitwise) == ["mlx eager", "mlx compiled"]
    assert report.verdict.startswith("VERDICT: indistinguishable: 2 candidates ")


def test_a_float32_nesterov_run_keeps_its_bits_and_matches_mlx(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    sgd: dict[str, Any] = {"nesterov": True, "weight_decay": 1e-2}
    assert _same(_train(path, **sgd), _train(None, **sgd))
    report = audit_model(path)
    assert {"mlx eager, nesterov", "mlx compiled, nesterov"} <= set(report.bitwise)
    # float32 with FMA-free rounding: several frameworks' arithmetic is MLX's here
    assert all(n.startswith(("mlx ", "pytorch ", "paddle ")) for n in report.bitwise)
    assert report.verdict.startswith(f"VERDICT: indistinguishable: {len(report.bitwise)} ")


def test_steps_and_tensors_choose_what_is_recorded(tmp_path: Path, capsys: Any) -> None:
    model, opt, loss_and_grad = _setup("float32")
    path = tmp_path / "r.trajectory"
    with record_mlx(opt, path, steps=2, tensors=lambda n: n.endswith("bias")):
        for _ in range(4):
            opt.update(model, loss_and_grad(model, mx.ones((2, 4)), mx.ones((2, 3)))[1])
    said = capsys.readouterr().out
    assert said.startswith("nagref: recorded 2 steps of 2 tensors (44 gradient and parameter")
    m = open_model(path)
    assert (m.steps, [t.name for t in m.tensors]) == (2, ["layers.0.bias", "layers.2.bias"])
    assert "apply_gradients" not in vars(opt)  # MLX's own method again
    assert "mlx eager" in audit_model(path).bitwise


def _compiled(model: Any, opt: Any, loss_and_grad: Any) -> Any:
    state = [model.state, opt.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x: Any, y: Any) -> Any:
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss

    return step


def test_a_compiled_step_is_refused_never_recorded_wrong(tmp_path: Path) -> None:
    model, opt, loss_and_grad = _setup("float32")
    step = _compiled(model, opt, loss_and_grad)
    x, y = mx.ones((2, 4)), mx.ones((2, 3))
    with (
        pytest.raises(ValueError, match=r"a step traced by mx\.compile cannot be recorded"),
        record_mlx(opt, tmp_path / "a.trajectory", quiet=True),
    ):
        step(x, y)  # traced here: the wrapper sees placeholders
    assert "apply_gradients" not in vars(opt)
    assert not (tmp_path / "a.trajectory").exists()  # nothing recorded: no file left


def test_a_compiled_gradient_with_an_eager_update_is_recorded(tmp_path: Path) -> None:
    model, opt, loss_and_grad = _setup("float32", dampening=0.2)
    grad = partial(mx.compile, inputs=model.state, outputs=model.state)(
        lambda x, y: loss_and_grad(model, x, y)[1]
    )
    x, y = mx.random.normal((32, 4)), mx.random.normal((32, 3))
    with record_mlx(opt, tmp_path / "g.trajectory", quiet=True):
        for _ in range(5):
            opt.update(model, grad(x, y))
            mx.eval(model.parameters(), opt.state)
    assert list(audit_model(tmp_path / "g.trajectory").bitwise) == ["mlx eager", "mlx compiled"]


def _unwrapped(opt: Any, model: Any, grads: Any, times: int) -> None:
    """Steps past the wrapper, as a graph compiled before the block takes them."""
    for _ in range(times):
        model.update(optim.SGD.apply_gradients(opt, grads, model))  # MLX's own method


def test_steps_the_recording_did_not_see_are_an_error(tmp_path: Path) -> None:
    model, opt, loss_and_grad = _setup("float32")
    grads = loss_and_grad(model, mx.ones((2, 4)), mx.ones((2, 3)))[1]
    with (
        pytest.raises(ValueError, match="took 1 steps the recording did not see"),
        record_mlx(opt, tmp_path / "b.trajectory", quiet=True),
    ):
        _unwrapped(opt, model, grads, 1)  # the end of the block notices
    opt = _setup("float32")[1]
    with record_mlx(opt, tmp_path / "c.trajectory", quiet=True):
        _unwrapped(opt, model, grads, 2)
        with pytest.raises(ValueError, match="took 2 steps the recording did not see"):
            opt.update(model, grads)  # the next step through the wrapper notices
        opt.state["step"] = mx.array(0, mx.uint64)  # so that the block's end is quiet


def test_bad_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.trajectory"
    model, opt, loss_and_grad = _setup("float32")
    grads = loss_and_grad(model, mx.ones((2, 4)), mx.ones((2, 3)))[1]
    with (
        pytest.raises(TypeError, match=r"optimizer must be an mlx\.optimizers\.SGD, got Adam"),
        record_mlx(optim.Adam(0.1), path),
    ):
        pass
    with (
        pytest.raises(ValueError, match="steps must be None or an int >= 1, got 0"),
        record_mlx(opt, path, steps=0),
    ):
        pass
    with (
        pytest.raises(ValueError, match="no tensor was selected"),
        record_mlx(opt, path, tensors={"nothing"}, quiet=True),
    ):
        opt.update(model, grads)
    assert int(opt.step) == 0  # refused before MLX stepped
    assert not path.exists()
    with record_mlx(opt, path, quiet=True):
        with pytest.raises(ValueError, match="being recorded already"), record_mlx(opt, path):
            pass
        opt.update(model, grads)
    with pytest.raises(ValueError, match="it has taken 1 steps already"), record_mlx(opt, path):
        pass

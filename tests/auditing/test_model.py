"""The whole-model audit: per tensor replays, one verdict, honest about what a run cannot tell."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import nagref
from nagref.auditing import Trajectory, audit_model, format_model_report, model_trajectory
from nagref.auditing import model as model_mod
from nagref.auditing.model import ModelMatch
from nagref.auditing.report import Divergence, Match, describe, json_ready, outcome, schema
from nagref.cli import main
from nagref.record import TrajectoryWriter


def _numpy_nag(path: Path, *, steps: int = 12, close: bool = True) -> None:
    """A hand-written NAG in the lecture form, in float64, on two tensors and a zero bias."""
    rng = np.random.default_rng(3)
    w = TrajectoryWriter(path, framework="numpy", version=np.__version__, threads=1)
    params = [rng.standard_normal(40), rng.standard_normal((5, 3)), np.zeros(1)]
    velocities = [np.zeros_like(p) for p in params]
    for name, p in zip(("a", "b", "bias"), params, strict=True):
        w.tensor(name, p)
    lr, mu = 0.05, 0.9
    for _ in range(steps):
        w.step([{"lr": lr, "momentum": mu, "nesterov": True}])
        for k, p in enumerate(params):
            g = 2 * (p - mu * velocities[k]) if k < 2 else np.zeros(1)
            velocities[k] = mu * velocities[k] + lr * g
            params[k] = p - velocities[k]
            w.update(k, g, params[k])
    if close:
        w.close()


def test_a_hand_written_nag_names_the_lecture_form_and_the_uninformative_bias(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nag.trajectory"
    _numpy_nag(path)
    report = audit_model(path)
    assert "nagref.nag (lecture form)" in report.bitwise
    assert not any(name.startswith(("keras", "tf_keras", "sklearn")) for name in report.bitwise)
    a, b, bias = report.tensors
    assert a.tells_apart
    assert b.tells_apart
    assert not bias.tells_apart  # zeros throughout: every candidate keeps it at 0
    assert bias.why == ("all its gradients are zero", "only 1 element")
    assert a.why == b.why == ()
    text = format_model_report(report)
    row = next(line for line in text.splitlines() if line.startswith("bias "))
    assert row.split() == ["bias", "float64", "(1,)", "12", str(bias.candidates), "of",
                           f"{bias.candidates}:", "tells", "none", "apart", "(all", "its",
                           "gradients", "are", "zero;", "only", "1", "element)"]  # fmt: skip
    assert "tells none apart" not in text.replace(row, "")
    if len(report.bitwise) > 1:
        assert report.verdict.startswith("VERDICT: indistinguishable: ")
    else:
        assert report.verdict == "VERDICT: bitwise: nagref.nag (lecture form)"


def test_the_json_report_has_numbers_and_nulls_only(tmp_path: Path) -> None:
    path = tmp_path / "nag.trajectory"
    _numpy_nag(path)
    out = audit_model(path).to_json()
    text = json.dumps(out, allow_nan=False)  # no inf or NaN survives
    assert '"inf"' not in text
    assert out["exit_code"] == 0
    for m in out["matches"]:
        assert m["max_ulp"] is None or isinstance(m["max_ulp"], float)
        if m["first"] is not None:
            assert isinstance(m["first"]["recorded_text"], str)


def test_a_cut_off_run_is_audited_to_its_last_whole_step_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "nag.trajectory"
    _numpy_nag(path, close=False)
    report = audit_model(path)
    assert (report.steps, report.complete) == (11, False)
    assert "(the recording stops there: it was not closed)" in format_model_report(report)


def test_the_command_line_audits_a_run_and_reports_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nag.trajectory"
    _numpy_nag(path)
    assert main(["audit", str(path)]) == 0
    assert "VERDICT: " in capsys.readouterr().out
    assert main(["audit", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 12
    seen: list[tuple[int, int, str]] = []
    audit_model(path, progress=lambda done, total, name: seen.append((done, total, name)))
    assert seen == [(0, 3, "a"), (1, 3, "b"), (2, 3, "bias")]
    path.write_bytes(b"NAGREF-TRAJECTORY 1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith("nag.trajectory: no run record")


def test_both_reports_match_the_published_json_schema(tmp_path: Path) -> None:
    path = tmp_path / "nag.trajectory"
    _numpy_nag(path)
    check = jsonschema.Draft202012Validator(schema())
    check.validate(audit_model(path).to_json())
    tr = Trajectory(np.ones(3), np.array([[1.0, np.nan, 2.0]]), np.array([[0.9, 1.0, np.inf]]),
                    (0.1,), (0.0,), source="memory")  # fmt: skip
    single = nagref.audit(tr).to_json()
    check.validate(single)  # NaN and inf: nulls, and their text
    assert any(m["max_ulp"] is None for m in single["matches"])
    broken = {**single, "matches": [{**single["matches"][0], "max_ulp": "inf"}]}
    with pytest.raises(jsonschema.ValidationError):
        check.validate(broken)


def test_the_audit_reads_every_array_through_one_handle_closed_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "nag.trajectory"
    _numpy_nag(path)
    opened: list[Any] = []
    real = open

    def counting(*args: Any, **kwargs: Any) -> Any:
        handle = real(*args, **kwargs)
        opened.append(handle)
        return handle

    monkeypatch.setattr(model_trajectory, "open", counting, raising=False)
    report = audit_model(path)
    assert report.exit_code == 0
    assert len(opened) == 2  # the index's, then the audit's one for every array
    assert all(h.closed for h in opened)
    opened.clear()

    def failing(model: Any, *args: Any) -> Any:
        raise RuntimeError("a candidate's bug")

    monkeypatch.setattr(model_mod, "replay", failing)
    with pytest.raises(RuntimeError, match="a candidate's bug"):
        audit_model(path)
    assert len(opened) == 2
    assert all(h.closed for h in opened)  # closed on the way out, also on an error


def test_run_level_candidates_rank_by_their_own_key() -> None:
    d = Divergence(3, (0,), 1.0, 2.0, 5.0)
    ranked = sorted(
        [
            ModelMatch("cannot", "cannot run", None, 0, "a", None, "why"),
            ModelMatch("early", "diverges", 9.0, 2, "a", Divergence(1, (0,), 1.0, 2.0, 5.0)),
            ModelMatch("late, fewer", "diverges", 9.0, 1, "a", d),
            ModelMatch("late, more", "diverges", 9.0, 2, "a", d),
            ModelMatch("within", "within", 2.0, 1, "a", d),
            ModelMatch("bitwise", "bitwise", 0.0, 3, None, None),
        ],
        key=ModelMatch.rank,
    )
    assert [m.candidate for m in ranked] == [
        "bitwise", "within", "late, more", "late, fewer", "early", "cannot"
    ]  # fmt: skip


def test_json_ready_adds_text_to_divergences_only() -> None:
    plain = {"recorded": 1.0, "replayed": math.inf}
    assert json_ready(plain) == {"recorded": 1.0, "replayed": None}
    d = json_ready(Divergence(1, (2,), 1.0, math.inf, math.inf))
    assert d == {"step": 1, "index": [2], "recorded": 1.0, "replayed": None, "ulps": None,
                 "recorded_text": "1.0", "replayed_text": "inf"}  # fmt: skip


def test_describe_and_outcome() -> None:
    m = Match("c", "diverges", 9.0, 3, None, None, 7)
    assert describe(m, 4.0) == "diverges (dropped at step 7)"
    assert outcome("diverges", 4.0) == "diverges"
    assert outcome("within", 2.0) == "same formula, other rounding (<= 2 ULP)"
    assert describe(Match("c", "bitwise", 0.0, 0, None), 4.0) == outcome("bitwise", 4.0)

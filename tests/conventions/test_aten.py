"""nagref.conventions._aten: torch's default threads and CPU capability, without torch."""

from __future__ import annotations

import sys
import types

import pytest

from nagref.conventions import _aten


class _FakeTorch(types.ModuleType):
    def __init__(self, threads: int, capability: str) -> None:
        super().__init__("torch")
        self.get_num_threads = lambda: threads
        cpu = types.SimpleNamespace(get_cpu_capability=lambda: capability)
        self.backends = types.SimpleNamespace(cpu=cpu)


def test_defaults_ask_torch_where_it_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_aten, "x86_64", lambda: True)
    monkeypatch.setitem(sys.modules, "torch", _FakeTorch(5, "AVX2"))
    assert _aten.default_threads() == 5
    assert _aten.default_cpu_capability() == "avx2"
    monkeypatch.setitem(sys.modules, "torch", _FakeTorch(1, "DEFAULT"))
    assert _aten.default_cpu_capability() == "default"


#: two sockets of two cores with two hyperthreads each; processors 0-7
_CPUINFO = "\n\n".join(
    f"processor\t: {k}\nphysical id\t: {k // 4}\ncore id\t\t: {k % 2}\nflags\t\t: fpu"
    for k in range(8)
)


@pytest.mark.parametrize(
    ("env", "allowed", "expected"),
    [
        ({}, None, 4),  # physical cores: hyperthreads do not count
        ({}, {0, 1}, 2),  # taskset: the cores this process may run on
        ({}, {0, 2}, 1),  # two hyperthreads of one core
        ({"OMP_NUM_THREADS": "3"}, {0}, 3),  # asked for: up to the machine's cores
        ({"OMP_NUM_THREADS": "9"}, None, 4),
        ({"OMP_NUM_THREADS": "9", "MKL_DYNAMIC": "FALSE"}, None, 9),
        ({"OMP_NUM_THREADS": "9", "MKL_DYNAMIC": "0"}, None, 4),  # MKL reads "false" only
        ({"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "1"}, None, 1),  # MKL's first
        ({"OMP_NUM_THREADS": "2,1"}, None, 2),  # nested levels: the first
        ({"OMP_NUM_THREADS": "0"}, None, 4),  # invalid: ignored
        ({"OMP_NUM_THREADS": "abc", "MKL_NUM_THREADS": ""}, None, 4),
    ],
)
def test_default_threads_without_torch(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], allowed: set[int] | None, expected: int
) -> None:
    """As measured with torch 2.13.0's Linux wheel (MKL and OpenMP) on a 2-core machine."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_DYNAMIC"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(_aten, "_cpuinfo", lambda: _CPUINFO)
    monkeypatch.setattr(_aten, "_affinity", lambda: allowed)
    assert _aten.default_threads() == expected


def test_physical_cores_without_core_ids_or_cpuinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    no_ids = "processor\t: 0\n\nprocessor\t: 1\n\nprocessor\t: 2\n"
    assert _aten._physical_cores(no_ids, None) == 3
    assert _aten._physical_cores(no_ids, {1}) == 1
    assert _aten._physical_cores("", {0, 1, 5}) == 3
    monkeypatch.setattr(_aten.os, "cpu_count", lambda: 6)
    assert _aten._physical_cores("", None) == 6


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({"avx512vl", "avx512bw", "avx512dq", "avx2", "fma"}, None, "avx512"),
        ({"avx512f", "avx512vl", "avx2", "fma"}, None, "avx2"),  # no AVX512-BW/DQ
        ({"avx2", "fma"}, None, "avx2"),
        ({"avx2"}, None, "default"),  # AVX2 without FMA
        ({"sse4_2"}, None, "default"),
        ({"avx2", "fma"}, "default", "default"),  # ATEN_CPU_CAPABILITY asks
        ({"avx2", "fma"}, "avx512", "avx512"),  # taken as asked (torch checks nothing)
        ({"avx2", "fma"}, "AVX512", "avx2"),  # torch ignores an unknown value
        ({"avx2", "fma"}, "zvector", "avx2"),
    ],
)
def test_default_cpu_capability_without_torch(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], env: str | None, expected: str
) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(_aten, "x86_64", lambda: True)
    monkeypatch.setattr(_aten, "cpu_flags", lambda: frozenset(flags))
    if env is None:
        monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    else:
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", env)
    assert _aten.default_cpu_capability() == expected


def test_check_threads_takes_whole_numbers_and_none_for_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_aten, "default_threads", lambda: 7)
    assert _aten.check_threads(None) == 7
    assert _aten.check_threads(3) == 3
    assert _aten.check_threads(3.0) == 3  # as a test vector carries it


def test_check_capability_takes_atens_names_and_none_for_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_aten, "default_cpu_capability", lambda: "avx2")
    assert _aten.check_capability(None) == "avx2"
    assert [_aten.check_capability(c) for c in _aten.CPU_CAPABILITIES] == [
        "avx512",
        "avx2",
        "default",
    ]
    with pytest.raises(ValueError, match=r"got str 'avx'$"):
        _aten.check_capability("avx")  # torch 2.13 has no AVX (without 2) kernels


def test_runs_here_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_aten, "x86_64", lambda: True)
    monkeypatch.setattr(_aten, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert [_aten.runs_here(c)("float16") for c in _aten.CPU_CAPABILITIES] == [False, True, True]
    assert _aten.cpu_capability_here() == "avx2"

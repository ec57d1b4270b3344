"""nagref._host: the CPU's flags, and whether it has native float16 arithmetic."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from pathlib import Path

import pytest

from nagref import _host

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse2 avx2 fma avx512f avx512_fp16 amx_tile
vmx flags\t: vnmi preemption_timer invvpid
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu vme
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm fphp asimdhp
CPU implementer\t: 0x41
"""


@pytest.fixture
def cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A /proc/cpuinfo of the test's making, read afresh (cpu_flags caches)."""
    fake = tmp_path / "cpuinfo"
    monkeypatch.setattr(_host, "Path", lambda name: fake if name == "/proc/cpuinfo" else Path(name))
    _host.cpu_flags.cache_clear()
    yield fake
    _host.cpu_flags.cache_clear()


def test_flags_come_from_the_first_flags_line(cpuinfo: Path) -> None:
    cpuinfo.write_text(X86, encoding="ascii")
    assert _host.cpu_flags() == frozenset(
        {"fpu", "vme", "sse2", "avx2", "fma", "avx512f", "avx512_fp16", "amx_tile"}
    )
    assert "vnmi" not in _host.cpu_flags()  # "vmx flags" is another line


def test_no_flags_line_and_no_file_give_no_flags(cpuinfo: Path) -> None:
    cpuinfo.write_text(ARM, encoding="ascii")
    assert _host.cpu_flags() == frozenset()
    _host.cpu_flags.cache_clear()
    cpuinfo.unlink()
    assert _host.cpu_flags() == frozenset()


def test_non_ascii_bytes_do_not_break_the_parse(cpuinfo: Path) -> None:
    cpuinfo.write_bytes(b"model name\t: \xff\xfe\nflags\t\t: sse2 avx512_fp16\n")
    assert _host.cpu_flags() == frozenset({"sse2", "avx512_fp16"})


def test_the_flags_are_read_once(cpuinfo: Path) -> None:
    cpuinfo.write_text("flags\t: sse2\n", encoding="ascii")
    assert _host.cpu_flags() == frozenset({"sse2"})
    cpuinfo.write_text("flags\t: sse2 avx512_fp16\n", encoding="ascii")
    assert _host.cpu_flags() == frozenset({"sse2"})  # cached


@pytest.mark.parametrize(
    ("machine", "flags", "native"),
    [
        ("x86_64", "fpu avx512f avx512_fp16", True),
        ("AMD64", "fpu avx512f avx512_fp16", True),  # Windows spells it so
        ("x86_64", "fpu avx512f avx512bw", False),  # AVX-512 without FP16
        ("aarch64", "fp asimd fphp avx512_fp16", False),  # only x86-64 has AVX512-FP16
        ("arm64", "", False),
    ],
)
def test_native_float16_needs_x86_64_and_avx512_fp16(
    cpuinfo: Path, monkeypatch: pytest.MonkeyPatch, machine: str, flags: str, native: bool
) -> None:
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="ascii")
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert _host.native_float16() is native


def test_this_machine_answers_consistently() -> None:
    flags = _host.cpu_flags()
    assert isinstance(flags, frozenset)
    assert _host.native_float16() == (
        platform.machine().lower() in ("x86_64", "amd64") and "avx512_fp16" in flags
    )

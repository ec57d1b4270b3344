"""Build the optional C evaluator behind nagref's NumPy fast path.

Everything else lives in pyproject.toml. The extension must be compiled
without floating-point contraction (``-ffp-contract=off``): a compiler that
fused a*b + c on its own would change results. If it cannot be built, nagref
still installs and every rule runs on its generic path.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_FLAGS = {
    "unix": ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno"],
    "msvc": ["/O2", "/fp:precise"],
}


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        flags = _FLAGS.get(self.compiler.compiler_type, [])
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[
        Extension("nagref.fastpaths._cpu", ["src/nagref/fastpaths/_cpu.c"], optional=True)
    ],
    cmdclass={"build_ext": BuildExt},
)

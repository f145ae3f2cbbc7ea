"""Build alpnsniff compiled with mypyc where it can, pure Python where it cannot.

``pip install .`` compiles the modules listed in ``alpnsniff/_build_plan.py`` (the parsers,
the flow layer, the hot loop, the records and their text sinks) to C extensions when three
things hold: a C compiler, the Python headers (Debian: ``gcc`` and ``python3-dev``) and mypyc
(a build requirement, installed by pip). Otherwise it installs the same modules as pure
Python and says why on stderr. ``alpnsniff --version`` tells which build is installed.

Editable installs (``pip install -e .``) stay pure, so an edit to a ``.py`` file takes effect
at once: a compiled module next to its source would shadow it. ``ALPNSNIFF_COMPILE`` decides
by hand: ``1`` compiles (and fails loudly if it cannot), ``0`` never compiles, unset means
compile when possible.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _planned_modules() -> list[str]:
    """The module files to compile, read from the plan the package itself reports from."""
    namespace: dict[str, object] = {}
    plan = HERE / "alpnsniff" / "_build_plan.py"
    exec(compile(plan.read_text(encoding="utf-8"), str(plan), "exec"), namespace)
    modules = namespace["COMPILED_MODULES"]
    assert isinstance(modules, tuple)
    return [str(Path(*name.split(".")).with_suffix(".py")) for name in modules]


def _why_not_compiled(forced: bool) -> str | None:
    """None when a compiled build can be attempted, else the reason it cannot."""
    if not forced and any(arg in ("editable_wheel", "develop") for arg in sys.argv):
        return "an editable install stays pure Python (set ALPNSNIFF_COMPILE=1 to compile)"
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[:1]
    if not compiler or shutil.which(compiler[0]) is None:
        return f"no C compiler ({' '.join(compiler) or 'cc'}) on PATH (Debian: apt install gcc)"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").exists():
        return f"no Python headers in {include} (Debian: apt install python3-dev)"
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return "mypyc is not installed (pip install mypy)"
    return None


class _BuildExtOrFallBack(build_ext):
    """Compile the extensions; when the compiler fails and nobody forced a compiled build,
    install pure Python instead (the ``.py`` files ship either way)."""

    forced = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a CompileError, a LinkError, a missing header
            if self.forced:
                raise
            _say(f"the C build failed ({exc}); installing pure Python")
            for extension in self.extensions:  # no half-built set: a shim without its library
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
            self.extensions = []


def _say(message: str) -> None:
    print(f"alpnsniff build: {message}", file=sys.stderr)


def _extensions() -> list[object]:
    choice = os.environ.get("ALPNSNIFF_COMPILE", "").strip()
    if choice == "0":
        _say("ALPNSNIFF_COMPILE=0: pure Python")
        return []
    forced = choice == "1"
    reason = _why_not_compiled(forced)
    if reason is not None:
        if forced:
            raise SystemExit(f"alpnsniff build: ALPNSNIFF_COMPILE=1 but {reason}")
        _say(f"pure Python: {reason}")
        return []
    from mypyc.build import mypycify

    _BuildExtOrFallBack.forced = forced
    _say("compiling the hot modules with mypyc")
    try:
        return list(mypycify(_planned_modules(), opt_level="3", debug_level="0"))
    except SystemExit as exc:  # mypyc found a type error (printed above)
        if forced:
            raise
        _say(f"mypyc refused the modules ({exc}); installing pure Python")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildExtOrFallBack})

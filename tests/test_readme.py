"""The README says what is true: its first commands, its sample output, its flags."""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start : end if end > 0 else None]


def sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_first_commands_make_a_venv_and_ci_runs_the_test_command() -> None:
    run, test = sh_blocks(section("First commands"))[:2]
    # not editable: the compiled build where a C compiler and the Python headers are there
    assert run == VENV + "pip install . && alpnsniff read captures/*.pcap*"
    assert test == VENV + "pip install '.[dev]' && python3 -m pytest"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # .ci/run runs the same chain (the linters between its install and its test step), then
    # the suite again on the pure Python build
    chain = f"\n{VENV}pip install -q '.[dev]'\n"
    assert chain in ci and f"# {test}\n" in ci
    compiled_run = ci.index(chain)
    assert ci.index("\npython3 -m pytest\n", compiled_run) < ci.index(".venv-pure")
    assert "pip install -q -e '.[dev]'\n" in ci[ci.index(".venv-pure") :]
    assert ci.rstrip().endswith("\npython3 -m pytest")


def alpnsniff_exe() -> str:
    exe = shutil.which("alpnsniff")
    assert exe is not None, "the alpnsniff command is not installed (pip install -e .)"
    return exe


def test_sample_output_is_what_the_first_command_prints() -> None:
    block = re.search(r"```\n\$ alpnsniff read captures/\*\.pcap\*\n(.*?)```", README, re.S)
    assert block is not None, "no sample output block in the README"
    # the shell's glob, in its (C locale) order
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "captures").glob("*.pcap*"))
    done = subprocess.run(
        [alpnsniff_exe(), "read", *files], cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == block.group(1)


def long_options(command: str = "read") -> list[str]:
    if shutil.which("alpnsniff") is None:  # (collection must not fail: the tests below do)
        return []
    done = subprocess.run([alpnsniff_exe(), command, "--help"], capture_output=True, timeout=60)
    assert done.returncode == 0
    found = re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", done.stdout.decode())
    return sorted(set(found) - {"--help"})


def _has_example(command: str, option: str) -> bool:
    examples = re.findall(rf"`(alpnsniff {command} [^`]*)`", section("What it reports"))
    done = subprocess.run([alpnsniff_exe(), command, "--help"], capture_output=True, timeout=60)
    # the short form, where there is one ("-T, --format" / "-T {…}, --format {…}")
    short = re.search(rf"(?<![\w-])(-[a-zA-Z])(?: \S+)?, {option}\b", done.stdout.decode())
    forms = [option] + ([short.group(1)] if short else [])
    return any(
        re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", e) for e in examples for f in forms
    )


@pytest.mark.parametrize("option", long_options())
def test_every_flag_has_an_example_in_the_readme(option: str) -> None:
    assert _has_example("read", option), f"{option}: no `alpnsniff read …` example in the README"


# live's own options (those it shares with read have their read example)
LIVE_OPTIONS = sorted(set(long_options("live")) - set(long_options()))


@pytest.mark.parametrize("option", LIVE_OPTIONS)
def test_every_live_flag_has_an_example_in_the_readme(option: str) -> None:
    assert _has_example("live", option), f"{option}: no `alpnsniff live …` example in the README"


@pytest.mark.parametrize("option", long_options("report"))
def test_every_report_flag_has_an_example_in_the_readme(option: str) -> None:
    assert _has_example("report", option), f"{option}: no `alpnsniff report …` example"


def test_the_analytics_example_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the ">>>" block of "Analytics": run as a doctest in a folder of its own (it saves a
    # picture), with the bundled captures beside it
    block = re.search(r"```python\n(>>> .*?)```", section("What it reports"), re.S)
    assert block, "no >>> example in the README"
    (tmp_path / "captures").symlink_to(ROOT / "captures")
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(block.group(1), {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert (tmp_path / "offered_vs_selected.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""`make` talks to the user in its own progress lines, not by echoing its recipe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from helpers_data import missing

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"


def recipes() -> dict[str, list[str]]:
    """Each rule's target -> its recipe lines (tab removed), in order."""
    out: dict[str, list[str]] = {}
    target = None
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") and target is not None:
            out[target].append(line[1:])
        elif re.match(r"^[^\s#=][^=]*:(?!=)", line):
            target = line.split(":", 1)[0].strip()
            out[target] = []
        elif line.strip():
            target = None
    return out


def test_no_recipe_line_is_a_comment_make_would_echo() -> None:
    # A tab-indented "# ..." is a recipe line: make prints it before handing it to the shell.
    echoed = {t: [line for line in lines if line.lstrip().startswith("#")] for t, lines in recipes().items()}
    assert not any(echoed.values()), echoed


def test_install_prints_one_progress_line_per_step_and_nothing_else() -> None:
    install = recipes()["$(STAMP)"]
    assert all(line.startswith("@") for line in install), install  # no command is echoed
    steps = [line for line in install if "pip install" in line or "$(PIP)" in line]
    assert steps and sum(line.startswith("@echo") for line in install) >= len(steps) + 1, install
    pip = next(line for line in MAKEFILE.read_text(encoding="utf-8").splitlines() if line.startswith("PIP :="))
    assert "-qq" in pip  # pip's and setuptools' warnings (the editable-install banner) stay out


def test_make_dry_run_of_the_install_shows_progress(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        missing("make is not installed (apt-get install make)")
    # -n: print, never run (nothing is installed); -W: as if pyproject.toml had changed.
    proc = subprocess.run(["make", "-n", "-W", "pyproject.toml", ".venv/.installed"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stdout.splitlines() if line.lstrip().startswith("#")], proc.stdout
    assert "installing" in proc.stdout and "a few minutes" in proc.stdout, proc.stdout

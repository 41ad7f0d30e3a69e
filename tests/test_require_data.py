"""Missing test data skips locally and fails in CI (ASSIST_REQUIRE_DATA=1, set by .ci/run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

# Each way a test can find its data missing, through the fixtures every test uses.
PROBES = '''
from helpers_data import needs_espeak, require_module


def test_photos(coco_dir):
    pass


def test_footage(videos_dir):
    pass


def test_detector(detector_path):
    pass


@needs_espeak
def test_voice():
    pass


def test_package():
    require_module("no_such_package_for_assist_tests")
'''


def run_probes(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    """pytest on the probes, with the project's conftest as a plugin, on a machine with nothing:
    no shared folder, no detector, and a PATH without espeak-ng."""
    (tmp_path / "test_probes.py").write_text(PROBES, encoding="utf-8")
    nothing = tmp_path / "nothing"
    env = {k: v for k, v in os.environ.items() if k != "ASSIST_REQUIRE_DATA"}
    env.update(ASSIST_SHARED=str(nothing), ASSIST_DETECTOR=str(nothing / "detector"),
               PATH=str(Path(sys.executable).parent), PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]))
    if require is not None:
        env["ASSIST_REQUIRE_DATA"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA", "-q",
                           "test_probes.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_missing_data_skips_with_the_reason_locally(tmp_path: Path) -> None:
    proc = run_probes(tmp_path, None)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("5 skipped"), proc.stdout[-3000:]
    for reason in ("real COCO photos not found", "real street footage not found", "real detector weights not found",
                   "espeak-ng is not installed", "no_such_package_for_assist_tests is not installed"):
        assert reason in proc.stdout, (reason, proc.stdout[-3000:])


def test_under_require_data_missing_data_fails_with_the_reason(tmp_path: Path) -> None:
    proc = run_probes(tmp_path, "1")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    assert "skipped" not in counts and counts.get("failed", 0) + counts.get("errors", counts.get("error", 0)) == 5, \
        proc.stdout[-3000:]
    for reason in ("real COCO photos not found", "real street footage not found", "real detector weights not found",
                   "espeak-ng is not installed", "no_such_package_for_assist_tests is not installed"):
        assert re.search(re.escape(reason) + r".*ASSIST_REQUIRE_DATA=1", proc.stdout), (reason, proc.stdout[-3000:])
    assert "Traceback" not in proc.stdout and "During handling" not in proc.stdout  # the reason, not a stack


def test_ci_requires_the_data() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^export ASSIST_REQUIRE_DATA=1$", script, re.M), script

"""The README's commands work as written: each command of its Run section that
can run offline is read from README.md and run in a shell, after the README's
own `source .venv/bin/activate`, on real photos and a real video file named as
the README names them; the --validate-config example prints what the README
shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from helpers_cli import read_log
from helpers_data import missing

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ACTIVATE = "source .venv/bin/activate"

# Commands that cannot run on a machine without a camera or a network: why, by what names them.
NOT_OFFLINE = {"--camera": "needs a camera", "rtsp://": "needs a network stream"}
# The one change made to a command: the demo plays 30 s in real time; its first hazard is the walk
# towards the bus (5-9 s: a far bus standing ahead is not news until it closes in).
SHORTER = {"--demo": ["--max-seconds", "10"]}


def code_block(section: str, index: int = 0) -> list[str]:
    """The lines of the ``index``-th fenced code block under the README heading ``section``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, f"README has no '## {section}' section"
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", match.group(1), re.M | re.S)
    assert len(blocks) > index, f"README section {section} has no code block {index}"
    return blocks[index].splitlines()


def run_section_commands() -> tuple[list[str], list[list[str]]]:
    """(setup lines, commands) of the Run section, comments removed."""
    setup: list[str] = []
    commands: list[list[str]] = []
    for line in code_block("Run"):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[:2] == ["python", "run.py"]:
            commands.append(words)
        else:
            setup.append(" ".join(words))
    return setup, commands


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A fresh folder that looks like the project root to a user: run.py and .venv in it."""
    if sys.prefix == sys.base_prefix:
        missing("the tests are not running in a virtualenv, so the README's `source .venv/bin/activate` cannot be run")
    (tmp_path / "run.py").symlink_to(ROOT / "run.py")  # Python resolves the link: imports come from ROOT
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    return tmp_path


def shell(workdir: Path, setup: list[str], words: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``words`` in bash after the setup lines, as a user types them (PATH without the venv first)."""
    script = " && ".join([*setup, shlex.join(words)])
    return subprocess.Popen(["bash", "-c", script], cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a new user's shell: no virtualenv active yet, nothing downloadable."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=path, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)
    return env


def prepare_inputs(words: list[str], workdir: Path, bus_jpg: Path, zidane_jpg: Path) -> None:
    """Make the files a command names: real photos, a folder of them, a real video file."""
    for flag, value in zip(words, words[1:], strict=False):
        target = workdir / value
        if flag == "--image":
            shutil.copy(bus_jpg, target)
        elif flag == "--images":
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(bus_jpg, target / "1-street.jpg")
            shutil.copy(zidane_jpg, target / "2-indoor.jpg")
        elif flag == "--video":
            image = cv2.resize(cv2.imread(str(bus_jpg)), (640, 480))
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
            assert writer.isOpened()
            for _ in range(30):  # 3 s
                writer.write(image)
            writer.release()


def check(words: list[str], proc: subprocess.CompletedProcess[str], workdir: Path) -> None:
    """What each command promises (README's comments), beyond exit 0 and no traceback."""
    said = proc.stdout.lower()
    assert proc.returncode == 0, (words, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, (words, proc.stderr[-3000:])
    if "--image" in words:  # one photo: the caption and hazards printed
        assert "bus" in said, (words, proc.stdout)
    if "--images" in words:  # each photo described: the street's bus, the indoor scene's people
        assert "bus" in said and ("people" in said or "person" in said), (words, proc.stdout)
    if "--headless" in words:
        assert said.strip(), (words, "a headless run prints what it says")
    if "--log" in words:
        events = read_log(workdir / words[words.index("--log") + 1])
        assert events[0]["event"] == "started" and events[-1]["event"] == "stopped", events
        assert any(e["type"] == "hazard" for e in events), events  # the bus is warned about


def test_readme_run_section_shows_the_virtualenv_before_python() -> None:
    setup, commands = run_section_commands()
    assert setup == [ACTIVATE], setup  # the system Python has none of the packages
    assert len(commands) >= 5, commands


def test_readme_run_commands_work_as_written(workdir: Path, detector_path: Path, bus_jpg: Path) -> None:
    setup, commands = run_section_commands()
    zidane_jpg = bus_jpg.with_name("zidane.jpg")
    env = user_env(ASSIST_DETECTOR=str(detector_path), ASSIST_CAPTIONER="")
    started: list[tuple[list[str], subprocess.Popen[str]]] = []
    skipped: list[str] = []
    for words in commands:
        reason = next((why for key, why in NOT_OFFLINE.items() if any(w.startswith(key) for w in words)), None)
        if reason:
            skipped.append(f"{shlex.join(words)}: {reason}")
            continue
        assert {"--image", "--images", "--video", "--demo"} & set(words), \
            f"a new README command: teach this test what it needs, or why it cannot run offline: {words}"
        prepare_inputs(words, workdir, bus_jpg, zidane_jpg)
        for flag, extra in SHORTER.items():
            if flag in words:
                words = [*words, *extra]
        started.append((words, shell(workdir, setup, words, env)))  # together: they mostly wait on real time
    assert len(started) >= 4, (started, skipped)  # --video, --image, --images and --demo ran
    for words, popen in started:
        out, err = popen.communicate(timeout=240)
        check(words, subprocess.CompletedProcess(words, popen.returncode, out, err), workdir)


def test_system_python_without_the_virtualenv_is_what_the_readme_warns_about(workdir: Path) -> None:
    """The README's activation line is what makes `python` the project's: after it, `python` is .venv's."""
    proc = subprocess.run(["bash", "-c", f"{ACTIVATE} && python -c 'import sys, cv2; print(sys.prefix)'"], cwd=workdir,
                          env=user_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve() == Path(sys.prefix).resolve()


def test_readme_validate_config_example_prints_what_it_shows(workdir: Path) -> None:
    lines = code_block("Configure")
    prompt = next(i for i, line in enumerate(lines) if line.startswith("$ python run.py --validate-config"))
    words = shlex.split(lines[prompt][2:])
    shown = [line for line in lines[prompt + 1:] if line.strip()]
    # The config the example describes: speech.rate out of range, and a misspelt speech.rat.
    (workdir / words[words.index("--config") + 1]).write_text("[speech]\nrate = 1000\nrat = 175\n", encoding="utf-8")
    popen = shell(workdir, [ACTIVATE], words, user_env())
    out, err = popen.communicate(timeout=120)
    assert popen.returncode == 2, (out, err)
    assert [line for line in (out + err).splitlines() if line.strip()] == shown

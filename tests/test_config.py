"""Strict config loading: every problem at once, with key paths; no tracebacks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from assist.config import DEFAULT_CONFIG_PATH, Config, ConfigError, from_dict, load_config, section_fields, sections


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def test_shipped_config_loads_and_equals_defaults() -> None:
    assert load_config(DEFAULT_CONFIG_PATH) == Config()


def test_config_toml_documents_every_key_with_a_comment() -> None:
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    for name, cls in sections().items():
        assert name in data, f"[{name}] missing from config.toml"
        keys = set(section_fields(cls))
        assert set(data[name]) == keys, f"[{name}] keys differ from the schema"
    for line in text.splitlines():
        if re.match(r"^[a-z_]+\s*=", line):
            assert "#" in line, f"key without a comment in config.toml: {line}"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "[speech]\nrat = 200\n")
    assert problems == ["speech.rat: unknown key (did you mean speech.rate?)"]


def test_unknown_section_suggests(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "[speach]\nrate = 200\n")
    assert len(problems) == 1 and problems[0].startswith("speach: unknown section (did you mean speech?)")


def test_range_error_has_key_path_and_value(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "[speech]\nrate = 1000\n") == ["speech.rate: must be between 80 and 450 (got 1000)"]


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = '[speech]\nrate = 1000\nbackend = "loud"\n[camera]\nstall_timeout_s = "2"\nindx = 1\n[hazards]\nhigh = [1]\n'
    problems = problems_of(tmp_path, text)
    assert len(problems) == 5
    joined = "\n".join(problems)
    for fragment in ("speech.rate:", "speech.backend: must be one of", "camera.stall_timeout_s: must be a number",
                     "camera.indx: unknown key (did you mean camera.index?)", "hazards.high: must be a list of strings"):
        assert fragment in joined


@pytest.mark.parametrize(("text", "fragment"), [
    ("[scene]\nenabled = 1\n", "scene.enabled: must be true or false (got 1)"),
    ("[speech]\nrate = 175.5\n", "speech.rate: must be an integer (got 175.5)"),
    ("[speech]\nrate = true\n", "speech.rate: must be an integer (got True)"),
    ("[caption]\nmodel = 3\n", "caption.model: must be a string (got 3)"),
    ("[hazards]\nconfidence = nan\n", "hazards.confidence: must be a finite number"),
    ("speech = 3\n", "speech: must be a table"),
])
def test_wrong_types(tmp_path: Path, text: str, fragment: str) -> None:
    problems = problems_of(tmp_path, text)
    assert any(fragment in p for p in problems), problems


def test_toml_syntax_error_reports_line_and_column(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "[speech]\nrate = 175\nvoice = \"unterminated\n")
    assert len(problems) == 1
    assert re.search(r"TOML syntax error at line 3, column \d+", problems[0]), problems[0]


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"[speech]\nvoice = \"caf\xe9\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_cross_checks(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "[hazards]\nnear_height = 0.5\nvery_near_height = 0.4\n")
    assert any(p.startswith("hazards.very_near_height: must be larger than hazards.near_height") for p in problems)


def test_partial_config_keeps_defaults() -> None:
    cfg = from_dict({"speech": {"rate": 200}})
    assert cfg.speech.rate == 200
    assert cfg.speech.backend == Config().speech.backend

"""The command line contract: flags, exit codes, clean one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_cli import assert_clean_error, run_cli


def test_validate_config_ok() -> None:
    proc = run_cli("--validate-config")
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


def test_validate_config_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[speech]\nrate = 1000\nrat = 3\n[nope]\nx = 1\n", encoding="utf-8")
    proc = run_cli("--validate-config", "--config", str(cfg))
    assert_clean_error(proc, 2, "speech.rate: must be between 80 and 450 (got 1000)",
                       "speech.rat: unknown key (did you mean speech.rate?)", "nope: unknown section")


def test_broken_toml_exits_2_with_line_and_column(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("[speech\nrate = 1\n", encoding="utf-8")
    proc = run_cli("--demo", "--headless", "--config", str(cfg))
    assert_clean_error(proc, 2, "TOML syntax error at line 1")


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = run_cli("--validate-config", "--config", str(tmp_path / "none.toml"))
    assert_clean_error(proc, 2, "config file not found")


@pytest.mark.parametrize("args", [
    ["--max-frames", "0"], ["--max-seconds", "-1"], ["--speech", "loud"], ["--demo", "--video", "x.mp4"],
    ["--no-such-flag"],
])
def test_bad_flags_exit_2(args: list[str]) -> None:
    proc = run_cli(*args)
    assert_clean_error(proc, 2)
    assert "usage:" in proc.stderr


def test_unwritable_log_path_exits_2_before_loading_models(tmp_path: Path) -> None:
    proc = run_cli("--demo", "--headless", "--log", str(tmp_path / "no" / "such" / "dir" / "x.jsonl"))
    assert_clean_error(proc, 2, "does not exist")

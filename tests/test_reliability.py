"""Reliability through the real pipeline: faults in the workers and in speech,
and bad resources (a full or unwritable log, odd images, broken videos).

Every scenario is a real ``run.py`` in a child process (through
``tests/fault_launcher.py`` when a fault must be injected) on real video files
made here from real photos, with the real detector and, for speech faults,
real espeak-ng children. The scenarios of one group start together (they mostly
wait on real time), then each test checks one of them.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from assist.app import exitcodes
from assist.config import SpeechConfig
from assist.runtime.workers import SupervisedWorker
from assist.speech.phrases import notice
from assist.speech.wav import espeak_binary
from helpers_data import needs_espeak
from helpers_reliability import (
    FAST_CONFIG,
    Run,
    assert_valid_log,
    calm_scene,
    child_env,
    fit,
    no_traceback,
    pulse_clip,
    read_log,
    run_parallel,
    write_clip,
)

CAPTION_NOTICE = notice("captions_unavailable")
HAZARD_NOTICE = notice("hazards_unavailable")
WARNING_LEVELS = ("important", "message")
HAS_ESPEAK = espeak_binary() is not None
NO_MODELS = "[hazards]\nenabled = false\n[caption]\nenabled = false\n"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, bus_jpg: Path) -> dict[str, Path]:
    """The clips and configs the scenarios share (real photos, real encoders)."""
    d = tmp_path_factory.mktemp("media")
    bus = fit(cv2.imread(str(bus_jpg)))
    out = {
        "pulse": pulse_clip(d / "pulse.mp4", bus, first_calm_s=6.0, pulses=3, on_s=2.0, off_s=2.0),
        "long_pulse": pulse_clip(d / "long_pulse.mp4", bus, first_calm_s=4.0, pulses=5, on_s=2.0, off_s=2.0),
        "short_pulse": pulse_clip(d / "short_pulse.mp4", bus, first_calm_s=2.0, pulses=2, on_s=2.0, off_s=2.0),
        "calm": write_clip(d / "calm.mp4", [(calm_scene(), 20.0)]),
        "fast": d / "fast.toml",
        "no_models": d / "no_models.toml",
        "bus": bus_jpg,
    }
    out["fast"].write_text(FAST_CONFIG, encoding="utf-8")
    out["no_models"].write_text(NO_MODELS, encoding="utf-8")
    return out


# ============================================================= worker faults


@pytest.fixture(scope="module")
def fault_runs(media: dict[str, Path], detector_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Each fault injected into its own live run of the pulse clip (all at once)."""
    env = child_env(ASSIST_DETECTOR=str(detector_path))
    live = ["--video", str(media["pulse"]), "--headless", "--config", str(media["fast"])]
    quiet = [*live, "--speech", "none"]
    long_quiet = ["--video", str(media["long_pulse"]), "--headless", "--config", str(media["fast"]), "--speech", "none"]
    scenarios: dict[str, dict[str, Any]] = {
        "caption_raise": {"args": quiet, "faults": ["--caption-fault", "raise:2"], "env": env},
        "caption_hang": {"args": quiet, "faults": ["--caption-fault", "hang:1"], "env": env},
        # The detector fails a few seconds in (after 10 good runs), on the long clip: a restart
        # reloads the model, which takes seconds on a loaded machine, and the bus must come back after.
        "detector_raise": {"args": long_quiet, "faults": ["--detector-fault", "raise:2@10"], "env": env},
        "detector_hang": {"args": long_quiet, "faults": ["--detector-fault", "hang:1@10"], "env": env},
        # --every-frame (evaluation) has no supervised workers: a failing model must fail the run.
        "every_frame_detector_raise": {"args": ["--video", str(media["pulse"]), "--every-frame", "--headless",
                                                "--config", str(media["fast"]), "--speech", "none"],
                                       "faults": ["--detector-fault", "raise:1@3"], "env": env},
    }
    if HAS_ESPEAK:
        spoken = [*live, "--speech", "espeak"]
        calm = ["--video", str(media["calm"]), "--headless", "--config", str(media["fast"]), "--speech", "espeak"]
        scenarios.update({
            "speech_die": {"args": spoken, "faults": ["--speech-fault", "die:2"], "env": env},
            "speech_die_always": {"args": spoken, "faults": ["--speech-fault", "die:always"], "env": env},
            "speech_hang": {"args": calm, "faults": ["--speech-fault", "hang:1"], "env": env},
        })
    return run_parallel(scenarios, tmp_path_factory.mktemp("faults"), timeout=240.0)


def _one_notice(run: Run, text: str) -> dict[str, Any]:
    """The run raised exactly one spoken notice ``text``, and it was spoken; return its status event.

    One status event per change of state, carrying both the details and the spoken words:
    no separate event for the notice (``event`` = the notice's key)."""
    faults = run.of("status", event="worker_fault")
    assert [f["text"] for f in faults] == [text], (faults, run)
    assert faults[0]["worker"] in ("hazards", "captions") and faults[0]["kind"] in ("error", "hung", "gave_up")
    assert faults[0]["message"] and faults[0]["said"] is True, faults[0]
    for key in ("hazards_unavailable", "captions_unavailable", "hazards_back", "captions_back"):
        assert not run.of("status", event=key), (key, run.of("status", event=key))
    said = run.of("speech", text=text, event="start")
    # A state notice cut off by an urgent warning is said again after it (issue 15):
    # one notice, heard in full once.
    assert len(said) >= 1 and len(run.of("speech", text=text, event="end")) <= 1, run.of("speech", text=text)
    assert len(said) - len(run.of("speech", text=text, event="interrupted")) <= 1, run.of("speech", text=text)
    return faults[0]


def _complete(run: Run) -> None:
    assert run.code == 0, run
    assert run.log_path is not None
    assert_valid_log(read_log(run.log_path))


def test_a_caption_call_that_raises_is_restarted_with_one_notice_and_hazards_go_on(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["caption_raise"]
    _complete(run)
    assert len(run.marks) == 2, run.marks  # two calls failed: the second in a restarted worker
    fault = _one_notice(run, CAPTION_NOTICE)
    recovered = run.of("status", event="worker_recovered", worker="captions")
    assert len(recovered) == 1, recovered
    assert recovered[0]["text"] == notice("captions_back") and recovered[0]["said"] is True, recovered
    assert run.index(recovered[0]) > run.index(fault)
    assert run.after(recovered[0], "caption"), "no caption after the captioner came back"
    # The other half never stopped: warnings about several bus appearances came after the fault.
    assert len({e["frame"] for e in run.after(fault, "hazard")}) >= 2


def test_a_caption_call_that_hangs_is_abandoned_with_one_notice_and_hazards_go_on(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["caption_hang"]
    _complete(run)
    assert len(run.marks) == 1
    fault = _one_notice(run, CAPTION_NOTICE)
    recovered = run.of("status", event="worker_recovered", worker="captions")
    assert recovered and run.index(recovered[0]) > run.index(fault)
    assert run.after(recovered[0], "caption")
    assert len({e["frame"] for e in run.after(fault, "hazard")}) >= 2
    # The hung call was detected at its deadline (2 s), not waited for.
    captions_after = run.after(fault, "caption")
    assert captions_after and captions_after[0]["t"] - fault["t"] < 8.0


def test_a_detector_call_that_raises_is_restarted_with_one_notice_and_captions_go_on(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["detector_raise"]
    _complete(run)
    assert len(run.marks) == 2
    fault = _one_notice(run, HAZARD_NOTICE)
    assert run.of("speech", text=HAZARD_NOTICE, event="start")[0]["priority"] == "message"
    assert run.after(fault, "caption"), "captions stopped with the detector"
    recovered = run.of("status", event="worker_recovered", worker="hazards")
    assert len(recovered) == 1 and run.index(recovered[0]) > run.index(fault)
    assert recovered[0]["text"] == notice("hazards_back"), recovered
    assert run.of("speech", text=notice("hazards_back"), event="start"), "the recovery was not said"
    assert run.after(recovered[0], "hazard"), "no warning after the detector came back"


def test_a_detector_call_that_hangs_is_abandoned_with_one_notice_and_captions_go_on(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["detector_hang"]
    _complete(run)
    assert len(run.marks) == 1
    fault = _one_notice(run, HAZARD_NOTICE)
    assert run.after(fault, "caption")
    recovered = run.of("status", event="worker_recovered", worker="hazards")
    assert len(recovered) == 1 and run.index(recovered[0]) > run.index(fault)
    assert run.after(recovered[0], "hazard")


def test_in_every_frame_mode_a_failing_model_fails_the_run_with_the_internal_error_code(
        fault_runs: dict[str, Run]) -> None:
    """Evaluation must not quietly skip frames: exit 70 (documented), one error line, a complete log."""
    run = fault_runs["every_frame_detector_raise"]
    assert run.code == exitcodes.INTERNAL, run
    assert len(run.marks) == 1
    assert "error: internal error (" in run.err and "report it" in run.err
    assert run.log_path is not None
    events = read_log(run.log_path)
    assert_valid_log(events, exit_code=exitcodes.INTERNAL)
    assert events[-1]["reason"] == "internal_error"


def test_idle_steps_after_a_restart_are_not_a_recovery() -> None:
    """Two failing model calls with frameless steps between them are one outage, one notice."""
    stop = threading.Event()
    faults: list[str] = []
    recovered: list[float] = []
    plan = iter(["fail", "idle", "idle", "fail", "idle", "ok"])
    done = threading.Event()

    def step(_: None) -> None:
        what = next(plan, "ok")
        if what == "idle":
            time.sleep(0.01)  # no frame this time: no model call
            return
        with worker.busy():
            if what == "fail":
                raise RuntimeError("model failed")
        done.set()

    worker = SupervisedWorker("captions", lambda: None, step, stop=stop, deadline_s=1.0,
                              on_fault=lambda k, m: faults.append(k), on_recovered=lambda: recovered.append(1))
    worker.start()
    assert done.wait(3.0)
    time.sleep(0.05)
    stop.set()
    worker.join(1.0)
    assert worker.faults == 2
    assert faults == ["error"]
    assert recovered == [1]


# ============================================================= speech faults


def _assert_warnings_logged(run: Run) -> None:
    """Every warning decided is in the log with what became of its speech."""
    hazards = run.of("hazard")
    assert hazards, "no warning in this run"
    speech = run.of("speech")
    for h in hazards:
        phrase = h["text"].rstrip(".")
        assert any(phrase in (s["text"] or "") for s in speech), f"warning {h['text']!r} has no speech event"
    for i, s in enumerate(run.events):
        if s["type"] == "speech" and s["event"] == "start" and s["priority"] in WARNING_LEVELS:
            outcome = [e for e in run.events[i + 1:] if e["type"] == "speech" and e["text"] == s["text"]
                       and e["event"] in ("end", "interrupted", "dropped")]
            assert outcome, f"started warning {s['text']!r} has no end, interruption or drop"


@needs_espeak
def test_a_speech_child_that_dies_is_restarted_and_speech_goes_on(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["speech_die"]
    _complete(run)
    assert run.of("status", event="speech_backend")[0]["backend"] == "espeak"
    assert len(run.marks) == 2  # two espeak-ng children were killed mid-utterance
    failed = run.of("status", event="speech_backend_failed")
    assert len(failed) == 2, failed
    assert not run.of("status", event="speech_fallback")
    assert run.after(failed[-1], "speech", event="end"), "nothing was spoken after the restart"
    _assert_warnings_logged(run)


@needs_espeak
def test_speech_that_keeps_failing_falls_back_to_the_log_and_loses_no_warning(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["speech_die_always"]
    _complete(run)
    fallback = run.of("status", event="speech_fallback")
    assert len(fallback) == 1, fallback
    assert fallback[0]["backend"] == "none" and fallback[0]["failed_backend"] == "espeak"
    before = [e for e in run.events[:run.index(fallback[0])]
              if e["type"] == "status" and e.get("event") == "speech_backend_failed"]
    assert len(before) == SpeechConfig().restart_budget + 1
    assert not run.after(fallback[0], "status", event="speech_backend_failed")
    # The run goes on, speaking to the log: warnings after the fallback start and end.
    assert run.after(fallback[0], "speech", event="end")
    assert any(e["priority"] in WARNING_LEVELS for e in run.after(fallback[0], "speech", event="start"))
    _assert_warnings_logged(run)


@needs_espeak
def test_a_hung_speech_child_is_killed_at_its_deadline_and_speech_resumes(fault_runs: dict[str, Run]) -> None:
    run = fault_runs["speech_hang"]
    _complete(run)
    assert len(run.marks) == 1
    failed = run.of("status", event="speech_backend_failed")
    assert len(failed) == 1 and "did not finish" in failed[0]["text"], failed
    assert run.after(failed[0], "speech", event="start") and run.after(failed[0], "speech", event="end")
    assert not run.of("status", event="speech_fallback")


# ============================================================= resource faults


def _limit_file_size(limit: int) -> Any:
    """preexec_fn: files the child writes stop growing at ``limit`` bytes (a disk filling up)."""

    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process

    return apply


def _bad_images(folder: Path, bus_jpg: Path) -> dict[str, Path]:
    """One real photo and every odd image a folder may hold, in name order."""
    folder.mkdir()
    bus = cv2.imread(str(bus_jpg))
    files = {
        "good": folder / "00_bus.jpg", "huge": folder / "01_huge.jpg", "empty": folder / "02_empty.jpg",
        "tiny": folder / "03_one_pixel.png", "deep": folder / "04_16bit.png", "rgba": folder / "05_rgba.png",
        "corrupt": folder / "06_corrupt.jpg", "truncated": folder / "07_truncated.jpg",
    }
    shutil.copy(bus_jpg, files["good"])
    cv2.imwrite(str(files["huge"]), cv2.resize(bus, (6000, 8000), interpolation=cv2.INTER_NEAREST))
    files["empty"].write_bytes(b"")
    cv2.imwrite(str(files["tiny"]), np.full((1, 1, 3), 128, np.uint8))
    cv2.imwrite(str(files["deep"]), bus.astype(np.uint16) * 257)
    cv2.imwrite(str(files["rgba"]), cv2.cvtColor(bus, cv2.COLOR_BGR2BGRA))
    files["corrupt"].write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    files["truncated"].write_bytes(bus_jpg.read_bytes()[:300])
    return files


@pytest.fixture(scope="module")
def resource_runs(media: dict[str, Path], detector_path: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[str, Any]:
    """Every bad resource in its own run (all at once); returns runs and the files made."""
    d = tmp_path_factory.mktemp("resources")
    env = child_env(ASSIST_DETECTOR=str(detector_path))
    images = _bad_images(d / "images", media["bus"])
    (d / "empty_folder").mkdir()
    # A real MJPG AVI cut in the middle (plays what is there), an mp4 cut (its index is at the end).
    avi = d / "cut.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    for i in range(60):
        w.write(np.roll(calm_scene(), i * 4, axis=1))
    w.release()
    data = avi.read_bytes()
    avi.write_bytes(data[:len(data) // 2])
    mp4 = d / "cut.mp4"
    mp4.write_bytes(media["pulse"].read_bytes()[: media["pulse"].stat().st_size // 2])
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(5).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    empty_video = d / "empty.mp4"
    empty_video.write_bytes(b"")

    every = ["--every-frame", "--headless", "--speech", "none"]
    fast, no_models = str(media["fast"]), str(media["no_models"])
    pulse = str(media["short_pulse"])
    sc: dict[str, dict[str, Any]] = {
        "log_dev_full": {"args": ["--video", pulse, *every, "--config", fast, "--log", "/dev/full"], "log": False,
                         "env": env},
        "log_fills_up": {"args": ["--video", pulse, *every, "--config", fast], "env": env,
                         "preexec_fn": _limit_file_size(2000)},
        "images_folder": {"args": ["--images", str(images["good"].parent), *every, "--config", fast], "env": env},
        "empty_folder": {"args": ["--images", str(d / "empty_folder"), *every, "--config", no_models], "env": env},
        "video_cut_avi": {"args": ["--video", str(avi), *every, "--config", no_models], "env": env},
        "video_cut_mp4": {"args": ["--video", str(mp4), *every, "--config", no_models], "env": env},
        "video_corrupt": {"args": ["--video", str(corrupt), *every, "--config", no_models], "env": env},
        "video_empty": {"args": ["--video", str(empty_video), *every, "--config", no_models], "env": env},
        "image_tiny_detector": {"args": ["--image", str(images["tiny"]), "--speech", "none"], "log": False,
                                "env": env},
    }
    for name in ("huge", "empty", "deep", "rgba", "corrupt", "truncated"):
        sc[f"image_{name}"] = {"args": ["--image", str(images[name]), "--speech", "none", "--config", no_models],
                               "log": False, "env": env}
    if os.geteuid() != 0:  # root writes through file permissions: no unwritable file for it
        ro = d / "read_only.jsonl"
        ro.write_text("", encoding="utf-8")
        ro.chmod(0o444)
        sc["log_read_only"] = {"args": ["--video", pulse, *every, "--config", no_models, "--log", str(ro)],
                               "log": False, "env": env}
    return {"runs": run_parallel(sc, d, timeout=200.0), "images": images}


def test_a_log_on_a_full_disk_reports_one_error_and_the_agent_keeps_speaking(resource_runs: dict[str, Any]) -> None:
    run = resource_runs["runs"]["log_dev_full"]
    no_traceback(run.out, run.err)
    assert run.code == 0, run
    errors = [ln for ln in run.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "event log /dev/full: cannot write" in errors[0], run.err
    said = [ln for ln in run.out.splitlines() if " SAY (" in ln]
    assert len(said) >= 3, run.out  # warnings and descriptions went on after the log failed
    assert "STATUS stopped" in run.out.splitlines()[-1]


def test_a_log_that_fills_the_disk_mid_run_keeps_what_was_written(resource_runs: dict[str, Any]) -> None:
    run = resource_runs["runs"]["log_fills_up"]
    no_traceback(run.out, run.err)
    assert run.code == 0, run
    errors = [ln for ln in run.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "cannot write" in errors[0], run.err
    assert run.log_path is not None and 0 < run.log_path.stat().st_size <= 2000
    assert run.events and run.events[0]["event"] == "started"  # complete lines up to the limit are valid JSON
    assert not any(e.get("event") == "stopped" for e in run.events)
    said = [ln for ln in run.out.splitlines() if " SAY (" in ln]
    assert len(said) >= 3 and "STATUS stopped" in run.out


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_read_only_log_file_is_refused_before_models_load(resource_runs: dict[str, Any]) -> None:
    run = resource_runs["runs"]["log_read_only"]
    no_traceback(run.out, run.err)
    assert run.code == 2 and "not writable" in run.err, run


def test_a_folder_of_odd_images_plays_the_good_ones_and_counts_the_rest(resource_runs: dict[str, Any]) -> None:
    run = resource_runs["runs"]["images_folder"]
    no_traceback(run.out, run.err)
    _complete(run)
    end = run.of("status", event="end_of_input")
    assert len(end) == 1
    # empty, random bytes and a cut JPEG header cannot be decoded: skipped and counted;
    # huge, 1x1, 16-bit and 4-channel images are normalised and processed.
    assert end[0]["skipped"] == 3 and end[0]["frames"] == 5, end
    for name in ("02_empty.jpg", "06_corrupt.jpg", "07_truncated.jpg"):
        assert name in run.err, f"no message names the skipped {name}"
    assert {e["label"] for e in run.of("hazard")} >= {"bus"}  # the real detector saw the real photo


@pytest.mark.parametrize(("name", "code", "fragment"), [
    ("huge", 0, "Caption:"), ("deep", 0, "Caption:"), ("rgba", 0, "Caption:"),
    ("empty", 3, "empty file"), ("corrupt", 3, "cannot decode image"), ("truncated", 3, "cannot decode image"),
])
def test_one_odd_image_gets_a_caption_or_a_clear_error(resource_runs: dict[str, Any], name: str, code: int,
                                                      fragment: str) -> None:
    run = resource_runs["runs"][f"image_{name}"]
    no_traceback(run.out, run.err)
    assert run.code == code, run
    assert fragment in (run.out if code == 0 else run.err), (run.out, run.err)
    if code:
        assert str(resource_runs["images"][name]) in run.err  # the message names the file


def test_a_one_pixel_image_goes_through_the_real_detector(resource_runs: dict[str, Any]) -> None:
    run = resource_runs["runs"]["image_tiny_detector"]
    no_traceback(run.out, run.err)
    assert run.code == 0, run
    assert "Caption:" in run.out and "Hazards: none" in run.out


@pytest.mark.parametrize(("name", "code", "fragment"), [
    ("empty_folder", 3, "has no images"),
    ("video_cut_mp4", 3, "corrupt, truncated"),
    ("video_corrupt", 3, "cannot open video"),
    ("video_empty", 3, "empty file"),
])
def test_unusable_sources_exit_3_with_one_clear_line(resource_runs: dict[str, Any], name: str, code: int,
                                                     fragment: str) -> None:
    run = resource_runs["runs"][name]
    no_traceback(run.out, run.err)
    assert run.code == code, run
    errors = [ln for ln in run.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], run.err
    assert run.events and run.events[-1]["event"] == "stopped" and run.events[-1]["exit_code"] == code


def test_a_cut_video_plays_what_is_there_and_ends_cleanly(resource_runs: dict[str, Any]) -> None:
    run = resource_runs["runs"]["video_cut_avi"]
    no_traceback(run.out, run.err)
    _complete(run)
    end = run.of("status", event="end_of_input")
    assert len(end) == 1 and 5 <= end[0]["frames"] < 60, end


def test_a_camera_lost_for_good_ends_the_run_with_exit_3_and_its_reason(tmp_path: Path) -> None:
    """A network camera that goes away and stays away, with camera.reconnect_attempts = 2:
    "Camera lost" is said, then the run ends promptly with exit 3 and one line saying why."""
    from helpers_capture import MjpegServer
    from helpers_reliability import finish, launch, wait_for_event

    cfg = tmp_path / "stream.toml"
    cfg.write_text("[camera]\nstall_timeout_s = 0.5\nreconnect_initial_s = 0.1\nreconnect_max_s = 0.2\n"
                   "reconnect_attempts = 2\nopen_timeout_s = 2.0\n" + NO_MODELS, encoding="utf-8")
    log = tmp_path / "run.jsonl"
    server = MjpegServer(fps=15.0, max_s=60.0)
    server.start()
    try:
        proc = launch(["--video", server.url, "--headless", "--speech", "none", "--config", str(cfg),
                       "--log", str(log)])
        wait_for_event(log, lambda e: e.get("event") == "speech_backend", proc, 60)
        time.sleep(0.5)
        server.stop()
        t_down = time.monotonic()
        code, out, err = finish(proc, 30)
        took = time.monotonic() - t_down
    finally:
        server.stop()
    no_traceback(out, err)
    assert code == 3, (code, err)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "lost and not back after 2 reconnect tries" in errors[0], err
    events = read_log(log)
    assert_valid_log(events, exit_code=3)
    said = [e for e in events if e["type"] == "speech" and e["text"] == notice("camera_lost")]
    assert [e["event"] for e in said] == ["start", "end"]  # heard in full before the run ended
    assert [e["event"] for e in events if e["type"] == "status"].count("camera_gave_up") == 1
    assert events[-1]["event"] == "stopped" and events[-1]["reason"] == "source_lost", events[-1]
    assert took < 6.0, f"the run took {took:.1f} s to end after the camera went away"
    # A quiet console (issue 13): "Camera lost" is one console line, no logging warning besides.
    lost = [ln for ln in out.splitlines() if "Camera lost" in ln or "STATUS camera_lost" in ln]  # not the tmp path
    assert len(lost) == 1 and "SAY" in lost[0], out
    assert not any(ln.startswith("WARNING") for ln in err.splitlines()), err

"""Strict configuration: one dataclass per section of ``config.toml``.

Every key has a type, a default, bounds or choices and a one-line doc in its
field metadata. Loading collects *every* problem at once, each with its key
path (``speech.rate: must be between 80 and 450 (got 1000)``); unknown keys and
sections get a "did you mean" suggestion; TOML syntax errors give line and
column. Nothing here raises anything but :class:`ConfigError`.

Adding a key: add a field to its section's dataclass with ``opt(...)`` and the
same key, commented, to ``config.toml`` (a test checks the two agree).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.toml"
MODELS_DIR = PROJECT_ROOT / "models"  # where the detector and captioner weights are looked for


def project_path(value: str | Path) -> Path:
    """A path from config.toml or the environment: as given (relative to the
    working directory) when it exists or is absolute, else relative to the
    project folder, where config.toml lives. The one rule for model paths."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return PROJECT_ROOT / p


class ConfigError(Exception):
    """The config cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
        choices: tuple[Any, ...] | None = None) -> Any:
    """A config field with its default, documentation and allowed values."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class CameraConfig:
    """Capture: device, stall watchdog and reconnect."""

    index: int = opt(0, "capture device index used when no source flag is given", min=0, max=63)
    backend: str = opt("auto", "OpenCV capture backend", choices=("auto", "v4l2", "any"))
    width_px: int = opt(0, "requested capture width, 0 = device default", min=0, max=7680)
    height_px: int = opt(0, "requested capture height, 0 = device default", min=0, max=4320)
    max_side_px: int = opt(1280, "larger frames are downscaled so their long side is this", min=64, max=8192)
    stall_timeout_s: float = opt(2.0, "no frame for this long = camera lost", min=0.1, max=60.0)
    reconnect_initial_s: float = opt(0.5, "first reconnect delay (doubles each try)", min=0.0, max=60.0)
    reconnect_max_s: float = opt(5.0, "longest delay between reconnect tries", min=0.0, max=600.0)
    reconnect_attempts: int = opt(0, "reconnect tries before giving up, 0 = forever", min=0, max=1000000)
    open_timeout_s: float = opt(8.0, "give up opening a source after this long (exit 3)", min=0.5, max=120.0)
    status_interval_s: float = opt(10.0, "how often a status event reports fps and drops, 0 = never", min=0.0, max=3600.0)
    images_fps: float = opt(0.25, "images per second for --images (slow enough to describe each one)", min=0.01, max=120.0)
    hfov_deg: float = opt(70.0, "horizontal field of view of the camera in degrees (clock positions and distances)",
                          min=20.0, max=170.0)


@dataclass
class SceneConfig:
    """Scene-change gate: when to re-caption. Lower thresholds = more captions."""

    enabled: bool = opt(True, "re-caption on scene changes; false = caption only the first scene and on refresh")
    analysis_width_px: int = opt(64, "width of the downscaled gray frame the gate scores", min=16, max=320)
    motion_window_s: float = opt(0.2, "motion is measured between frames this far apart", min=0.0, max=2.0)
    motion_threshold_pct: float = opt(3.0, "view shift (percent of frame width per motion window) from which "
                                      "the view is moving", min=0.1, max=100.0)
    motion_min_change: float = opt(0.05, "median regional change (contrast units) below which the view is still "
                                   "whatever the shift", min=0.0, max=5.0)
    settle_s: float = opt(0.8, "the view must stay still this long before a new scene is captioned", min=0.0, max=10.0)
    new_scene_threshold: float = opt(0.27, "hash distance (0..1) from the last captioned frame that makes a new scene",
                                     min=0.0, max=1.0)
    min_interval_s: float = opt(4.0, "never caption more often than this", min=0.0, max=600.0)
    max_interval_s: float = opt(0.0, "caption again after this long even without change, 0 = never", min=0.0, max=3600.0)
    startup_s: float = opt(1.5, "describe the sharpest frame seen so far this long after the first frame if no still "
                           "view was described yet (walking), 0 = wait for a still view", min=0.0, max=60.0)
    walking_refresh_s: float = opt(15.0, "a view that keeps moving (walking) is described after this long, 0 = never",
                                   min=0.0, max=3600.0)
    dark_threshold: float = opt(0.08, "mean brightness (0..1) below which the view is too dark to describe", min=0.0, max=1.0)
    blur_threshold: float = opt(0.35, "sharpness (0..2, edge fineness) below which the view is too blurred to describe",
                                min=0.0, max=2.0)
    quality_hold_s: float = opt(1.0, "a new frame quality (dark, blurred, ok) must hold this long to be reported",
                                min=0.0, max=60.0)
    log_scores: bool = opt(False, "log the gate's per-frame scores and decisions (same as --log-gate)")


@dataclass
class CaptionConfig:
    """Captioner: model, generation and grounding."""

    enabled: bool = opt(True, "describe scenes at all")
    model: str = opt("nlpconnect/vit-gpt2-image-captioning", "hub id or local folder of an image-to-text model")
    backend: str = opt("auto", "auto = fast path when available, else plain transformers",
                       choices=("auto", "fast", "transformers"))
    device: str = opt("auto", "where the captioner runs", choices=("auto", "cpu", "cuda"))
    threads: int = opt(0, "CPU threads for the captioner, 0 = automatic "
                          "(all cores but the detector's: 1 of 2, 3 of 4, n-2 above)", min=0, max=256)
    precision: str = opt("auto", "fast path weights: auto = ort-int8 on CPU (int8 without onnxruntime), fp16 on CUDA; "
                         "fp32 = identical to transformers", choices=("auto", "fp32", "int8", "fp16", "ort-int8",
                                                                      "ort-int4"))
    max_new_tokens: int = opt(16, "longest caption in tokens", min=1, max=128)
    num_beams: int = opt(1, "beam search width, 1 = greedy (fastest)", min=1, max=16)
    repetition_penalty: float = opt(1.0, "penalty for repeated tokens, 1.0 = none", min=0.5, max=5.0)
    no_repeat_ngram_size: int = opt(3, "forbid repeating n-grams of this size, 0 = off", min=0, max=10)
    max_age_s: float = opt(4.0, "a caption whose frame is older than this when ready is dropped", min=0.1, max=120.0)
    deadline_s: float = opt(20.0, "a caption call running longer than this is treated as hung", min=0.5, max=600.0)
    grounding: bool = opt(True, "check captions against the detector and say so honestly")
    translate_to: str = opt("", "hub id or folder of a translation model (MarianMT), empty = off")


@dataclass
class HazardConfig:
    """Hazard detector, tracking and announcement policy."""

    enabled: bool = opt(True, "detect and announce hazards")
    model: str = opt("yolo11n.pt", "ultralytics weights: .pt, OpenVINO folder, ONNX, TFLite, engine")
    device: str = opt("auto", "where the detector runs", choices=("auto", "cpu", "cuda"))
    imgsz_px: int = opt(320, "detector input size (multiple of 32)", min=32, max=1920)
    confidence: float = opt(0.25, "minimum detection confidence", min=0.01, max=1.0)
    rate_hz: float = opt(30.0, "detector runs per second on the freshest frame (at most one per new frame)",
                         min=0.5, max=60.0)
    deadline_s: float = opt(3.0, "a detector call running longer than this is treated as hung", min=0.1, max=60.0)
    confirm_evidence: float = opt(1.2, "detector confidence that must back a new state within confirm_window_s "
                                  "(above 1: no single run is ever spoken; 0 = count confirm_frames runs)",
                                  min=0.0, max=30.0)
    confirm_window_s: float = opt(0.4, "the time over which confirming evidence adds up (at least 2.5 detector "
                                  "periods)", min=0.05, max=10.0)
    confirm_frames: int = opt(3, "with confirm_evidence = 0: runs a state must hold before it is spoken",
                              min=1, max=30)
    near_height: float = opt(0.33, "box height (fraction of frame) from which a detection is near "
                             "(--image, caption grounding)", min=0.01, max=1.0)
    very_near_height: float = opt(0.6, "box height from which a detection is very near (--image)", min=0.01, max=1.0)
    near_m: float = opt(5.0, "estimated distance (metres) from which an object is near", min=0.5, max=100.0)
    very_near_m: float = opt(2.5, "estimated distance (metres) from which an object is very near", min=0.2, max=50.0)
    min_height: float = opt(0.08, "boxes shorter than this (fraction of frame) are too far to warn about",
                            min=0.0, max=1.0)
    approach_ttc_s: float = opt(4.0, "time to contact below which an object is approaching", min=0.1, max=60.0)
    ahead_width: float = opt(0.34, "width of the central 'ahead' band (fraction of frame)", min=0.05, max=1.0)
    class_cooldown_s: float = opt(6.0, "the same news (class and severity) is not announced again for this long",
                                  min=0.0, max=600.0)
    told_memory_s: float = opt(10.0, "an object seen again this long after it left the view is not news unless "
                               "worse (0 = every return is news)", min=0.0, max=600.0)
    high: list[str] = opt(["car", "bus", "truck", "bicycle", "motorcycle", "train"],
                          "high tier: announced when near or closing in, even if far")
    medium: list[str] = opt(["person", "dog", "horse", "cow"], "medium tier: announced when near or approaching")
    low: list[str] = opt(["chair", "bench", "fire hydrant", "stop sign", "potted plant", "parking meter"],
                         "low tier (obstacles): announced when very near")


@dataclass
class SpeechConfig:
    """Speech arbiter and backends."""

    backend: str = opt("auto", "speech engine", choices=("auto", "espeak", "pyttsx3", "none"))
    language: str = opt("en", "language of phrases and voice", choices=("en", "fr", "de", "es"))
    voice: str = opt("", "engine voice name, empty = the language's default")
    rate: int = opt(175, "speaking rate in words per minute", min=80, max=450)
    volume: float = opt(1.0, "speech volume 0..1", min=0.0, max=1.0)
    caption_max_age_s: float = opt(5.0, "a description not started this long after its frame is dropped", min=0.1, max=120.0)
    warning_max_age_s: float = opt(2.5, "a warning not started this long after its frame is dropped", min=0.1, max=30.0)
    repeat_cooldown_s: float = opt(10.0, "the same text within this long is suppressed", min=0.0, max=3600.0)
    earcon: bool = opt(True, "play a short directional tone before urgent warnings")
    restart_budget: int = opt(3, "backend restarts before falling back to the silent log backend", min=0, max=100)
    notification_max_age_s: float = opt(10.0, "a status notice not started this long after it was raised is dropped",
                                        min=0.1, max=600.0)
    verbosity: str = opt("normal", "how much is said: quiet = urgent warnings only, normal, verbose = every "
                         "relevant object (the quieter/louder commands step it)", choices=("quiet", "normal", "verbose"))
    distance_unit: str = opt("metres", "how distances are said", choices=("metres", "steps", "none"))
    direction_style: str = opt("sides", "how directions are said: sides (on the left) or clock (at 2 o'clock)",
                               choices=("sides", "clock"))


@dataclass
class LogConfig:
    """Event log and console."""

    path: str = opt("", "write the event log (JSON Lines) here, empty = no file")
    console: bool = opt(True, "print one readable line per announcement when headless")


@dataclass
class Config:
    """The whole configuration."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    caption: CaptionConfig = field(default_factory=CaptionConfig)
    hazards: HazardConfig = field(default_factory=HazardConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    log: LogConfig = field(default_factory=LogConfig)


def _suggest(name: str, candidates: list[str], prefix: str) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _check_value(path: str, value: Any, tp: Any, meta: dict[str, Any]) -> tuple[Any, str | None]:
    """Validate one value; return (converted value, problem or None)."""
    if tp is bool:
        if not isinstance(value, bool):
            return value, f"{path}: must be true or false (got {value!r})"
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"{path}: must be an integer (got {value!r})"
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"{path}: must be a number (got {value!r})"
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            return value, f"{path}: must be a finite number (got {value!r})"
    elif tp is str:
        if not isinstance(value, str):
            return value, f"{path}: must be a string (got {value!r})"
    else:  # list[str]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return value, f"{path}: must be a list of strings (got {value!r})"
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if tp in (int, float) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        return value, f"{path}: must be between {lo:g} and {hi:g} (got {value!r})"
    if choices is not None and value not in choices:
        return value, f"{path}: must be one of {', '.join(map(str, choices))} (got {value!r})"
    return value, None


def section_fields(cls: type) -> dict[str, tuple[Any, dict[str, Any], Any]]:
    """{key: (type, metadata, default)} for one section dataclass."""
    hints = get_type_hints(cls)
    out: dict[str, tuple[Any, dict[str, Any], Any]] = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        tp = hints[f.name]
        out[f.name] = (tp if tp in (bool, int, float, str) else list, dict(f.metadata), default)
    return out


def sections() -> dict[str, type]:
    """{section name: section dataclass}."""
    return {f.name: f.default_factory().__class__ for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _toml_error_message(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    if m:
        base = msg[: m.start()].strip()
        return f"{path}: TOML syntax error at line {m.group(1)}, column {m.group(2)}: {base}"
    return f"{path}: TOML syntax error: {msg}"


def from_dict(data: dict[str, Any]) -> Config:
    """Build a Config from parsed TOML, reporting every problem at once."""
    problems: list[str] = []
    secs = sections()
    cfg = Config()
    for sec_name, sec_value in data.items():
        if sec_name not in secs:
            problems.append(f"{sec_name}: unknown section{_suggest(sec_name, list(secs), '')}"
                            f" (sections: {', '.join(secs)})")
            continue
        if not isinstance(sec_value, dict):
            problems.append(f"{sec_name}: must be a table [{sec_name}] (got {sec_value!r})")
            continue
        fields_ = section_fields(secs[sec_name])
        target = getattr(cfg, sec_name)
        for key, value in sec_value.items():
            path = f"{sec_name}.{key}"
            if key not in fields_:
                problems.append(f"{path}: unknown key{_suggest(key, list(fields_), sec_name + '.')}")
                continue
            tp, meta, _ = fields_[key]
            value, problem = _check_value(path, value, tp, meta)
            if problem:
                problems.append(problem)
            else:
                setattr(target, key, value)
    problems.extend(cross_checks(cfg))
    if problems:
        raise ConfigError(problems)
    return cfg


def cross_checks(cfg: Config) -> list[str]:
    """Rules that involve more than one key."""
    problems = []
    if cfg.hazards.very_near_height <= cfg.hazards.near_height:
        problems.append(f"hazards.very_near_height: must be larger than hazards.near_height "
                        f"({cfg.hazards.near_height:g}) (got {cfg.hazards.very_near_height:g})")
    if cfg.hazards.min_height >= cfg.hazards.near_height:
        problems.append(f"hazards.min_height: must be smaller than hazards.near_height "
                        f"({cfg.hazards.near_height:g}) (got {cfg.hazards.min_height:g})")
    if cfg.hazards.very_near_m >= cfg.hazards.near_m:
        problems.append(f"hazards.very_near_m: must be smaller than hazards.near_m "
                        f"({cfg.hazards.near_m:g}) (got {cfg.hazards.very_near_m:g})")
    if cfg.camera.reconnect_max_s < cfg.camera.reconnect_initial_s:
        problems.append("camera.reconnect_max_s: must be at least camera.reconnect_initial_s "
                        f"({cfg.camera.reconnect_initial_s:g}) (got {cfg.camera.reconnect_max_s:g})")
    if cfg.scene.max_interval_s and cfg.scene.max_interval_s < cfg.scene.min_interval_s:
        problems.append("scene.max_interval_s: must be 0 or at least scene.min_interval_s "
                        f"({cfg.scene.min_interval_s:g}) (got {cfg.scene.max_interval_s:g})")
    if cfg.hazards.imgsz_px % 32:
        problems.append(f"hazards.imgsz_px: must be a multiple of 32 (got {cfg.hazards.imgsz_px})")
    return problems


def load_config(path: str | Path | None = None) -> Config:
    """Load and validate a config file (default: the project's config.toml).

    Raises ConfigError with every problem; never anything else.
    """
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{p}: config file not found (pass --config PATH, or restore config.toml)"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{p}: is a folder, not a config file (pass --config PATH to a .toml file)"]) from None
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read config ({exc.strerror or exc})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}: not UTF-8 text (byte {exc.start}); save the config as UTF-8"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_error_message(p, exc)]) from None
    return from_dict(data)

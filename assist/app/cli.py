"""Command line: parse flags, load the config, run the pipeline or one image.

Every user-caused failure ends with one line on stderr naming the problem and
the fix, and a documented exit code (assist/app/exitcodes.py); no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from assist.app import exitcodes
from assist.app.errors import CliError, exit_code
from assist.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from assist.runtime.options import RunOptions, RunSeams
from assist.runtime.signals import StopSignal

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flags as in ../shared/DESIGN.md's CLI contract)."""
    p = argparse.ArgumentParser(
        prog="run.py",
        description="Assistive camera agent: speaks hazard warnings and short scene descriptions.",
        epilog="Exit codes: 0 ok, 2 usage/config error, 3 source cannot be opened, 4 model missing.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", metavar="N", help="capture device index or path (default: camera.index in config)")
    src.add_argument("--video", metavar="PATH_OR_URL", help="a video file or stream URL (rtsp://, http://)")
    src.add_argument("--image", metavar="PATH", help="caption one image, print the caption and hazards, exit")
    src.add_argument("--images", metavar="DIR", help="every image in a folder, in name order")
    src.add_argument("--demo", action="store_true", help="the built-in demo clip (no camera needed)")
    p.add_argument("--config", metavar="PATH", default=None, help=f"config file (default {DEFAULT_CONFIG_PATH.name})")
    p.add_argument("--validate-config", action="store_true", help="check the config, print every problem, exit 0 or 2")
    p.add_argument("--headless", action="store_true", help="no preview window")
    p.add_argument("--log", metavar="PATH", help="write the event log (JSON Lines) there")
    p.add_argument("--speech", choices=("auto", "espeak", "pyttsx3", "none"), help="speech backend")
    p.add_argument("--max-seconds", type=_positive_float, metavar="S", help="stop after S seconds of input")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--save-video", metavar="PATH", help="write the annotated frames to a video")
    p.add_argument("--speech-wav", metavar="DIR", help="also write every utterance as a WAV file there")
    p.add_argument("--log-gate", action="store_true", help="add the scene gate's per-frame scores to the log")
    p.add_argument("--control", metavar="PATH|-",
                   help="read commands (describe, repeat, pause, resume, quieter, louder, quit), one per line, "
                        "from a FIFO, a file or - (standard input)")
    p.add_argument("--every-frame", action="store_true",
                   help="files: process every frame in order, deterministically (evaluation, tests)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    return p


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number (got {text!r})")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text!r})") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {text!r})")
    return value


def _print_config_problems(path: str, problems: list[str], validating: bool = False) -> None:
    n = len(problems)
    # The hint to run --validate-config is noise when that is what runs.
    hint = "" if validating else " (fix them, or run --validate-config to check)"
    print(f"error: config {path}: {n} problem{'s' if n != 1 else ''}{hint}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


def options_from_args(args: argparse.Namespace, cfg: Config) -> RunOptions:
    """Turn parsed flags into RunOptions and apply flag overrides to ``cfg``."""
    if args.video:
        kind, value = "video", args.video
    elif args.images:
        kind, value = "images", args.images
    elif args.image:
        kind, value = "image", args.image
    elif args.demo:
        kind, value = "demo", ""
    else:
        kind, value = "camera", args.camera if args.camera is not None else str(cfg.camera.index)
    if args.speech:
        cfg.speech.backend = args.speech
    if args.log_gate:
        cfg.scene.log_scores = True
    log_path = args.log or cfg.log.path or None
    return RunOptions(
        source_kind=kind, source_value=value, headless=args.headless, every_frame=args.every_frame,
        max_seconds=args.max_seconds, max_frames=args.max_frames,
        save_video=Path(args.save_video) if args.save_video else None,
        speech_wav=Path(args.speech_wav) if args.speech_wav else None,
        log_path=Path(log_path) if log_path else None, log_gate=cfg.scene.log_scores, control=args.control,
    )


def _check_output_paths(opts: RunOptions) -> None:
    """Fail before any model loads if an output cannot be written (exit 2)."""
    for flag, path in (("--log", opts.log_path), ("--save-video", opts.save_video)):
        if path is None:
            continue
        parent = path.resolve().parent
        if path.is_dir():
            raise CliError(f"{flag} {path}: is a folder; give a file path", exitcodes.USAGE)
        if not parent.is_dir():
            raise CliError(f"{flag} {path}: folder {parent} does not exist; create it or choose another path",
                           exitcodes.USAGE)
        if path.exists():
            # An existing file (or device: /dev/null, /dev/full) only needs to
            # be writable itself; its folder may well not be (/dev is not).
            if not os.access(path, os.W_OK):
                raise CliError(f"{flag} {path}: file is not writable; choose another path", exitcodes.USAGE)
        elif not os.access(parent, os.W_OK):
            raise CliError(f"{flag} {path}: folder {parent} is not writable; choose another path", exitcodes.USAGE)
    if opts.control is not None:  # before any model loads; ControlError is exit 2 (app/errors.py)
        from assist.runtime.control import check_control_path

        check_control_path(opts.control)
    if opts.speech_wav is not None:
        try:
            opts.speech_wav.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--speech-wav {opts.speech_wav}: cannot create folder ({exc.strerror or exc})",
                           exitcodes.USAGE) from None


def main(argv: list[str] | None = None, *, seams: RunSeams | None = None) -> int:
    """Run the command line; returns the process exit code. ``seams`` injects
    parts of the run (tests' fault injection); production passes nothing."""
    # First thing: a signal in any later state must end the run cleanly.
    stop = StopSignal().install()
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage line on bad flags
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # ultralytics prints "Loading ... for OpenVINO inference" on every
        # model load (twice a run); its level is read once, at import.
        os.environ.setdefault("YOLO_VERBOSE", "False")
    # Never pip-install a missing format runtime in the middle of a run (and
    # hang offline): the error names the package and extra instead.
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    config_path = args.config or str(DEFAULT_CONFIG_PATH)
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        _print_config_problems(config_path, exc.problems, validating=args.validate_config)
        return exitcodes.USAGE
    if args.validate_config:
        print(f"config {config_path}: ok")
        return exitcodes.OK
    try:
        opts = options_from_args(args, cfg)
        _check_output_paths(opts)
        if opts.source_kind == "image":
            from assist.app.image_command import describe_image_cli

            return describe_image_cli(Path(opts.source_value), cfg)
        from assist.runtime.pipeline import run_pipeline

        return run_pipeline(cfg, opts, exit_code=exit_code, stop=stop, hard_exit=True, seams=seams)
    except KeyboardInterrupt:
        return exitcodes.OK
    except Exception as exc:
        code = exit_code(exc)
        if code is None:  # not a declared error: a bug, let it show
            raise
        print(f"error: {exc}", file=sys.stderr)
        return code

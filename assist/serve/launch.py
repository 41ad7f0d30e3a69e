"""``make serve``: make the server environment if needed, find the models the
agent would use, and start :mod:`assist.serve.server` in ``.venv-serve``.

    python -m assist.serve.launch [--port 8000] [--host 127.0.0.1] [--config config.toml]
    python -m assist.serve.launch --prepare        # only make .venv-serve (make test does this once)

Runs in the agent's environment (it uses the agent's model resolution); the
server process replaces it (``exec``), so its pid is the server's and Ctrl-C or
SIGTERM reach the server directly. The model hosts run with this interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from assist.serve import is_remote

ROOT = Path(__file__).resolve().parents[2]
SERVE_VENV = ROOT / ".venv-serve"
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
EXIT_MODEL = 4
EXIT_ENV = 5


def _stamp_value() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def serve_python(venv: Path = SERVE_VENV) -> Path:
    """The server environment's interpreter."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def serve_venv_ready(venv: Path = SERVE_VENV) -> bool:
    """True when ``venv`` holds the current requirements."""
    stamp = venv / ".installed"
    return serve_python(venv).exists() and stamp.is_file() and stamp.read_text().strip() == _stamp_value()


def ensure_serve_venv(venv: Path = SERVE_VENV, *, quiet: bool = True) -> Path:
    """Create or update the server environment (about 40 s and 370 MB from PyPI, once); its python.

    Made from the same base interpreter as this environment, so its ``libpython`` is the one the
    server puts on LD_LIBRARY_PATH. Raises RuntimeError with pip's last line when it fails.
    """
    if serve_venv_ready(venv):
        return serve_python(venv)
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not serve_python(venv).exists():
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    cmd = [str(serve_python(venv)), "-m", "pip", "install", "--disable-pip-version-check",
           *(["-q"] if quiet else []), "-r", str(REQUIREMENTS)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise RuntimeError(f"cannot install the server environment {venv} ({last}); "
                           f"retry with: {' '.join(cmd)}")
    (venv / ".installed").write_text(_stamp_value() + "\n")
    return serve_python(venv)


def find_models(config_path: str | None) -> tuple[str, str | None]:
    """(detector weights, captioner folder or None) by the agent's own resolution order."""
    from assist.config import DEFAULT_CONFIG_PATH, load_config
    from assist.describe.captioner import resolve_captioner
    from assist.hazards.detector import DetectorModelMissing, require_detector

    cfg = load_config(config_path or str(DEFAULT_CONFIG_PATH))
    for ref, what in ((os.environ.get("ASSIST_DETECTOR") or cfg.hazards.model, "ASSIST_DETECTOR / hazards.model"),
                      (os.environ.get("ASSIST_CAPTIONER") or cfg.caption.model, "ASSIST_CAPTIONER / caption.model")):
        if is_remote(ref):
            raise DetectorModelMissing(f"{what} = {ref} is itself a served model; point it at local weights to "
                                       "serve them")
    detector = require_detector(cfg.hazards)
    captioner = resolve_captioner(cfg.caption, download=False) if cfg.caption.enabled else None
    return detector, captioner


def main(argv: list[str] | None = None) -> int:
    """Prepare the environment, resolve the models, exec the server."""
    p = argparse.ArgumentParser(prog="python -m assist.serve.launch", description="Serve the agent's models (Triton).")
    p.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    p.add_argument("--config", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--detector-instances", type=int, default=1)
    p.add_argument("--captioner-instances", type=int, default=1)
    p.add_argument("--no-captioner", action="store_true", help="serve the detector only")
    p.add_argument("--prepare", action="store_true", help="only create .venv-serve, then exit")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if not serve_venv_ready():
            print(f"making the server environment {SERVE_VENV.name} (once, ~1 min) ...", flush=True)
        python = ensure_serve_venv()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ENV
    if args.prepare:
        print(f"{SERVE_VENV.name}: ready ({python})")
        return 0
    if not 1 <= args.port <= 65533:
        print(f"error: PORT={args.port}: must be 1..65533 (the server uses PORT, PORT+1 and PORT+2)", file=sys.stderr)
        return 2
    from assist.config import ConfigError
    from assist.hazards.detector import DetectorModelMissing

    try:
        detector, captioner = find_models(args.config)
    except DetectorModelMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except ConfigError as exc:
        print(f"error: config: {'; '.join(exc.problems)}", file=sys.stderr)
        return 2
    if args.no_captioner:
        captioner = None
    if captioner is None:
        print("no captioner weights found: serving the detector only (set ASSIST_CAPTIONER to a folder to add it)",
              flush=True)
    cmd = [str(python), "-m", "assist.serve.server", "--detector", detector, "--host", args.host,
           "--port", str(args.port), "--device", args.device, "--host-python", sys.executable,
           "--detector-instances", str(args.detector_instances), "--captioner-instances", str(args.captioner_instances),
           *(["--captioner", captioner] if captioner else []), *(["--config", args.config] if args.config else []),
           *(["-v"] if args.verbose else [])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execve(cmd[0], cmd, env)
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())

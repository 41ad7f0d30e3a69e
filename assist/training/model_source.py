"""Where the fine-tuning / evaluation model comes from, decided before any
loader touches the network.

``from_pretrained("nlpconnect/...")`` on a machine without internet retries the
hub for about 25 s and prints each failure twice; ``models/my-captioner``
(a folder that does not exist yet) reads as the hub id "models/my-captioner"
and got the advice to ``hf download`` it. Like the agent's captioner lookup
(assist/describe/captioner.py), this answers at once: a local folder, a hub id already
in the cache, a hub id with the hub reachable (one TCP connect, capped at 3 s),
or one line saying what is missing.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

HUB_TIMEOUT_S = 3.0


def looks_like_path(name: str) -> bool:
    """True when ``name`` is meant as a folder, not a hub id: it starts with
    ``.``, ``/`` or ``~``, has more than one ``/``, uses backslashes, or its
    first part is an existing folder (``models/my-captioner``)."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return True
    first = name.split("/", 1)[0]
    return "/" in name and Path(first).is_dir()


def hub_reachable(timeout_s: float = HUB_TIMEOUT_S) -> bool:
    """One TCP connect to the hub (``HF_ENDPOINT`` or huggingface.co), in a
    daemon thread so a slow name lookup cannot hold us past ``timeout_s``."""
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    ok = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                ok.set()
        except OSError:
            pass

    threading.Thread(target=probe, name="hub-probe", daemon=True).start()
    return ok.wait(timeout_s)


def missing_folder_message(name: str) -> str | None:
    """"model folder X does not exist ..." when ``name`` is meant as a folder that is not there, else None."""
    p = Path(name).expanduser()
    if p.exists() or not looks_like_path(name):
        return None
    return (f"model folder {name} does not exist (check the path; a fine-tuned model is the folder "
            "`python -m assist.train --out` wrote, e.g. models/my-captioner)")


def resolve_start_model(name: str) -> tuple[str | None, str | None]:
    """(what to load, None) or (None, the one-line reason it cannot be had now).

    An existing folder is returned as is (the loader reports what is wrong
    inside it); a hub id resolves to its cached snapshot, else is returned for
    download only when the hub answers and offline mode is off.
    """
    from assist.describe.captioner import _cached_snapshot, _offline, model_folder_name

    if Path(name).expanduser().exists():
        return name, None
    missing = missing_folder_message(name)
    if missing is not None:
        return None, missing
    cached = _cached_snapshot(name)
    if cached:
        return cached, None
    why = "offline mode is on (HF_HUB_OFFLINE)" if _offline() else None
    if why is None and not hub_reachable():
        why = "the Hugging Face hub cannot be reached (no internet?)"
    if why is None:
        return name, None
    local = f"models/{model_folder_name(name)}"
    return None, (f"{name} is not in the Hugging Face cache and {why}; on a machine with internet run "
                  f"`hf download {name} --local-dir {local}`, copy the folder here and pass --model {local}")

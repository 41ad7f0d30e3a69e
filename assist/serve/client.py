"""The agent's side of a served model: is it there, what answered, wait for it to come back.

A model reference ``http://host:port/name`` or ``grpc://host:port/name`` is
checked before use with short timeouts (3 s): a server that never answered is
a configuration error (the CLI exits 4 with this module's message, naming the
URL and what answered). A server that answered once in this process and is now
gone is a server restarting or a network down: :func:`connect` then waits for it
with back-off (0.5 s doubling to 5 s, like the camera), stopping at once when
the run stops, so the worker that owns the model says "unavailable", waits,
and says "back" (assist/workers.py restarts it).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

from assist.serve import ModelURL, parse_model_url

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 5.0
_answered: set[str] = set()
_answered_lock = threading.Lock()


class RemoteModelUnavailable(Exception):
    """A served model cannot be used now; the message names the URL and what answered."""


def _hint(url: ModelURL) -> str:
    port = url.port - (1 if url.scheme == "grpc" else 0)
    return f"start the server (make serve PORT={port}) or fix the URL"


def _tcp_check(url: ModelURL, timeout_s: float) -> None:
    try:
        with socket.create_connection((url.host, url.port), timeout=timeout_s):
            return
    except ConnectionRefusedError:
        why = f"nothing listens on {url.netloc} (connection refused)"
    except TimeoutError:
        why = f"{url.netloc} did not answer within {timeout_s:g} s"
    except socket.gaierror as exc:
        why = f"host {url.host!r} is unknown ({exc.strerror or exc})"
    except OSError as exc:
        why = f"cannot connect to {url.netloc} ({exc.strerror or exc})"
    raise RemoteModelUnavailable(f"{url}: {why}; {_hint(url)}")


def _http_config(url: ModelURL, timeout_s: float) -> dict[str, Any]:
    address = f"http://{url.netloc}/v2/models/{url.name}/config"
    try:
        with urllib.request.urlopen(address, timeout=timeout_s) as resp:  # noqa: S310 - http:// only
            body = resp.read(1 << 20)
    except urllib.error.HTTPError as exc:
        text = exc.read(2000).decode("utf-8", "replace")
        try:
            message = json.loads(text).get("error")
        except ValueError:
            message = None
        if message:
            raise RemoteModelUnavailable(f"{url}: the Triton server answered: {message}") from None
        raise RemoteModelUnavailable(f"{url}: {url.netloc} answered HTTP {exc.code} {exc.reason} to {address}: "
                                     "not a Triton server (no KServe v2 API there)") from None
    except http.client.HTTPException as exc:
        raise RemoteModelUnavailable(f"{url}: {url.netloc} answered, but not in HTTP ({type(exc).__name__}); "
                                     "is it the gRPC port? HTTP is the gRPC port - 1") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteModelUnavailable(f"{url}: no answer from {url.netloc} ({reason}); {_hint(url)}") from None
    try:
        config = json.loads(body)
    except ValueError:
        raise RemoteModelUnavailable(f"{url}: {url.netloc} answered {body[:60]!r}: not a Triton server") from None
    if not isinstance(config, dict) or "input" not in config:
        raise RemoteModelUnavailable(f"{url}: {url.netloc} answered but not with a model config: not a Triton server")
    return config


def _grpc_config(url: ModelURL, timeout_s: float) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url=url.netloc, verbose=False)
    try:
        config = client.get_model_config(url.name, as_json=True, client_timeout=timeout_s)["config"]
        if not client.is_model_ready(url.name, client_timeout=timeout_s):
            raise RemoteModelUnavailable(f"{url}: the Triton server has model {url.name!r} but it is not ready")
    except InferenceServerException as exc:
        status = str(exc.status() or "").replace("StatusCode.", "")
        message = (exc.message() or str(exc)).strip().splitlines()[0][:200]
        if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL"):
            raise RemoteModelUnavailable(f"{url}: {url.netloc} does not speak Triton's gRPC ({status}: {message}); "
                                         f"is it the HTTP port? gRPC is the HTTP port + 1") from None
        raise RemoteModelUnavailable(f"{url}: the Triton server answered: {message}") from None
    finally:
        with contextlib.suppress(Exception):  # closing a failed channel
            client.close()
    return config


def probe(ref: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """The served model's config (as JSON) if it is ready; RemoteModelUnavailable saying what answered."""
    try:
        url = parse_model_url(ref)
    except ValueError as exc:
        raise RemoteModelUnavailable(str(exc)) from None
    _tcp_check(url, timeout_s)
    config = _http_config(url, timeout_s) if url.scheme == "http" else _grpc_config(url, timeout_s)
    with _answered_lock:
        _answered.add(str(url))
    return config


def answered_before(ref: str) -> bool:
    """True when this process has used the served model before (a loss now is an outage, not a typo)."""
    try:
        key = str(parse_model_url(ref))
    except ValueError:
        return False
    with _answered_lock:
        return key in _answered


def connect(ref: str, stop: threading.Event | None = None) -> dict[str, Any]:
    """Probe the served model; if it answered before in this process, wait for it with back-off.

    Returns its model config. Raises RemoteModelUnavailable at once for a model
    never seen (exit 4 at start), or when ``stop`` is set while waiting.
    """
    if not answered_before(ref):
        return probe(ref)
    delay = BACKOFF_START_S
    waiter = stop or threading.Event()
    while True:
        try:
            return probe(ref)
        except RemoteModelUnavailable as exc:
            log.info("%s; retrying in %.1f s", exc, delay)
            if waiter.wait(delay):
                raise RemoteModelUnavailable(f"{ref}: stopped while waiting for the server") from None
            delay = min(delay * 2, BACKOFF_MAX_S)


def describe_failure(ref: str, exc: BaseException) -> str:
    """One line for a failed request to a served model."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{ref}: request failed ({text[:200]})"

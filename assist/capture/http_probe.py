"""Why a stream URL cannot be opened, in words a user can act on.

FFmpeg (through OpenCV) only says "cannot open" whatever happened. After it
fails, one plain request tells the cases apart: nothing listens (connection
refused), the host name does not resolve, the server answers an HTTP error
(404: wrong path, 401: credentials), or it answers with a web page (the
camera's own viewer page, not its stream). Only asked after OpenCV failed, so
a working camera never sees an extra request; the request reads the headers
only and is capped by ``timeout_s``.
"""

from __future__ import annotations

import base64
import http.client
import socket
import urllib.error
import urllib.request
from urllib.parse import SplitResult, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}
_HTTP_HINTS = {
    401: "wrong or missing user name and password (put them in the URL: http://user:pass@host/...)",
    403: "the server refuses access (check the camera's user rights)",
    404: "no stream at that path (check the URL's path in the camera's manual)",
}


def _without_userinfo(parts: SplitResult) -> tuple[str, str | None]:
    """(URL without ``user:pass@``, Basic auth header value or None): urllib cannot take credentials in the URL."""
    if parts.username is None:
        return urlunsplit(parts), None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


def _connect_problem(host: str, port: int, timeout_s: float) -> str | None:
    """A TCP-level reason the server cannot be reached, or None when it accepts connections."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.gaierror:
        return f"host {host} not found (check the address)"
    except ConnectionRefusedError:
        return (f"connection refused by {host}:{port} (nothing listens there: "
                "is the camera or server running, and is the port right?)")
    except TimeoutError:
        return f"no answer from {host}:{port} within {timeout_s:g} s (check the network)"
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc.strerror or exc})"


def explain_url_failure(url: str, timeout_s: float = 3.0) -> str | None:
    """Why ``url`` gives no video stream, or None when no specific reason shows."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "the address is malformed (check the host and port)"
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        return "the address has no host name"
    port = port or DEFAULT_PORTS.get(scheme)
    if port is None:
        return None
    problem = _connect_problem(host, port, timeout_s)
    if problem is not None or scheme not in ("http", "https"):
        return problem
    plain, auth = _without_userinfo(parts)
    request = urllib.request.Request(plain, headers={"User-Agent": "assist-probe"})
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - the user's own URL
            ctype = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    except urllib.error.HTTPError as exc:
        hint = _HTTP_HINTS.get(exc.code, "check the URL")
        return f"the server answered HTTP {exc.code} {exc.reason}: {hint}"
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"the server did not answer over HTTP ({reason})"
    if ctype in ("text/html", "application/xhtml+xml"):
        return ("the address returns a web page, not a video stream (open it in a browser and "
                "look for the stream's own URL, often ending in /video, .mjpg or /stream)")
    return None

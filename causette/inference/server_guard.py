"""Who may talk to ``causette serve``: the local user and their programs, not the web pages they open.

The server listens on 127.0.0.1, so no other machine reaches it; but the user's browser does,
and any page it shows may send it requests:

* **Cross-site requests (CSRF).** A page of any site can make the browser POST a form, or a
  ``fetch`` with a ``text/plain`` body, to ``http://127.0.0.1:8000/v1/chat/completions``: such
  "simple" requests go out without asking the server first. The browser names the page's site
  in an ``Origin`` header.
* **DNS rebinding.** A page at ``http://evil.example:8000`` makes its own name resolve to
  127.0.0.1: its requests then reach this server and, for the browser, stay on the page's site
  (so it may read the answers). They carry ``Host: evil.example:8000``.

So :class:`LocalOnly` checks every request before the app sees it (errors in the OpenAI shape):

1. ``Host`` must name this server: ``127.0.0.1``, ``localhost``, ``[::1]`` (any port), the
   ``--host`` address and the ``--allow-host`` names; with a wildcard ``--host`` (``0.0.0.0``,
   ``::``) any IP address too (a rebinding page always comes by a name, never by an address).
   Else 403, ``code: host_not_allowed``.
2. ``Origin``, when there is one (browsers send it with every POST and every cross-site
   request; ``curl`` and the ``openai`` client send none), must be one of the server's own pages:
   ``http://NAME:PORT`` for an allowed NAME and the server's port, or exactly ``http://`` + the
   request's ``Host`` (the page was opened through that very address: an SSH tunnel, a proxy).
   Else 403, ``code: origin_not_allowed``.
3. A POST must declare ``Content-Type: application/json``: else 415, ``code:
   unsupported_media_type``. A browser sends a cross-site JSON request only after asking the
   server (a CORS preflight, ``OPTIONS``), which this server never approves: no page can make a
   browser send one.
"""

from __future__ import annotations

import ipaddress
import re

from starlette.responses import JSONResponse

from causette.inference.config import shown
from causette.inference.server_schema import ApiError

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")  # --host values that listen on every interface
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::([0-9]{1,5}))?")


def _bracketed(name: str) -> str:
    """A host name as it appears in a ``Host`` header: an IPv6 address in brackets, lower case."""
    name = name.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _split(value: str) -> tuple[str, int | None] | None:
    """``"localhost:8000"`` → ``("localhost", 8000)``; None for what is not ``NAME[:PORT]``."""
    m = _HOST.fullmatch(value.strip().lower())
    if not m:
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


class LocalOnly:
    """ASGI middleware: refuses the requests a web page could have sent behind the user's back
    (see the module's docstring). ``host``: the address the server listens on (``--host``);
    ``allow_hosts``: more names that reach it (``--allow-host``)."""

    def __init__(self, app, host: str = "127.0.0.1", allow_hosts: tuple[str, ...] | list[str] = ()):
        self.app = app
        self.any_address = host.strip() in WILDCARDS
        extra = [] if self.any_address else [host]
        self.names = {_bracketed(n) for n in (*LOCAL_NAMES, *extra, *allow_hosts)}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            error = self.refusal(scope)
            if error is not None:
                await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def host_allowed(self, name: str) -> bool:
        return name in self.names or (self.any_address and _is_address(name))

    def refusal(self, scope) -> ApiError | None:
        """The error for a request that must be refused, None for one that may go on."""
        headers: dict[str, list[str]] = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        server = scope.get("server") or (None, None)
        port = server[1] if len(server) > 1 else None

        hosts = headers.get("host", [])
        host = _split(hosts[0]) if len(hosts) == 1 else None
        if host is None or not self.host_allowed(host[0]):
            what = f"Host {shown(hosts[0], 80)}" if len(hosts) == 1 else "a request without one Host header"
            return ApiError(403, f"{what} is not allowed: this server answers only to "
                                 f"{', '.join(sorted(self.names))}{' and IP addresses' if self.any_address else ''} "
                                 "(causette serve --allow-host NAME adds a name)",
                            type="permission_error", param="Host", code="host_not_allowed")

        origins = headers.get("origin", [])
        if origins and not (len(origins) == 1 and self.origin_allowed(origins[0], hosts[0], port)):
            own = ", ".join(f"http://{n}:{port}" for n in sorted(self.names))
            return ApiError(403, f"Origin {shown(origins[0], 80)} is not allowed: this server answers only "
                                 f"its own page ({own}) and programs that are not web pages",
                            type="permission_error", param="Origin", code="origin_not_allowed")

        if scope.get("method") == "POST":
            kinds = headers.get("content-type", [])
            kind = kinds[0].split(";")[0].strip().lower() if len(kinds) == 1 else None
            if kind != "application/json":
                given = shown(kinds[0], 80) if len(kinds) == 1 else f"{len(kinds)} Content-Type headers" if kinds \
                    else "none"
                return ApiError(415, f"a POST body must be sent with Content-Type: application/json, got {given}",
                                param="Content-Type", code="unsupported_media_type")
        return None

    def origin_allowed(self, origin: str, host: str, port: int | None) -> bool:
        origin = origin.strip().lower()
        if origin == f"http://{host.strip().lower()}":  # the page came through this very address
            return True
        if not origin.startswith("http://"):
            return False  # https (this server speaks http only), "null" (a sandboxed page, a file)
        where = _split(origin[len("http://"):])
        return where is not None and self.host_allowed(where[0]) and (where[1] or 80) == port

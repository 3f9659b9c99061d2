"""The http/request request as it arrives, and the checked request it becomes.

The model only fixes the shapes; `plan()` checks everything the module or the server
could be confused by (a URL, method or header that would change the command or the
request's framing, a body over the limit, a path outside files.dir) before the
first AT command, so that bad input is `invalid_request`, `too_large` or `forbidden`
and never reaches the modem.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import SplitResult, quote, urlsplit

from pydantic import Field

from bridge.at import ParameterError
from bridge.at import commands as at
from bridge.files import FilesArea
from bridge.services.base import Request
from bridge.services.errors import invalid, too_large

URL_MAX = 2048  # bytes of a URL; longer ones servers commonly refuse anyway
HOST_MAX = 255  # a DNS name, and what fits the module's command line with room to spare
METHOD_MAX = 16
HEADERS_MAX = 64
HEADER_NAME_MAX = 256
HEADER_VALUE_MAX = 8192
BODY_MAX = 10 * 1024 * 1024  # a 3G uplink sends this in minutes; more is not this bridge's job
TIMEOUT_MAX = 3600.0  # the module's own HTTP transfer timer (SIM52xx HTTP application note)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Set by the bridge: the module's response ends only when the server closes, and the
# framing must match the body actually sent.
RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token (method, header name)
# A header value is visible characters, spaces and tabs (RFC 9110 field-value); no CR/LF.
_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_URL_FORBIDDEN = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]')
_PERCENT_SAFE = "/?&=%:@!$'()*+,;[]~-._#"


class HttpRequestRequest(Request):
    """API.md http/request."""

    url: Annotated[str, Field(min_length=1)]
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    body_base64: str | None = None
    body_file: str | None = None
    timeout: Annotated[float, Field(gt=0, le=TIMEOUT_MAX)] = 60.0
    save_to: str | None = None


@dataclass(frozen=True)
class Body:
    """The request body: bytes in memory, or a file streamed from files.dir."""

    size: int
    data: bytes | None = None
    file: Path | None = None


@dataclass(frozen=True)
class HttpPlan:
    """A checked request: where it goes, the head's fields and the body."""

    secure: bool
    host: at.Param  # the host name as the module gets it, quoted
    port: at.Param
    method: str
    target: str  # origin-form: path and query
    headers: list[tuple[str, bytes]]  # in order, Host first
    body: Body
    timeout: float
    save_to: Path | None


def plan(request: HttpRequestRequest, files: FilesArea) -> HttpPlan:
    """Everything checked and resolved; raises ServiceError naming the field."""
    parts = _split(request.url)
    secure = parts.scheme.lower() == "https"
    host = parts.hostname or ""
    port = _port(parts)
    try:
        host_param = at.string(host, field="url", max_len=HOST_MAX)
        port_param = at.integer(port, field="url", low=1, high=65535)
    except ParameterError as exc:
        raise invalid("url", f"host {str(exc).removeprefix(exc.field + ': ')}") from exc
    method = _method(request.method)
    body = _body(request, files)
    headers = _headers(request.headers, _host_header(host, port, secure))
    save_to = None
    if request.save_to is not None:
        save_to = files.for_writing(request.save_to, field="save_to")
        if save_to.is_dir():
            raise invalid("save_to", "is a folder")
    return HttpPlan(
        secure=secure,
        host=host_param,
        port=port_param,
        method=method,
        target=_target(parts),
        headers=headers,
        body=body,
        timeout=request.timeout,
        save_to=save_to,
    )


def _split(url: str) -> SplitResult:
    if len(url.encode("utf-8")) > URL_MAX:
        raise too_large("url", f"longer than {URL_MAX} bytes", URL_MAX)
    bad = _URL_FORBIDDEN.search(url)
    if bad:
        raise invalid("url", f"contains forbidden character {bad.group()!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise invalid("url", str(exc)) from exc
    if parts.scheme.lower() not in DEFAULT_PORTS:
        raise invalid("url", "the scheme must be http or https")
    if not parts.hostname:
        raise invalid("url", "has no host")
    if parts.username is not None or parts.password is not None:
        # credentials in a URL end up in logs; an Authorization header does not
        raise invalid("url", "must not carry a user or password; use an Authorization header")
    if not parts.hostname.isascii():
        raise invalid("url", "the host name must be ASCII (use its xn-- form)")
    return parts


def _port(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        raise invalid("url", "the port must be a number within 1..65535") from exc
    if port is None:
        return DEFAULT_PORTS[parts.scheme.lower()]
    if not 1 <= port <= 65535:
        raise invalid("url", "the port must be a number within 1..65535")
    return port


def _target(parts: SplitResult) -> str:
    """The origin-form target; non-ASCII path characters percent-encoded as UTF-8."""
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return quote(target, safe=_PERCENT_SAFE)


def _host_header(host: str, port: int, secure: bool) -> str:
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    default = DEFAULT_PORTS["https" if secure else "http"]
    return name if port == default else f"{name}:{port}"


def _method(method: str) -> str:
    if len(method) > METHOD_MAX or not _TOKEN.fullmatch(method):
        raise invalid("method", "must be an HTTP method name (a token such as GET)")
    return method


def _headers(given: dict[str, str], host: str) -> list[tuple[str, bytes]]:
    if len(given) > HEADERS_MAX:
        raise too_large("headers", f"more than {HEADERS_MAX} headers", HEADERS_MAX)
    out: list[tuple[str, bytes]] = [("Host", host.encode("ascii"))]
    for name, value in given.items():
        field = f"headers.{name}"
        if len(name) > HEADER_NAME_MAX or not _TOKEN.fullmatch(name):
            raise invalid(
                field, "a header name is a token: no spaces, colons or control characters"
            )
        if name.lower() in RESERVED_HEADERS:
            raise invalid(field, "is set by the bridge")
        if len(value.encode("utf-8")) > HEADER_VALUE_MAX:
            raise too_large(field, f"longer than {HEADER_VALUE_MAX} bytes", HEADER_VALUE_MAX)
        bad = _VALUE_FORBIDDEN.search(value)
        if bad:
            raise invalid(field, f"contains forbidden character {bad.group()!r}")
        encoded = value.strip(" \t").encode("utf-8")
        if name.lower() == "host":
            out[0] = ("Host", encoded)  # the caller's virtual host wins
        else:
            out.append((name, encoded))
    return out


def _body(request: HttpRequestRequest, files: FilesArea) -> Body:
    given = [
        name for name in ("body", "body_base64", "body_file") if getattr(request, name) is not None
    ]
    if len(given) > 1:
        raise invalid(given[1], f"only one of body, body_base64 and body_file; {given[0]} given")
    if request.body is not None:
        data = request.body.encode("utf-8")
        return Body(_checked_size(len(data), "body"), data=data)
    if request.body_base64 is not None:
        if len(request.body_base64) > (BODY_MAX + 2) // 3 * 4:
            raise too_large("body_base64", f"over {BODY_MAX} bytes", BODY_MAX)
        try:
            data = base64.b64decode(request.body_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid("body_base64", "is not valid base64") from exc
        return Body(_checked_size(len(data), "body_base64"), data=data)
    if request.body_file is not None:
        path = files.resolve(request.body_file, field="body_file")
        if not path.is_file():
            raise invalid("body_file", "no such file in the files folder")
        return Body(_checked_size(path.stat().st_size, "body_file"), file=path)
    return Body(0, data=b"")


def _checked_size(size: int, field: str) -> int:
    if size > BODY_MAX:
        raise too_large(field, f"over {BODY_MAX} bytes", BODY_MAX)
    return size


SAFE_METHODS = frozenset({"GET", "HEAD"})


def changes_something(request: HttpRequestRequest) -> bool:
    """GET and HEAD are safe (RFC 9110 9.2.1): a crash may run them again; others not."""
    return request.method.upper() not in SAFE_METHODS

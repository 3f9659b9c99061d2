"""What a crash may have left running on the module, stopped before anything new runs.

The module's stacks outlive the bridge: an SMTP send, a POP3 session, an FTPS or HTTPS
session started by a request the bridge never finished would make the next request of
that service `busy`, or let a half-done effect go on. Each stop answers ERROR when
there is nothing to stop, which is as good as OK here. Plain FTP and HTTP hold no
session between commands and cannot be stopped (an http:// transfer ends on its own).
"""

from __future__ import annotations

import logging
from typing import Any

from bridge.at import commands as at
from bridge.modem import Exchange
from bridge.services.base import Action, Request, ServiceContext
from bridge.services.errors import ServiceError

log = logging.getLogger("bridge.services")

STOP_TIMEOUT = 10.0
SETTLE_QUIET = 2.0  # a transfer's blocks follow each other closer than this
# in this order: the session's own end before its stack's (seed chapters 3, 4, 7, 8)
STACK_STOPS = (
    "+SMTPSTOP",
    "+POP3STOP",
    "+CFTPSLOGOUT",
    "+CFTPSSTOP",
    "+CHTTPSCLSE",
    "+CHTTPSSTOP",
)


class LeaveCleanRequest(Request):
    """`settle`: a request was running, so a transfer may still be streaming (FTP and
    HTTP have no stop): wait until the module has been quiet for SETTLE_QUIET seconds."""

    settle: bool = False


def leave_clean(ctx: ServiceContext, request: LeaveCleanRequest) -> dict[str, Any]:
    """Send every stop; `stopped` lists those that found something to stop."""
    bound = ctx.modem_settings.request_timeout  # no longer than the request itself had
    if request.settle and not ctx.wait_quiet(SETTLE_QUIET, bound):
        log.warning("modem %s: still talking after %.0f s; going on", ctx.modem_id, bound)
    stopped: list[str] = []
    for name in STACK_STOPS:
        exchange = Exchange(at.execute(name), timeout=STOP_TIMEOUT, name=f"AT{name}")
        try:
            reply = ctx.run(exchange)
        except ServiceError as exc:
            log.warning("leaving the module clean: AT%s failed: %s", name, exc.code)
            continue
        if reply.final.ok:
            stopped.append(f"AT{name}")
    if stopped:
        log.info("modem %s: stopped what a crash left running: %s", ctx.modem_id, stopped)
    return {"stopped": stopped}


# Not registered: no request names it; the restart submits it ahead of everything else.
LEAVE_CLEAN = Action(
    "modem",
    "leave_clean",
    LeaveCleanRequest,
    leave_clean,
    side_effects=False,
    commits_on=(),
)

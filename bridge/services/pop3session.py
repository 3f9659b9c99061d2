"""The module's POP3 client (seed chapter 4) as a session that never leaks: account and
login, one step at a time, then AT+POP3OUT after success or AT+POP3STOP after a failure,
so the next request always logs in cleanly.

Seed dialect: AT+POP3IN/NUM/LIST/HDR/DEL/OUT answer `+POP3: <result>` (or their listing)
before OK/ERROR; AT+POP3GET answers OK at once and reports `+POP3: <code>` later as a URC,
followed on success by the `<mail_dir>, <mail_file>` line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import SecretStr

from bridge.at import Urc
from bridge.at import commands as at
from bridge.modem import Exchange, Reply
from bridge.modem.script import Step, run_script
from bridge.services.base import ServiceContext
from bridge.services.errors import (
    MODEM_ERROR,
    ResultCodes,
    ServiceError,
    module_error,
    param,
)

log = logging.getLogger("bridge.services.pop3")

FIELD_MAX = 128  # seed 4.1: server, user and password are at most 128 characters
MSG_ID_MAX = 2**31 - 1
STEP_TIMEOUT = 60.0  # one server round trip; the module itself gives up well before
CLEANUP_TIMEOUT = 15.0
RESULT_LINE_WAIT = 10.0  # the folder line follows `+POP3: SUCCESS` at once
GET_WHOLE_MESSAGE = 2  # seed 4.6 <get_type> 2: the message as the server sent it (.eml)
PREFIX = "+POP3:"

RESULTS = ResultCodes.table("pop3")
# a step fails on these even before an OK (abort matches)
ABORT = tuple(f"{PREFIX} {word}" for word in RESULTS.codes)
# `C:/Email/090901120000/, EMAIL000.TXT` (seed 4.6), spaces optional
_STORED = re.compile(r"(?P<dir>[A-Za-z]:/[^,]*?)\s*,\s*(?P<file>[^,/\\]+?)\s*")


@dataclass(frozen=True)
class Pop3Account:
    """The connection a request uses: its own fields over the `[pop3]` defaults."""

    server: str
    port: int
    user: str
    password: SecretStr

    def command(self) -> bytes:
        """AT+POP3SRV, validated: injection characters, empty or over-long fields raise
        ServiceError before anything reaches the module."""
        password = self.password.get_secret_value()
        return param(
            lambda: at.write(
                "+POP3SRV",
                at.string(self.server, field="server", max_len=FIELD_MAX),
                at.string(self.user, field="user", max_len=FIELD_MAX),
                at.string(password, field="password", max_len=FIELD_MAX),
                at.integer(self.port, field="port", low=1, high=65535),
            )
        )


@dataclass(frozen=True)
class StoredMail:
    """Where AT+POP3GET put a message in the module's file system."""

    folder: str  # "C:/Email/090901120000" (no trailing slash)
    file: str  # "090901120000.eml"

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.file}"


@dataclass(frozen=True)
class Listing:
    count: int
    total_size: int
    sizes: dict[int, int]  # message id -> size in bytes


class Pop3Session:
    """One logged-in module session; use `pop3_session()` to get one."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # -- steps ----------------------------------------------------------------------

    def step(
        self, command: bytes, name: str, *, listing: bool = False, timeout: float = STEP_TIMEOUT
    ) -> Reply:
        """One POP3 step: its `+POP3:` lines (every line for listings) and OK, or the
        mapped error. `name` labels it (never the parameters, which may hold a password)."""
        info = None if listing else (PREFIX,)
        step = Step(Exchange(command, info=info, timeout=timeout, name=name), abort=ABORT)
        return run_script(self.ctx.run, [step], _failure)[0]

    def open(self, account: Pop3Account) -> None:
        # "If POP3 client isn't free, the command will return ERROR": a session left
        # behind (a crash, a module we did not start with) is stopped, and it is tried again
        configure = Step(
            Exchange(account.command(), timeout=STEP_TIMEOUT, name="AT+POP3SRV"),
            recover=_stop_exchange(),
        )
        run_script(self.ctx.run, [configure], _failure)
        self.ctx.progress("connecting", None, None)
        self.step(at.execute("+POP3IN"), "AT+POP3IN")

    def listing(self) -> Listing:
        reply = self.step(at.execute("+POP3LIST"), "AT+POP3LIST", listing=True)
        count = total = 0
        sizes: dict[int, int] = {}
        for line in reply.lines:
            if line.startswith(PREFIX):
                count, total = _two_numbers(line[len(PREFIX) :]) or (0, 0)
            elif (pair := _two_numbers(line)) is not None:
                sizes[pair[0]] = pair[1]
        return Listing(count, total, sizes)

    def size(self, msg_id: int) -> int | None:
        reply = self.step(at.write("+POP3LIST", _msg_id(msg_id)), "AT+POP3LIST")
        pair = _two_numbers(reply.first(PREFIX) or "")
        return pair[1] if pair else None

    def header(self, msg_id: int) -> dict[str, str]:
        """From, date and subject as AT+POP3HDR gives them ("" when absent)."""
        reply = self.step(at.write("+POP3HDR", _msg_id(msg_id)), "AT+POP3HDR", listing=True)
        found = {"from": "", "date": "", "subject": ""}
        for line in reply.lines:
            name, sep, value = line.partition(":")
            key = name.strip().lower()
            if sep and key in found and not found[key]:
                found[key] = value.strip()
        return found

    def delete(self, msg_id: int) -> None:
        """Marks the message; the server deletes it at a clean AT+POP3OUT only."""
        self.step(at.write("+POP3DEL", _msg_id(msg_id)), "AT+POP3DEL")

    def fetch(self, msg_id: int) -> StoredMail:
        """AT+POP3GET of the whole message; returns where the module stored it."""
        command = at.write("+POP3GET", _msg_id(msg_id), at.Param(str(GET_WHOLE_MESSAGE)))
        # registered before the command: the result may come right after its OK
        with self.ctx.urc_waiter(_fetch_urc) as waiter:
            reply = self.step(command, "AT+POP3GET")
            # tolerant: a firmware that reports the result before OK has said it already
            if (reply.first(PREFIX) or "").upper() != "SUCCESS":
                result = self.ctx.wait_urc(waiter, self.ctx.time_left())
                while not result.text.startswith(PREFIX):
                    result = self.ctx.wait_urc(waiter, self.ctx.time_left())  # a stray folder line
                if result.value.upper() != "SUCCESS":
                    raise RESULTS.failure(result.value, "AT+POP3GET")
            where = self.ctx.wait_urc(waiter, RESULT_LINE_WAIT)
        match = _STORED.fullmatch(where.text)
        if match is None:
            raise ServiceError(
                MODEM_ERROR,
                "AT+POP3GET: no mail folder in the result",
                {"module_error": where.text[:200]},
            )
        return StoredMail(match.group("dir").rstrip("/"), match.group("file"))

    def logout(self) -> None:
        self.step(at.execute("+POP3OUT"), "AT+POP3OUT")

    def stop(self) -> None:
        """AT+POP3STOP, best effort: ERROR only means there was no session. Runs even when
        the request is cancelled or out of time."""
        with self.ctx.cleanup() as quiet:
            quiet.run(_stop_exchange())

    def forget_account(self) -> None:
        """AT+POP3SRV without parameters clears the account: the module would otherwise
        keep the password and print it to anyone asking AT+POP3SRV? (best effort)."""
        with self.ctx.cleanup() as quiet:
            quiet.run(Exchange(at.execute("+POP3SRV"), timeout=CLEANUP_TIMEOUT, name="AT+POP3SRV"))


@contextmanager
def pop3_session(ctx: ServiceContext, account: Pop3Account) -> Iterator[Pop3Session]:
    """A logged-in session; logged out cleanly after the block, stopped after a failure
    (then nothing marked is deleted)."""
    session = Pop3Session(ctx)
    try:
        session.open(account)
        yield session
        session.logout()
    except BaseException:
        session.stop()
        raise
    finally:
        session.forget_account()


def _msg_id(msg_id: int) -> at.Param:
    return param(lambda: at.integer(msg_id, field="id", low=1, high=MSG_ID_MAX))


def _stop_exchange() -> Exchange:
    return Exchange(at.execute("+POP3STOP"), timeout=CLEANUP_TIMEOUT, name="AT+POP3STOP")


def _failure(step: Step, reply: Reply) -> ServiceError:
    """A refused POP3 step: the module's `+POP3: <result>` word, else what it said."""
    for line in reply.lines:
        if line.startswith(PREFIX) and RESULTS.key_of(line[len(PREFIX) :]) is not None:
            return RESULTS.failure(line[len(PREFIX) :], step.exchange.label())
    return module_error(step.exchange, reply.final)


def _two_numbers(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+)\s*,?\s*(\d+)\s*", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _fetch_urc(urc: Urc) -> bool:
    return urc.text.startswith(PREFIX) or _STORED.fullmatch(urc.text) is not None

"""The topic tree of API.md, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    base: str

    @property
    def bridge_state(self) -> str:
        return f"{self.base}/bridge/state"

    @property
    def bridge_info(self) -> str:
        return f"{self.base}/bridge/info"

    def state(self, modem: str) -> str:
        return f"{self.base}/{modem}/state"

    def status(self, modem: str) -> str:
        return f"{self.base}/{modem}/status"

    def urc(self, modem: str) -> str:
        return f"{self.base}/{modem}/urc"

    def event(self, modem: str) -> str:
        return f"{self.base}/{modem}/event"

    def request(self, modem: str, key: str) -> str:
        """Where a request for `<service>/<action>` of `modem` arrives."""
        return f"{self.base}/{modem}/request/{key}"

    def notify(self, modem: str, leaf: str = "notify") -> str:
        """A Home Assistant notify entity's messages: `notify` (e-mail, an smtp/send) or
        `notify_sms` (an sms/send)."""
        return f"{self.base}/{modem}/{leaf}"

    def notify_sms(self, modem: str) -> str:
        """Home Assistant's SMS notify entity: its message becomes an sms/send."""
        return f"{self.base}/{modem}/notify_sms"

    def last(self, modem: str, service: str) -> str:
        """Retained: the last result of a user-visible action of `service` (smtp, sms, ussd)."""
        return f"{self.base}/{modem}/last/{service}"

    def button(self, modem: str, button: str) -> str:
        return f"{self.base}/{modem}/button/{button}"

    def mail(self, modem: str) -> str:
        """Retained `{"count": N, "updated": TIME}` from POP3 polling."""
        return f"{self.base}/{modem}/mail"

    def requests(self, modem: str) -> str:
        """The subscription filter for a modem's requests, at every depth: one whose
        topic is not `<service>/<action>` is answered too (`misshapen_request`)."""
        return f"{self.base}/{modem}/request/#"

    def retired_requests(self, modem: str) -> str:
        """The request filter of 0.1.0 and earlier builds. A persistent session made by
        one keeps it, and beside `requests()` it would bring every request twice: it
        is unsubscribed when the broker resumes a session."""
        return f"{self.base}/{modem}/request/+/+"

    def misshapen_request(self, topic: str) -> tuple[str, str] | None:
        """`<base>/<owner>/request[/<levels>]` whose levels are not `<service>/<action>`
        -> (owner, the levels as sent, maybe "")."""
        parts = self._below_base(topic)
        if parts is None or len(parts) < 2 or parts[1] != "request" or len(parts) == 4:
            return None
        return parts[0], "/".join(parts[2:])

    def response(self, owner: str, key: str) -> str:
        """`owner` is a modem id or `jobs`; `key` is `<service>/<action>`."""
        return f"{self.base}/{owner}/response/{key}"

    def progress(self, owner: str, key: str) -> str:
        return f"{self.base}/{owner}/progress/{key}"

    @property
    def jobs(self) -> str:
        return f"{self.base}/jobs/request/+/+"

    @property
    def shared_jobs(self) -> str:
        return f"$share/{self.base}/{self.jobs}"

    def capacity(self, bridge: str) -> str:
        """The pool: a bridge's retained capacity."""
        return f"{self.base}/bridges/{bridge}/capacity"

    @property
    def capacities(self) -> str:
        return f"{self.base}/bridges/+/capacity"

    def direct(self, bridge: str, key: str) -> str:
        """The pool: where another bridge forwards a job to `bridge`."""
        return f"{self.base}/jobs/direct/{bridge}/{key}"

    def directs(self, bridge: str) -> str:
        return f"{self.base}/jobs/direct/{bridge}/+/+"

    def parse_direct(self, topic: str) -> tuple[str, str] | None:
        """`<base>/jobs/direct/<bridge>/<service>/<action>` -> (bridge, "service/action")."""
        parts = self._below_base(topic)
        if parts is None or len(parts) != 5 or parts[:2] != ["jobs", "direct"]:
            return None
        return parts[2], f"{parts[3]}/{parts[4]}"

    def parse_capacity(self, topic: str) -> str | None:
        """`<base>/bridges/<bridge>/capacity` -> the bridge's name."""
        parts = self._below_base(topic)
        if parts is None or len(parts) != 3 or parts[0] != "bridges" or parts[2] != "capacity":
            return None
        return parts[1]

    def _below_base(self, topic: str) -> list[str] | None:
        prefix = self.base + "/"
        return topic[len(prefix) :].split("/") if topic.startswith(prefix) else None

    @staticmethod
    def discovery_config(prefix: str, component: str, unique_id: str) -> str:
        """Home Assistant's retained config of one entity."""
        return f"{prefix}/{component}/{unique_id}/config"

    @staticmethod
    def discovery_status(prefix: str) -> str:
        """Where Home Assistant announces `online` after its start."""
        return f"{prefix}/status"

    def is_command(self, topic: str) -> bool:
        """A topic whose messages make the bridge act: a request, a Home Assistant notify
        message or a button press (a retained one must not run again on every connect)."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return False
        parts = topic[len(prefix) :].split("/")
        return (
            (len(parts) == 4 and parts[1] == "request")
            or (len(parts) == 3 and parts[1] == "button")
            or (len(parts) == 2 and parts[1] in ("notify", "notify_sms"))
        )

    def parse_request(self, topic: str) -> tuple[str, str] | None:
        """`<base>/<owner>/request/<service>/<action>` -> (owner, "service/action")."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 4 or parts[1] != "request":
            return None
        return parts[0], f"{parts[2]}/{parts[3]}"

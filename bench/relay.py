"""The floor of the latency benchmark: the least any bridge on paho could do.

One process, one thread: on each `modem/at` request, paho's callback runs the AT round
trip on the port and publishes the answer. No journal, no validation, no worker, no
reader thread. `bench/latency.py` measures it beside the bridge, the same way, so the
bridge's overhead can be read against what the broker's second hop and paho cost alone.

    python bench/relay.py HOST PORT LINK BASE
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from harness import RawAt
from paho.mqtt.enums import CallbackAPIVersion

from bridge.mqtt.link import disable_nagle

ONLINE = json.dumps({"state": "online"}).encode()


def main() -> None:
    host, port, link, base = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    modem = RawAt(link)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_socket_open = lambda c, u, sock: disable_nagle(sock)

    def connected(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        c.subscribe(f"{base}/modem/request/modem/at", qos=1)
        c.publish(f"{base}/bridge/state", ONLINE, qos=1)
        c.publish(f"{base}/modem/state", ONLINE, qos=1)

    def request(c: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        modem.round_trip(body["command"].encode() + b"\r")
        answer = {"transaction": body.get("transaction"), "status": "ok", "result": {}}
        c.publish(f"{base}/modem/response/modem/at", json.dumps(answer).encode(), qos=1)

    client.on_connect = connected
    client.on_message = request
    signal.signal(signal.SIGTERM, lambda signum, frame: client.disconnect())
    client.connect(host, port)
    client.loop_forever()
    modem.close()


if __name__ == "__main__":
    main()

"""`sim5360-bridge demo`: the whole product on this machine, nothing leaving it.

An emulated SIM5360 on a pseudo-terminal, real SMTP, POP3, FTP, FTPS, HTTP and
HTTPS servers on 127.0.0.1, a mosquitto broker and the bridge, wired together,
with example commands printed to try. Uses the test servers (the `dev` extra).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from contextlib import ExitStack
from email.message import EmailMessage
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from bridge.config import load_settings
from bridge.daemon import Bridge
from bridge.health import heartbeat_path
from bridge.log import configure_logging
from bridge.mainloop import MainLoop
from bridge.sdnotify import Notifier

if TYPE_CHECKING:
    from bridge.emulator.core import Emulator
    from bridge.testservers.ftp import FtpTestServer
    from bridge.testservers.http import HttpTestServer
    from bridge.testservers.pop3 import Pop3TestServer
    from bridge.testservers.smtp import SmtpTestServer

HOSTS = ("smtp.example.com", "pop3.example.com", "ftp.example.com", "www.example.com")
USER = "demo"
DEFAULT_MQTT_PORT = 1883
CONTROL_FIFO = "ttySIM.ctl"  # beside the emulator's link, as `emulate` names it
DEMO_NUMBER = "+4915123456789"  # the SMS notify entity's recipient; the emulator keeps it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument(
        "--mqtt-port",
        type=int,
        default=None,
        help=f"broker port (default: {DEFAULT_MQTT_PORT}, or a free one if that is taken)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )


def _port_free(port: int) -> bool:
    """Whether mosquitto can listen there: as it sets SO_REUSEADDR, a port that a closed
    connection still holds (TIME_WAIT) is free, one that something listens on is not."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _mqtt_port(asked: int | None) -> int | None:
    """The broker's port: the one asked for (None, said on stderr, when it is taken:
    the demo stops), else 1883 when free, else 0 for any free one."""
    if asked is not None:
        if _port_free(asked):
            return asked
        print(
            f"--mqtt-port {asked}: that port is taken on 127.0.0.1; "
            "choose another, or leave the option out for 1883 or any free port",
            file=sys.stderr,
        )
        return None
    return DEFAULT_MQTT_PORT if _port_free(DEFAULT_MQTT_PORT) else 0


def _sample_mail(subject: str, body: str, attachment: bytes | None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Weather Station <station@example.com>"
    msg["To"] = "gateway@example.com"
    msg["Subject"] = subject
    msg["Date"] = "Wed, 25 Nov 2026 10:00:00 +0000"
    msg.set_content(body)
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="readings.bin"
        )
    return msg.as_bytes()


def _config(
    work: Path, mqtt_port: int, link: Path, ports: dict[str, int], passwords: dict[str, str]
) -> Path:
    text = f"""
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
client_id = "sim5360-bridge-demo"

[homeassistant]
discovery = true

[files]
dir = "{work / "files"}"
state_dir = "{work / "state"}"

[[modems]]
id = "modem"
port = "{link}"
status_interval = 30
allow_raw_at = true

[smtp]
server = "smtp.example.com"
port = {ports["smtp"]}
user = "{USER}"
password = "{passwords["smtp"]}"
from_address = "gateway@example.com"
from_name = "Demo gateway"
to = ["you@example.com"]

[pop3]
server = "pop3.example.com"
port = {ports["pop3"]}
user = "{USER}"
password = "{passwords["pop3"]}"

[ftp]
server = "ftp.example.com"
port = {ports["ftp"]}
user = "{USER}"
password = "{passwords["ftp"]}"

[ftps]
server = "ftp.example.com"
port = {ports["ftps"]}
user = "{USER}"
password = "{passwords["ftps"]}"

[sms]
to = ["{DEMO_NUMBER}"]
balance_ussd = "*100#"
"""
    path = work / "demo.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def main(args: argparse.Namespace) -> int:
    try:
        from bridge.emulator.core import Emulator
        from bridge.testservers.mosquitto import Mosquitto
        from bridge.testservers.smtp import SmtpTestServer
    except ImportError as exc:
        print(
            f"the demo needs the dev extra (pip install 'sim5360-bridge[dev]'): {exc}",
            file=sys.stderr,
        )
        return 2
    configure_logging(args.log_level)
    if (mqtt_port := _mqtt_port(args.mqtt_port)) is None:
        return 2
    work = args.dir or Path(tempfile.mkdtemp(prefix="sim5360-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    passwords = {name: secrets.token_urlsafe(9) for name in ("smtp", "pop3", "ftp", "ftps")}
    stop = _stop_on_signals()
    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(port=mqtt_port or None, own_group=True))
        smtp = stack.enter_context(SmtpTestServer(user=USER, password=passwords["smtp"]))
        ports, http, https = _file_servers(stack, work, passwords)
        ports["smtp"] = smtp.port
        emulator = stack.enter_context(
            Emulator(
                work / "ttySIM", root=work / "modem-fs", hosts=dict.fromkeys(HOSTS, "127.0.0.1")
            )
        )
        settings = load_settings(
            _config(work, broker.port, emulator.link, ports, passwords), env={}
        )
        _control_fifo(stack, emulator, work / CONTROL_FIFO, stop)
        bridge = Bridge(settings)
        bridge.start()
        stack.callback(bridge.stop)
        ready = bridge.link.connected.wait(15) and bridge.modems["modem"].wait_online(15)
        _banner(broker.port, http.port, https.port, work, sorted(bridge.actions), ready)
        sys.stdout.flush()
        received = work / "smtp-received"
        threading.Thread(target=_show_mail, args=(smtp, received, stop), daemon=True).start()
        if args.duration is not None:
            ending = threading.Timer(args.duration, stop.set)
            ending.daemon = True
            ending.start()
        # the daemon's own loop: the heartbeat `sim5360-bridge health` reads, watchdog
        MainLoop(bridge, Notifier(), heartbeat_path(settings.files.state_dir)).run(stop)
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _file_servers(
    stack: ExitStack, work: Path, passwords: dict[str, str]
) -> tuple[dict[str, int], HttpTestServer, HttpTestServer]:
    """POP3 (with sample mail), FTP (with sample files), FTPS, HTTP and HTTPS; their ports."""
    from bridge.testservers.ftp import FtpTestServer
    from bridge.testservers.http import HttpTestServer
    from bridge.testservers.pop3 import Pop3TestServer
    from bridge.testservers.tls import make_certificates

    certs = make_certificates(work / "certs")
    pop3 = stack.enter_context(Pop3TestServer(password=passwords["pop3"]))
    ftp = stack.enter_context(
        FtpTestServer(work / "ftp-home", user=USER, password=passwords["ftp"])
    )
    _sample_content(pop3, ftp, work)
    ftps = stack.enter_context(
        FtpTestServer(work / "ftps-home", user=USER, password=passwords["ftps"], certificates=certs)
    )
    http = stack.enter_context(HttpTestServer())
    https = stack.enter_context(HttpTestServer(tls=certs.server_context()))
    return {"pop3": pop3.port, "ftp": ftp.port, "ftps": ftps.port}, http, https


def _stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set: the demo then ends cleanly."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def _sample_content(pop3: Pop3TestServer, ftp: FtpTestServer, work: Path) -> None:
    """Two mails to read, a file to fetch over FTP and one to attach."""
    pop3.add_message(USER, _sample_mail("Hello from the demo", "It works.\n", None))
    pop3.add_message(USER, _sample_mail("Readings", "Attached.\n", bytes(range(256)) * 8))
    (ftp.home / "hello.txt").write_text("hello from the FTP server\n")
    (work / "files").mkdir(exist_ok=True)
    (work / "files" / "hello.txt").write_text("an attachment from the demo\n")


def _show_mail(smtp: SmtpTestServer, folder: Path, stop: threading.Event) -> None:
    """Say what the local SMTP server receives, and keep each message as a file."""
    folder.mkdir(exist_ok=True)
    shown = 0
    while not stop.is_set():
        try:
            mail = smtp.wait_for_message(shown + 1, timeout=0.5)
        except TimeoutError:
            continue
        shown += 1
        path = folder / f"{shown}.eml"
        path.write_bytes(mail.data)
        msg = mail.message()
        print(
            f"SMTP server received: {msg['subject']!r} from {mail.mail_from} "
            f"to {', '.join(mail.rcpt_tos)} -> {path}",
            flush=True,
        )


def _control_fifo(stack: ExitStack, emulator: Emulator, path: Path, stop: threading.Event) -> None:
    """The emulator's control FIFO, as `emulate` has it: incoming SMS, calls, faults."""
    from bridge.emulator.cli import serve_control_fifo

    serve_control_fifo(path, emulator, stop)
    stack.callback(path.unlink, missing_ok=True)


def _cellular_banner(mqtt: int, control: Path) -> None:
    """SMS, USSD and the emulated network's side: what to send it through its FIFO."""
    pub = f"mosquitto_pub -h 127.0.0.1 -p {mqtt} -t sim5360/modem/request"
    print("  SMS and USSD (the emulator decodes what it is sent; see its sent messages):")
    print(f'    {pub}/sms/send -m \'{{"to": "{DEMO_NUMBER}", "text": "Hallo €5 [ok]"}}\'')
    print(f'    {pub}/ussd/send -m \'{{"code": "*100#"}}\'')
    print("  the network, through the emulator's control FIFO (events on sim5360/modem/event):")
    print(f"    echo 'sms +4915199990000 Hello from the network' > {control}")
    print(f"    echo 'call +4930123456' > {control}; echo call-end > {control}")
    print(f"    echo 'ussd *100# Balance 1.23 EUR' > {control}")
    print("  stop with Ctrl-C")


def _banner(mqtt: int, http: int, https: int, work: Path, actions: list[str], ready: bool) -> None:
    sub = f"mosquitto_sub -h 127.0.0.1 -p {mqtt} -v -t 'sim5360/#'"
    pub = f"mosquitto_pub -h 127.0.0.1 -p {mqtt} -t sim5360/modem/request"
    examples = {
        "modem/status": "'{\"transaction\": 1}'",
        "modem/at": '\'{"command": "AT+CSQ"}\'',
        "smtp/send": '\'{"subject": "Door opened", "body": "Front door", '
        '"attachments": ["hello.txt"]}\'',
        "pop3/list": "'{\"headers\": true}'",
        "pop3/get": '\'{"id": 2, "save_to": "mail/2.eml"}\'',
        "ftp/list": '\'{"path": "/"}\'',
        "ftp/get": '\'{"path": "/hello.txt"}\'',
        "http/request": f'\'{{"url": "http://www.example.com:{http}/echo"}}\'',
        "https/request": f'\'{{"url": "https://www.example.com:{https}/bytes/100"}}\'',
    }
    print("sim5360-bridge demo is " + ("running" if ready else "starting (modem not yet online)"))
    print(f"  work folder: {work}   (files.dir is {work / 'files'})")
    print(f"  watch everything:  {sub}")
    print(
        f"  Home Assistant: its MQTT integration on broker 127.0.0.1 port {mqtt} finds the "
        "device 'SIM5360 modem' (discovery prefix homeassistant)"
    )
    print("  try:")
    for key, body in examples.items():
        topic_key = "http/request" if key == "https/request" else key
        if topic_key in actions:
            print(f"    {pub}/{topic_key} -m {body}")
        else:
            print(f"    ({key}: not built yet)")
    _cellular_banner(mqtt, work / CONTROL_FIFO)

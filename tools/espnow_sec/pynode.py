"""The Python reference as a node on the simulated air (docs/air.md), beside the C host nodes.

:class:`PyNode` joins an :class:`~espnow_sec.protocol.Initiator` or
:class:`~espnow_sec.protocol.Responder` (pure, no I/O) to the air through
:class:`~espnow_sec.air.client.AirClient`: one background thread feeds it every received frame
and ticks it with a real monotonic clock; other threads ask it to provision or send data. What
happened is kept as the machine's events plus :class:`Delivery` records (decrypted data with the
radio's channel and RSSI).

``python -m espnow_sec.pynode`` runs one such node as a process, configured like the C host
node (flags, or the same ``ESPNOW_*`` environment variables), printing the C app's ESP-IDF style
``app_main`` lines so ``espnow_sec.runner.logs`` parses both alike. stdin lines are sent as
encrypted broadcast data; SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from espnow_sec.air.client import AirClient, AirError
from espnow_sec.air.wire import ESP_NOW_SEND_SUCCESS, Rx, TxStatus, format_mac, parse_mac
from espnow_sec.protocol import (
    BROADCAST_MAC,
    DataReceived,
    Initiator,
    KeyInstalled,
    NodeConfig,
    Outgoing,
    PeerFailed,
    PeerSecured,
    ProtocolError,
    ProvisionDone,
    Responder,
    ScanDone,
)
from espnow_sec.protocol.keystore import RECORD_NAME, KeyRecord
from espnow_sec.protocol.node import Event, Rng, system_rng

TICK_S = 0.005  # the machines want a tick "at least every few ms while busy"
STORE_NAMESPACE = "espnow_sec"  # CONFIG_ESPNOW_SEC_NVS_NAMESPACE's default
STORE_FILE = f"{STORE_NAMESPACE}.{RECORD_NAME}"  # the host file-store name (docs/air.md)

Machine = Initiator | Responder


@dataclass(frozen=True)
class Delivery:
    """A data frame the machine accepted, with what the radio said about it."""

    src: bytes
    data: bytes
    encrypted: bool  # the CCM tag verified under our app key
    channel: int
    rssi: int


# --- key store: the host file-store record of docs/keystore.md ---


def load_key_record(store_dir: Path) -> KeyRecord | None:
    """The ``app_key`` record in ``store_dir``; None if there is none; StoreCorrupt if bad."""
    try:
        raw = (store_dir / STORE_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return KeyRecord.decode(raw)


def save_key_record(store_dir: Path, record: KeyRecord) -> Path:
    """Write the record as the host port does: temporary file, fsync, rename."""
    store_dir.mkdir(parents=True, exist_ok=True)
    path = store_dir / STORE_FILE
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(record.encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


# --- the node ---


class PyNode:
    """A reference machine on the air, driven by a thread. Use as a context manager or
    call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        machine: Machine,
        air: str | Path,
        *,
        on_event: Callable[[Event], None] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        store_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.machine = machine
        self.client = AirClient(air, machine.config.mac, machine.config.channel)
        self.store_dir = store_dir
        self._on_event = on_event
        self._on_delivery = on_delivery
        self._clock = clock
        self._t0 = clock() - machine.now_ms / 1000.0
        self._lock = threading.Lock()  # the machine and the socket's send side
        self._changed = threading.Condition()
        self._events: list[Event] = []
        self._deliveries: list[Delivery] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # why the driver thread died, if it did
        self.tx_fail = 0  # TX_STATUS ESP_NOW_SEND_FAIL count (lost unicasts, nobody there)

    @property
    def mac(self) -> bytes:
        return self.machine.config.mac

    def now_ms(self) -> int:
        return int((self._clock() - self._t0) * 1000)

    # --- lifecycle ---

    def start(self) -> PyNode:
        self.client.connect()
        self._thread = threading.Thread(
            target=self._run, name=f"pynode-{format_mac(self.mac)}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.close()

    def __enter__(self) -> PyNode:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- commands (any thread) ---

    def provision(self, app_key: bytes) -> None:
        """Initiator: start a provisioning run handing out ``app_key`` (32 bytes)."""
        if not isinstance(self.machine, Initiator):
            raise TypeError("only an initiator provisions")
        with self._lock:
            self._transmit(self.machine.start(app_key, self.now_ms()))
            events = self.machine.take_events()
        self._publish(events, [])

    def send(self, payload: bytes, dst: bytes = BROADCAST_MAC, encrypt: bool = True) -> None:
        """A DATA frame, AES-CCM under the app key unless ``encrypt`` is False."""
        with self._lock:
            self._transmit(self.machine.send_data(payload, dst, encrypt))

    # --- what happened (any thread) ---

    @property
    def events(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def wait_for(
        self, match: Callable[[Event | Delivery], bool], timeout: float
    ) -> Event | Delivery:
        """The first event or delivery (so far or to come) that ``match``es; TimeoutError after
        ``timeout`` seconds, RuntimeError if the driver thread died."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for item in [*self._events, *self._deliveries]:
                    if match(item):
                        return item
                if self.error is not None:
                    raise RuntimeError(f"{format_mac(self.mac)} stopped: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{format_mac(self.mac)}: nothing matched within {timeout:g} s; "
                        f"events {self._events}, deliveries {self._deliveries}"
                    )
                self._changed.wait(min(left, 0.1))

    # --- the driver thread ---

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                msg = self.client.recv(TICK_S)
                deliveries: list[Delivery] = []
                with self._lock:
                    now = max(self.now_ms(), self.machine.now_ms)
                    if isinstance(msg, Rx):
                        self._transmit(self.machine.on_frame(msg.src, msg.dst, msg.data, now))
                        events = self.machine.take_events()
                        deliveries = [
                            Delivery(e.src, e.data, e.encrypted, msg.channel, msg.rssi)
                            for e in events
                            if isinstance(e, DataReceived)
                        ]
                    else:
                        events = []
                        if isinstance(msg, TxStatus) and msg.status != ESP_NOW_SEND_SUCCESS:
                            self.tx_fail += 1
                    self._transmit(self.machine.tick(now))
                    events += self.machine.take_events()
                self._publish(events, deliveries)
        except BaseException as exc:  # reported through wait_for() and .error
            if not self._stopping.is_set():
                self.error = exc
            with self._changed:
                self._changed.notify_all()

    def _transmit(self, out: list[Outgoing]) -> None:
        for o in out:
            self.client.send(o.dst, o.frame)

    def _publish(self, events: list[Event], deliveries: list[Delivery]) -> None:
        if not events and not deliveries:
            return
        for e in events:
            if isinstance(e, KeyInstalled) and self.store_dir is not None:
                save_key_record(self.store_dir, KeyRecord(e.app_key, e.provisioner_mac))
        with self._changed:
            self._events += events
            self._deliveries += deliveries
            self._changed.notify_all()
        for e in events:
            if self._on_event is not None:
                self._on_event(e)
        for d in deliveries:
            if self._on_delivery is not None:
                self._on_delivery(d)


def make_machine(
    role: str,
    mac: bytes,
    pop: bytes,
    channel: int = 1,
    *,
    rng: Rng = system_rng,
    record: KeyRecord | None = None,
    **limits: int,
) -> Machine:
    """An Initiator or Responder; a responder starts secured from ``record`` if given."""
    config = NodeConfig(mac=mac, pop=pop, channel=channel, **limits)
    if role == "initiator":
        return Initiator(config, rng)
    if role == "responder":
        if record is None:
            return Responder(config, rng)
        return Responder(config, rng, app_key=record.app_key, provisioner=record.provisioner_mac)
    raise ValueError(f"role must be initiator or responder, got {role!r}")


# --- the console node: `python -m espnow_sec.pynode` ---

TAG = "app_main"


class _Console:
    """Prints the C app's ``app_main`` lines (main/app.c) for a PyNode's events."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._t0 = time.monotonic()
        self._out = threading.Lock()
        self._recv_count = 0
        self._send_count = 0

    def log(self, level: str, text: str) -> None:
        ms = int((time.monotonic() - self._t0) * 1000)
        with self._out:
            sys.stdout.write(f"{level} ({ms}) {TAG}: {text}\n")
            sys.stdout.flush()

    def on_event(self, e: Event) -> None:
        if isinstance(e, ScanDone):
            self.log("W", f"espnow wait security num: {e.found}")
        elif isinstance(e, PeerSecured) and self.role == "responder":
            self.log("I", "Get APP key")
        elif isinstance(e, PeerFailed):
            self.log("W", f"handshake with {format_mac(e.mac)} failed: {e.reason}")
        elif isinstance(e, ProvisionDone):
            self.log(
                "I",
                f"App key is sent to the device to complete, Spend time: {e.spend_ms}ms, "
                f"Scan time: {e.scan_ms}ms",
            )
            self.log(
                "I",
                f"Devices security completed, successed_num: {len(e.succeeded)}, "
                f"unfinished_num: {len(e.unfinished)}",
            )

    def on_delivery(self, d: Delivery) -> None:
        fields = (
            f"<{self._recv_count}> [{format_mac(d.src)}][{d.channel}][{d.rssi}][{len(d.data)}]: "
            f"{_printable(d.data)}"
        )
        self._recv_count += 1
        if d.encrypted:
            self.log("I", f"espnow_recv, {fields}")
        else:
            self.log("W", f"espnow_recv plaintext (not authenticated), {fields}")

    def typed(self, node: PyNode, line: bytes) -> None:
        if not line:
            return
        try:
            node.send(line)
        except (ValueError, ProtocolError, OSError) as exc:
            self.log("E", f"espnow_send failed: {exc}")
            return
        self.log(
            "I",
            f"espnow_send, count: {self._send_count}, size: {len(line)}, data: {_printable(line)}",
        )
        self._send_count += 1


def _printable(data: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)


def _pid_mac() -> bytes:
    """Locally administered, from the pid, as the C host node derives its default."""
    return b"\x02\x00\x00" + (os.getpid() & 0xFFFFFF).to_bytes(3, "big")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m espnow_sec.pynode",
        description="The Python reference implementation as a node on the simulated air. "
        "Every option defaults to the ESPNOW_* variable the C host node reads (docs/air.md).",
    )
    p.add_argument("--role", choices=["initiator", "responder"], default=_env("ESPNOW_ROLE"))
    p.add_argument("--air", default=_env("ESPNOW_AIR"), help="the air's Unix socket")
    p.add_argument("--mac", default=_env("ESPNOW_MAC"), help="aa:bb:cc:dd:ee:ff")
    p.add_argument("--pop", default=os.environ.get("ESPNOW_POP", "espnow_pop"))
    p.add_argument("--channel", type=int, default=int(os.environ.get("ESPNOW_CHANNEL", "1")))
    p.add_argument(
        "--store-dir",
        default=_env("ESPNOW_STORE_DIR"),
        help="key store folder (file espnow_sec.app_key, docs/keystore.md); none: keep no key",
    )
    p.add_argument("--app-key", help="initiator: the 32-byte app key, hex (default: stored/random)")
    p.add_argument("--scan-ms", type=int, default=1000, help="initiator: scan duration")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.role is None or args.air is None:
            raise ValueError("--role and --air (or ESPNOW_ROLE and ESPNOW_AIR) are required")
        mac = parse_mac(args.mac) if args.mac else _pid_mac()
        store = Path(args.store_dir) if args.store_dir else None
        record = load_key_record(store) if store is not None else None
        app_key = bytes.fromhex(args.app_key) if args.app_key else None
        if app_key is not None and len(app_key) != 32:
            raise ValueError(f"--app-key must be 32 bytes (64 hex digits), got {len(app_key)}")
    except (ValueError, ProtocolError) as exc:
        print(f"espnow_sec.pynode: {exc}", file=sys.stderr)
        return 2
    if args.role == "initiator":
        if app_key is None:
            app_key = record.app_key if record is not None else system_rng(32)
        if store is not None and (record is None or record.app_key != app_key):
            save_key_record(store, KeyRecord(app_key, mac))  # an initiator stores its own MAC
        record = None
    machine = make_machine(
        args.role,
        mac,
        args.pop.encode(),
        args.channel,
        record=record,
        scan_duration_ms=args.scan_ms,
    )
    console = _Console(args.role)
    node = PyNode(
        machine,
        args.air,
        on_event=console.on_event,
        on_delivery=console.on_delivery,
        store_dir=store if args.role == "responder" else None,
    )
    try:
        node.start()
    except AirError as exc:
        print(f"espnow_sec.pynode: {exc}", file=sys.stderr)
        return 3
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    holds_key = machine.app_key is not None or isinstance(machine, Initiator)  # its own key
    secured = "secured" if holds_key else "not secured"
    console.log(
        "I",
        f"ESP-NOW {args.role} ready, mac {format_mac(mac)}, channel {args.channel}, {secured}",
    )
    if isinstance(machine, Initiator) and app_key is not None:
        node.provision(app_key)

    def read_stdin() -> None:
        # EOF does not stop the node, as in the C host node. Raw reads of fd 0: a daemon thread
        # blocked inside sys.stdin's buffered reader would hold its lock at interpreter exit.
        pending = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(0, 4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    console.typed(node, raw.rstrip(b"\r"))

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    while not stop.wait(0.2):
        if node.error is not None:
            print(f"espnow_sec.pynode: {node.error}", file=sys.stderr)
            node.stop()
            return 1
    node.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Helpers of test_v2_air.py: real C nodes running protocol v2 on the real air, plus the
stations a test needs around them.

- ``V2Bench``: one air (always with ``--pcap``) and the node processes of one test, every node
  started with ``ESPNOW_PROTOCOL=v2``; reboot (SIGTERM or SIGKILL) with the same MAC and store;
  ``close`` always stops everything and reports crashes and sanitizer output.
- ``Station``: a raw station on the air (an attacker or a spoofer). The air refuses a MAC that
  is in use, so a test spoofs a member by taking the member off the air first.
- ``DropProxy``: sits between one node and the air and loses chosen frames on their way to that
  node (the air's ``--loss`` is random; this is a targeted loss).
- ``PyInitiator``: the Python v2 reference initiator driven on the air by a thread, configurable
  where the C node is not (``epoch_grace_s``).
- ``read_pcap`` / ``V2Frame``: every frame the air carried, parsed as v2.
- ``status``: ``/status`` typed into a node, parsed (README "UART commands").
"""

from __future__ import annotations

import contextlib
import re
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from espnow_sec.air.wire import (
    Hello,
    Rx,
    Tx,
    Welcome,
    decode_air_message,
    format_mac,
    parse_mac,
)
from espnow_sec.protocol.v2 import Initiator, V2Config
from espnow_sec.protocol.v2.events import Event, Outgoing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hostile_air import SANITIZER_MARKERS, Air, Node, Station  # noqa: E402

POP = "espnow_pop"
V2 = {"ESPNOW_PROTOCOL": "v2"}

# ----------------------------------------------------------------------------- v2 frames

T_SCAN_REQ, T_SCAN_RESP = 0x01, 0x02
T_HS1, T_HS2, T_HS3, T_HS4, T_HS_ERR = 0x10, 0x11, 0x12, 0x13, 0x1F
T_CTRL, T_CTRL_ACK, T_DATA, T_DATA_PLAIN, T_SYNC = 0x20, 0x21, 0x30, 0x31, 0x32
SECURED = (T_CTRL, T_CTRL_ACK, T_DATA, T_SYNC)


@dataclass(frozen=True)
class V2Frame:
    """One frame the air carried (pcap) or a station received."""

    t: float
    src: bytes
    dst: bytes
    body: bytes

    @property
    def is_v2(self) -> bool:
        return len(self.body) >= 4 and self.body[0] == 0xCF and self.body[1] == 0x02

    @property
    def type(self) -> int:
        return self.body[2] if self.is_v2 else -1

    @property
    def epoch(self) -> int:
        return int.from_bytes(self.body[4:6], "big")

    @property
    def counter(self) -> int:
        return int.from_bytes(self.body[6:12], "big")


def read_pcap(path: Path) -> list[V2Frame]:
    """Every frame of the air's pcap (tools/espnow_sec/air/pcap.py layout: 24-byte 802.11
    header, 8-byte vendor action, 7-byte ESP-NOW element header, then the body)."""
    raw = path.read_bytes()
    out, off = [], 24
    while off + 16 <= len(raw):
        sec, usec, incl, _ = struct.unpack_from("<IIII", raw, off)
        off += 16
        pkt = raw[off : off + incl]
        off += incl
        if len(pkt) < 39:
            break  # a record being written
        dst, src = pkt[4:10], pkt[10:16]
        n = pkt[33] - 5
        out.append(V2Frame(sec + usec / 1e6, src, dst, pkt[39 : 39 + n]))
    return out


# ----------------------------------------------------------------------------- /status

_STATUS = re.compile(
    r"status: protocol (?P<proto>\S+), (?P<role>\w+), (?P<secured>secured|not secured), "
    r"epoch (?P<epoch>\d+) \(staged (?P<staged>\d+), previous (?P<previous>\d+)\), "
    r"peers (?P<peers>\d+), tx counter (?P<tx_counter>\d+) \(reserved to (?P<reserved>\d+)\), "
    r"rx (?P<rx>\d+), delivered (?P<delivered>\d+), tx (?P<tx>\d+)"
)


@dataclass(frozen=True)
class Status:
    protocol: str
    secured: bool
    epoch: int
    staged: int
    previous: int
    peers: int
    tx_counter: int
    reserved: int
    rx: int
    delivered: int
    tx: int
    drops: dict[str, int]

    @property
    def dropped(self) -> int:
        return sum(self.drops.values())


def status(node: Node) -> Status:
    mark = node.mark()
    node.write(b"/status\n")
    drops_line = node.wait_for("app_main: status drops: ", 5, start=mark)
    line = next(ln for ln in node.since(mark) if "app_main: status: " in ln)
    m = _STATUS.search(line)
    assert m, f"unparsable status line: {line!r}"
    drops = {}
    for item in drops_line.split("status drops: ", 1)[1].split(", "):
        name, value = item.rsplit(" ", 1)
        drops[name] = int(value)
    g = m.groupdict()
    return Status(
        protocol=g["proto"],
        secured=g["secured"] == "secured",
        drops=drops,
        **{k: int(g[k]) for k in _STATUS.groupindex if k not in ("proto", "role", "secured")},
    )


def delta(after: Status, before: Status) -> dict[str, int]:
    """Drop counters that changed between two ``status`` calls."""
    return {k: v - before.drops.get(k, 0) for k, v in after.drops.items() if v != before.drops[k]}


# ----------------------------------------------------------------------------- node helpers


def recv_texts(node: Node, mark: int = 0) -> list[str]:
    """Texts the node logged as decrypted and authenticated (``espnow_recv, <n> [...]: text``)."""
    return [
        ln.split("]: ", 1)[1]
        for ln in node.since(mark)
        if "app_main: espnow_recv, " in ln and "]: " in ln
    ]


def wait_until(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def count_lines(node: Node, text: str, mark: int = 0) -> int:
    return sum(1 for ln in node.since(mark) if text in ln)


# ----------------------------------------------------------------------------- stations


class DropProxy:
    """A socket a node uses as its ``ESPNOW_AIR``: relays everything to the real air except the
    received frames ``drop(rx)`` says to lose (after the air reported the send a success)."""

    def __init__(self, air_path: Path, path: Path, drop: Callable[[Rx], bool]) -> None:
        self.air_path = air_path
        self.path = path
        self.drop = drop
        self.dropped: list[Rx] = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            node, _ = self.listener.accept()
        except OSError:
            return
        air = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        air.connect(str(self.air_path))
        with node, air:
            while not self._stop:
                ready, _, _ = select.select([node, air], [], [], 0.1)
                for s in ready:
                    try:
                        packet = s.recv(65536)
                    except OSError:
                        return
                    if not packet:
                        return
                    if s is node:
                        air.send(packet)
                        continue
                    msg = decode_air_message(packet)
                    if isinstance(msg, Rx) and self.drop(msg):
                        self.dropped.append(msg)
                        continue
                    node.send(packet)

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes an accept() still waiting
        self.listener.close()
        self._thread.join(2)


class PyInitiator:
    """The Python v2 reference initiator on the air, ticked every 5 ms by a thread."""

    def __init__(self, air_path: Path, mac: str, **config: object) -> None:
        self.mac = parse_mac(mac)
        self.machine = Initiator(V2Config(mac=self.mac, **config))  # type: ignore[arg-type]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(str(air_path))
        self.sock.send(Hello(self.mac, 1).encode())
        assert decode_air_message(self.sock.recv(64)) == Welcome(0)
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self._t0 = time.monotonic()
        self._seq = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def _send(self, outs: list[Outgoing]) -> None:
        for o in outs:
            self._seq += 1
            self.sock.send(Tx(self._seq, o.dst, o.frame).encode())
        self.events += self.machine.take_events()

    def provision(self) -> None:
        with self.lock:
            self._send(self.machine.provision(self.now()))

    def rekey(self) -> None:
        with self.lock:
            self._send(self.machine.rekey(self.now()))

    def send_data(self, payload: bytes) -> None:
        with self.lock:
            self._send(self.machine.send_data(payload))

    def seal(self, key: bytes, type_: int, epoch: int, dst: bytes, pt: bytes) -> bytes:
        """A secured frame from this station with the machine's next counter."""
        with self.lock:
            return self.machine._seal(key, type_, epoch, dst, pt)  # type: ignore[arg-type]

    def send_raw(self, dst: bytes, body: bytes) -> None:
        with self.lock:
            self._seq += 1
            self.sock.send(Tx(self._seq, dst, body).encode())

    def _run(self) -> None:
        try:
            while not self._stop:
                ready, _, _ = select.select([self.sock], [], [], 0.005)
                with self.lock:
                    if ready:
                        packet = self.sock.recv(4096)
                        if not packet:
                            return
                        msg = decode_air_message(packet)
                        if isinstance(msg, Rx):
                            self._send(
                                self.machine.on_frame(msg.src, msg.dst, msg.data, self.now())
                            )
                    self._send(self.machine.tick(self.now()))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


# ----------------------------------------------------------------------------- the bench


class V2Bench:
    """Owns every process and station of one test; ``close`` always stops them all."""

    def __init__(self, *air_args: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="v2air-"))
        self.pcap = self.dir / "air.pcap"
        self.store = self.dir / "stores"
        self.air = Air("--pcap", str(self.pcap), *air_args)
        self.nodes: list[Node] = []
        self.killed: set[int] = set()
        self.closers: list[Callable[[], None]] = []

    def node(self, role: str, mac: str, *, pop: str = POP, air: Path | None = None) -> Node:
        shim = _AirPath(air) if air is not None else self.air
        n = Node(shim, role, mac, self.store_of(mac), pop=pop, env=V2)  # type: ignore[arg-type]
        n.role = role  # type: ignore[attr-defined]
        n.pop = pop  # type: ignore[attr-defined]
        self.nodes.append(n)
        return n

    def store_of(self, mac: str) -> Path:
        return self.store / mac.replace(":", "")

    def stop(self, node: Node, *, kill: bool = False) -> None:
        """Take a node off the air (SIGTERM, or SIGKILL: a power cut) and wait until the air
        has seen it leave, so its MAC can be used again."""
        if kill:
            self.killed.add(id(node))
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(10)
        else:
            node.stop()
        self.wait_left(format_mac(node.mac_bytes))

    def reboot(self, node: Node, *, kill: bool = False) -> Node:
        self.stop(node, kill=kill)
        return self.node(node.role, node.mac, pop=node.pop)  # type: ignore[attr-defined]

    def wait_left(self, mac: str) -> None:
        def gone() -> bool:
            lines = list(self.air.lines)
            joined = sum(1 for ln in lines if ln.endswith(f"node {mac} joined on channel 1"))
            return sum(1 for ln in lines if ln.endswith(f"node {mac} left")) >= joined

        wait_until(gone, 5, f"the air to see {mac} leave")

    def station(self, mac: str) -> Station:
        s = Station(self.air.path, mac)
        self.closers.append(s.close)
        return s

    def proxy(self, drop: Callable[[Rx], bool]) -> DropProxy:
        p = DropProxy(self.air.path, self.air.dir / f"proxy{len(self.closers)}.sock", drop)
        self.closers.append(p.close)
        return p

    def py_initiator(self, mac: str, **config: object) -> PyInitiator:
        p = PyInitiator(self.air.path, mac, **config)
        self.closers.append(p.close)
        return p

    def frames(self) -> list[V2Frame]:
        return read_pcap(self.pcap)

    def close(self) -> list[str]:
        failed = []
        for n in self.nodes:
            code = n.stop()
            out = n.output()
            if id(n) in self.killed:
                code = 0
            if code != 0 or any(m in out for m in SANITIZER_MARKERS):
                failed.append(f"{n.mac} exited {code}:\n{out[-4000:]}")
        for c in reversed(self.closers):
            c()
        self.air.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        return failed


class _AirPath:
    """Looks like ``Air`` to ``Node``: only ``path`` is used."""

    def __init__(self, path: Path) -> None:
        self.path = path

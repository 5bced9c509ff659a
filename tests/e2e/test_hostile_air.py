"""Hostile radio: a Python station on the real air attacks real C nodes (real crypto, real frames).

Every test here encodes behaviour that is *correct*: junk, truncated, tampered, replayed-in-place,
spoofed and low-order-key frames are dropped without a crash, a hang, a false ``espnow_recv`` line
or a lost key, and the node stays responsive (it still sends a typed line) and provisionable.

The attacker (``Radio``) joins the air with its own MAC and puts any bytes in a frame body; the
nodes trust the header ``src_addr``, so the attacker spoofs any station by writing it there.
``provision_responder`` plays an initiator holding the PoP with the Python reference (real
X25519 / AES-CTR / CCM), so the tests know the app key and can forge or tamper data frames.

Point ``ESPNOW_E2E_NODE_BIN`` at a sanitizer build to run the same attacks under ASan/UBSan:

    cmake -S . -B /tmp/asan -DESPNOW_SEC_HOST=ON -DESPNOW_SEC_CONFIG=default \
          -DESPNOW_SEC_PYTHON=$PWD/.venv/bin/python -DESPNOW_SEC_SANITIZE=ON
    cmake --build /tmp/asan -j
    ESPNOW_E2E_NODE_BIN=/tmp/asan/espnow_node.elf .venv/bin/pytest tests/e2e/test_hostile_air.py

A sanitizer report ends the node with a non-zero status (exitcode 99 / 98), which every test checks.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from espnow_sec.air.wire import (
    BROADCAST,
    Hello,
    Rx,
    Tx,
    Welcome,
    decode_air_message,
    format_mac,
    parse_mac,
)
from espnow_sec.protocol import appkey
from espnow_sec.protocol import data as pdata
from espnow_sec.protocol.frame import SEC_GROUP_ID, DataType, Frame, Header
from espnow_sec.protocol.records import Handshake, Key, KeyResp
from espnow_sec.protocol.security1 import Security1Client, Security1Device
from espnow_sec.protocol.session import Cmd0, Cmd1, Resp0, Resp1, decode_session

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = Path(
    os.environ.get("ESPNOW_E2E_NODE_BIN") or REPO / "build" / "host" / "compat" / "espnow_node.elf"
)
POP = b"espnow_pop"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")

# RFC 7748 / libsodium's blacklist: u-coordinates of small order (and their non-canonical forms).
LOW_ORDER_KEYS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ((1 << 255) - 20).to_bytes(32, "little"),  # p - 1
    ((1 << 255) - 19).to_bytes(32, "little"),  # p
    ((1 << 255) - 18).to_bytes(32, "little"),  # p + 1
]


def _require_node() -> None:
    if not NODE_BIN.is_file():
        pytest.skip(f"host node binary {NODE_BIN} is missing: run `make build` first")


# ------------------------------------------------------------------------------- processes


class Air:
    """``espnow-sec-air`` on a short socket path (Unix sockets allow 107 bytes)."""

    def __init__(self, *extra: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hostile-"))
        self.path = self.dir / "air.sock"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "espnow_sec.air", "--socket", str(self.path), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert "listening" in first, first
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    """One host node process; its output lines are collected by a thread."""

    def __init__(
        self,
        air: Air,
        role: str,
        mac: str,
        store: Path,
        *,
        pop: str = POP.decode(),
        level: str = "debug",
        env: dict[str, str] | None = None,
    ) -> None:
        e = {k: v for k, v in os.environ.items() if not k.startswith("ESPNOW_")}
        e.update(
            ESPNOW_AIR=str(air.path),
            ESPNOW_MAC=mac,
            ESPNOW_ROLE=role,
            ESPNOW_POP=pop,
            ESPNOW_CHANNEL="1",
            ESPNOW_STORE_DIR=str(store),
            ESPNOW_LOG_LEVEL=level,
            ASAN_OPTIONS="exitcode=99:detect_leaks=1",
            UBSAN_OPTIONS="halt_on_error=1:exitcode=98:print_stacktrace=1",
        )
        e.update(env or {})
        self.mac = mac
        self.mac_bytes = parse_mac(mac)
        self.proc = subprocess.Popen(
            [str(NODE_BIN)],
            env=e,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            bufsize=0,
        )
        self.lines: list[str] = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self._typed = 0

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            with self._cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def output(self) -> str:
        with self._cv:
            return "\n".join(self.lines)

    def mark(self) -> int:
        with self._cv:
            return len(self.lines)

    def since(self, mark: int) -> list[str]:
        with self._cv:
            return list(self.lines[mark:])

    def wait_for(self, text: str, timeout: float = 10.0, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        i = start
        with self._cv:
            while True:
                while i < len(self.lines):
                    if text in self.lines[i]:
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    raise AssertionError(
                        f"{self.mac}: no line with {text!r} within {timeout} s "
                        f"(exit status {self.proc.poll()}); output:\n" + "\n".join(self.lines[-80:])
                    )
                self._cv.wait(min(left, 0.2))

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def assert_responsive(self) -> None:
        """Alive, and a typed line is still sent: the node neither crashed nor hung."""
        assert self.proc.poll() is None, (
            f"{self.mac} exited {self.proc.returncode}:\n{self.output()}"
        )
        self._typed += 1
        tag = f"still-alive-{self._typed}"
        mark = self.mark()
        self.write(tag.encode() + b"\n")
        self.wait_for(f"data: {tag}", 5.0, start=mark)

    def recv_lines(self, mark: int = 0) -> list[str]:
        """Lines that claim a decrypted, authenticated frame."""
        return [line for line in self.since(mark) if "app_main: espnow_recv, " in line]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        return self.proc.returncode


def run_node_once(
    air: Air, store: Path, timeout: float = 5.0, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a responder node to completion with only these ESPNOW_* variables (start-up errors)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("ESPNOW_")}
    e.update(ESPNOW_AIR=str(air.path), ESPNOW_STORE_DIR=str(store), ESPNOW_ROLE="responder")
    e.update(env)
    return subprocess.run(
        [str(NODE_BIN)],
        env=e,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Station:
    """A raw station on the air: sends any frame body from its MAC, keeps every RX it gets."""

    def __init__(self, air_path: Path, mac: str) -> None:
        self.mac = parse_mac(mac)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(str(air_path))
        self.sock.send(Hello(self.mac, 1).encode())
        welcome = decode_air_message(self.sock.recv(64))
        assert welcome == Welcome(0), f"the air refused {mac}: {welcome}"
        self.rx: queue.Queue[Rx] = queue.Queue()
        self.seq = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                packet = self.sock.recv(4096)
            except OSError:
                return
            if not packet:
                return
            msg = decode_air_message(packet)
            if isinstance(msg, Rx):
                self.rx.put(msg)

    def send(self, dst: bytes, body: bytes) -> None:
        self.seq += 1
        self.sock.send(Tx(self.seq, dst, body).encode())

    def expect(self, pred: Callable[[Rx], bool], timeout: float = 5.0) -> Rx:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{format_mac(self.mac)}: the expected frame never arrived")
            try:
                rx = self.rx.get(timeout=left)
            except queue.Empty:
                continue
            if pred(rx):
                return rx

    def drain(self) -> list[Rx]:
        """Everything received and not yet taken."""
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self.rx.get_nowait())
        return out

    def close(self) -> None:
        # shutdown first: a close() alone leaves the socket alive while the reader thread is
        # blocked in recv(), and the air would not see this station leave
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


def _frame(rx: Rx) -> Frame | None:
    try:
        return Frame.decode(rx.data)
    except Exception:
        return None


class Radio:
    """The attacker's station, seeing compat frames (undecodable bodies are skipped)."""

    def __init__(self, air: Air, mac: str) -> None:
        self.station = Station(air.path, mac)
        self.mac = self.station.mac

    def send(self, dst: bytes, body: bytes) -> None:
        self.station.send(dst, body)

    def expect(self, pred: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        rx = self.station.expect(lambda r: (f := _frame(r)) is not None and pred(f), timeout)
        frame = _frame(rx)
        assert frame is not None
        return frame

    def drain(self) -> list[Frame]:
        return [f for f in map(_frame, self.station.drain()) if f is not None]

    def close(self) -> None:
        self.station.close()


class Bench:
    """Owns every process of one test; ``close`` always stops them all."""

    def __init__(self) -> None:
        self.air = Air()
        self.nodes: list[Node] = []
        self.radios: list[Radio] = []
        self.fakes: list[FakeResponder] = []
        self.store = self.air.dir / "stores"

    def node(self, role: str, mac: str, **kw: object) -> Node:
        n = Node(self.air, role, mac, self.store / mac.replace(":", ""), **kw)  # type: ignore[arg-type]
        self.nodes.append(n)
        return n

    def radio(self, mac: str) -> Radio:
        r = Radio(self.air, mac)
        self.radios.append(r)
        return r

    def fake_responder(self, mac: str, **kw: object) -> FakeResponder:
        f = FakeResponder(self.air, mac, **kw)  # type: ignore[arg-type]
        self.fakes.append(f)
        return f

    def close(self) -> list[tuple[Node, int]]:
        for f in self.fakes:
            f.close()
        for r in self.radios:
            r.close()
        codes = [(n, n.stop()) for n in self.nodes]
        self.air.stop()
        return codes


@pytest.fixture
def bench() -> Iterator[Bench]:
    _require_node()
    b = Bench()
    failed: list[str] = []
    try:
        yield b
    finally:
        for node, code in b.close():
            out = node.output()
            if code != 0 or any(m in out for m in SANITIZER_MARKERS):
                failed.append(f"{node.mac} exited {code}:\n{out[-4000:]}")
    assert not failed, "\n\n".join(failed)


# ------------------------------------------------------------------------------- frames

_magic = [random.randrange(0x10000)]


def _next_magic() -> int:
    _magic[0] = (_magic[0] + 1) & 0xFFFF
    return _magic[0]


def frame(
    ftype: int,
    payload: bytes,
    *,
    src: bytes,
    dest: bytes = BROADCAST,
    security: bool = False,
    group: bool = False,
    magic: int | None = None,
    version: int = 2,
) -> bytes:
    h = Header(
        type=ftype,
        size=len(payload) & 0xFF,
        magic=_next_magic() if magic is None else magic,
        channel=1,
        security=security,
        broadcast=dest == BROADCAST,
        group=group,
        retransmit_count=1,
        dest_addr=dest,
        src_addr=src,
    )
    raw = bytearray(h.encode() + payload)
    raw[0] = (raw[0] & 0xCF) | ((version & 3) << 4)
    return bytes(raw)


def data_frame(key: bytes, text: bytes, src: bytes, *, magic: int | None = None) -> bytes:
    h = Header(
        type=DataType.DATA,
        broadcast=True,
        dest_addr=BROADCAST,
        src_addr=src,
        magic=_next_magic() if magic is None else magic,
        channel=1,
        retransmit_count=1,
    )
    return pdata.protect(key, os.urandom(8), text, h).encode()


def security(payload: bytes, src: bytes, dest: bytes) -> bytes:
    return frame(DataType.SECURITY, payload, src=src, dest=dest)


def provision_responder(rad: Radio, rmac: bytes, key: bytes, pop: bytes = POP) -> None:
    """Play an initiator holding the PoP: Cmd0, Cmd1, KEY; the KEY_RESP echo must verify.
    Answers left over from earlier attacks (same MACs) are skipped by their message type."""

    def sec_from_r(f: Frame) -> bool:
        return f.header.type == DataType.SECURITY and f.header.src_addr == rmac

    def session(cls: type) -> Callable[[Frame], bool]:
        def pred(f: Frame) -> bool:
            if not sec_from_r(f) or f.payload[:1] != b"\x02":
                return False
            with contextlib.suppress(Exception):
                return isinstance(decode_session(Handshake.decode(f.payload).data), cls)
            return False

        return pred

    rad.drain()
    cli = Security1Client(pop, os.urandom(32))
    rad.send(rmac, security(Handshake(cli.cmd0().encode()).encode(), rad.mac, rmac))
    c1 = cli.handle_resp0_bytes(Handshake.decode(rad.expect(session(Resp0)).payload).data)
    rad.send(rmac, security(Handshake(c1).encode(), rad.mac, rmac))
    cli.handle_resp1_bytes(Handshake.decode(rad.expect(session(Resp1)).payload).data)
    rad.send(rmac, security(appkey.make_key(cli, key).encode(), rad.mac, rmac))
    resp = rad.expect(lambda f: sec_from_r(f) and f.payload[:1] == b"\x04")
    appkey.check_key_resp(cli, key, KeyResp.decode(resp.payload))


class FakeResponder:
    """A responder played in Python with the PoP; ``hold`` pauses it before sending that answer
    ('resp0', 'resp1', 'key_resp') until ``release``, so the initiator waits at a known step."""

    STEPS = ("resp0", "resp1", "key_resp")

    def __init__(
        self, air: Air, mac: str, hold: str | None = None, key_resp: bytes | None = None
    ) -> None:
        self.radio = Radio(air, mac)
        self.hold = hold
        self.key_resp = key_resp
        self.reached = {s: threading.Event() for s in self.STEPS}
        self.gates = {s: threading.Event() for s in self.STEPS}
        self.app_key: bytes | None = None
        self.errors: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def release(self, step: str) -> None:
        self.gates[step].set()

    def _gate(self, step: str) -> None:
        self.reached[step].set()
        if self.hold == step:
            self.gates[step].wait(15)

    def _run(self) -> None:
        r = self.radio
        dev: Security1Device | None = None
        while not self._stop:
            try:
                rx = r.station.rx.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                f = Frame.decode(rx.data)
                if f.header.type != DataType.SECURITY or not f.payload:
                    continue
                src = f.header.src_addr
                if f.payload == b"\x00":
                    info = bytes([1, 0]) + bytes(6)
                    r.send(src, frame(DataType.SECURITY_STATUS, info, src=r.mac, dest=src))
                elif f.payload[0] == 2:
                    msg = decode_session(Handshake.decode(f.payload).data)
                    if isinstance(msg, Cmd0) and dev is None:
                        dev = Security1Device(POP, os.urandom(32), os.urandom(16))
                        out = dev.handle_cmd0_bytes(msg.encode())
                        self._gate("resp0")
                        r.send(src, security(Handshake(out).encode(), r.mac, src))
                    elif (
                        isinstance(msg, Cmd1) and dev is not None and dev.state.name == "WAIT_CMD1"
                    ):
                        out = dev.handle_cmd1_bytes(msg.encode())
                        self._gate("resp1")
                        r.send(src, security(Handshake(out).encode(), r.mac, src))
                elif f.payload[0] == 3 and dev is not None and self.app_key is None:
                    self.app_key, kr = appkey.accept_key(dev, Key.decode(f.payload))
                    self._gate("key_resp")
                    body = kr.encode() if self.key_resp is None else bytes([4, 32]) + self.key_resp
                    r.send(src, security(body, r.mac, src))
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))

    def close(self) -> None:
        self._stop = True
        for g in self.gates.values():
            g.set()
        self._thread.join(2)
        self.radio.close()


RESPONDER = "02:00:00:00:01:01"
INITIATOR = "02:00:00:00:00:01"
ATTACKER = "02:00:00:00:00:aa"


def _secured_responder(bench: Bench) -> tuple[Node, Radio, bytes]:
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    rad = bench.radio(ATTACKER)
    key = os.urandom(32)
    provision_responder(rad, node.mac_bytes, key)
    node.wait_for("app_main: Get APP key")
    return node, rad, key


# ------------------------------------------------------------------------------- tests


def test_truncated_and_garbage_frames_of_every_length(bench: Bench) -> None:
    """Every prefix (1..250 bytes) of seven frame types, with the size byte as truncated and as
    fixed up to match (so the inner parsers run), unicast and broadcast: no crash, no delivery,
    still responsive and still provisionable with the real PoP."""
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    rad = bench.radio(ATTACKER)
    rng = random.Random(7)
    cmd0 = Handshake(Cmd0(os.urandom(32)).encode()).encode()
    bodies = []
    for ftype in (
        DataType.SECURITY,
        DataType.SECURITY_STATUS,
        DataType.DATA,
        DataType.GROUP,
        0,
        3,
        15,
    ):
        tail = bytes(rng.randrange(256) for _ in range(230 - len(cmd0)))
        base = frame(ftype, cmd0 + tail, src=rad.mac, security=ftype == DataType.DATA)
        for n in range(1, 251):
            bodies.append(base[:n])
            if n >= 20:
                fixed = bytearray(base[:n])
                fixed[1] = n - 20
                bodies.append(bytes(fixed))
    for i, body in enumerate(bodies):
        rad.send(node.mac_bytes if i % 2 else BROADCAST, body)
        if i % 64 == 0:
            time.sleep(0.005)  # let the node keep up: the test is about parsing, not queueing
    node.assert_responsive()
    assert node.recv_lines() == []  # nothing was authentic (an idle node may log plaintext)
    provision_responder(rad, node.mac_bytes, os.urandom(32))
    node.wait_for("app_main: Get APP key")
    node.assert_responsive()


def test_inner_size_byte_beyond_the_frame_and_protobuf_garbage(bench: Bench) -> None:
    """HANDSHAKE/KEY records whose size byte claims more than the frame holds, and SessionData
    with huge varints, impossible lengths, unknown fields, oneof mismatches and random bytes."""
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    rad = bench.radio(ATTACKER)
    r = node.mac_bytes
    body = Handshake(Cmd0(os.urandom(32)).encode()).encode()
    for size in (3, 40, 41, 42, 100, 200, 255):
        rad.send(r, security(bytes([2, size]) + body[2:12], rad.mac, r))
        rad.send(r, security(bytes([3, size]) + os.urandom(20), rad.mac, r))
        rad.send(r, security(bytes([2, size]), rad.mac, r))
    key32 = b"\x0a\x20" + bytes(32)
    nasty = [
        b"\x08\x01\x5a\x80\x80\x80\x80\x10",  # sec1 claims 4 GiB
        b"\x08" + b"\xff" * 9 + b"\x01",  # 10-byte varint
        b"\x08" + b"\xff" * 10 + b"\x01",  # 11-byte varint (invalid)
        b"\x08\x01\x5a\x02\x08\x00",  # msg=Cmd0 without its payload
        b"\x08\x01\x5a\x26\x08\x01\x52\x22" + key32,  # msg=Resp0 but sc0 set
        b"\x08\x01" + (b"\x5a\x24\x52\x22" + key32) * 2,  # repeated sec1
        b"\x08\x01\x5a\x24\x52\x22" + key32 + b"\xf8\xff\xff\xff\x0f\x01" * 20,  # unknown fields
        b"\x08\x01\x5a\x80\x01" + b"\x5a\x7e" * 60,  # nested garbage
        b"\x08\x01\xa2\x06\x80\x01" + os.urandom(128),  # unknown length-delimited field
        b"\x08\x02\x5a\x24\x52\x22" + key32,  # sec_ver 2
        b"\x08\x01\x5a\x24\x52\x22\x0a\x10" + bytes(16),  # 16-byte public key
        b"\x08\x01\x5a\x46\x52\x44\x0a\x42" + bytes(66),  # 66-byte public key
    ]
    rng = random.Random(3)
    nasty += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(150)]
    mark = node.mark()
    for p in nasty:
        rad.send(r, security(bytes([2, len(p)]) + p, rad.mac, r))
        time.sleep(0.001)
    node.assert_responsive()
    assert node.recv_lines() == []
    # the responder never answered any of it with a Resp0 (nothing was a valid Cmd0)
    answers = [f for f in rad.drain() if f.header.type == DataType.SECURITY]
    assert answers == [], answers
    assert "handshake with" not in "\n".join(node.since(mark)), "junk was taken for a handshake"
    provision_responder(rad, r, os.urandom(32))
    node.wait_for("app_main: Get APP key")


def test_low_order_public_keys_are_refused_and_the_real_initiator_still_succeeds(
    bench: Bench,
) -> None:
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    rad = bench.radio(ATTACKER)
    r = node.mac_bytes
    mark = node.mark()
    for k in LOW_ORDER_KEYS:
        rad.send(r, security(Handshake(Cmd0(k).encode()).encode(), rad.mac, r))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        fails = [ln for ln in node.since(mark) if "app_main: handshake with" in ln]
        if len(fails) >= len(LOW_ORDER_KEYS):
            break
        time.sleep(0.05)
    assert len(fails) == len(LOW_ORDER_KEYS), node.output()
    assert all("bad public key" in ln for ln in fails), fails
    time.sleep(0.2)
    assert [f for f in rad.drain() if f.header.type == DataType.SECURITY] == [], (
        "answered a low-order key"
    )
    assert not any((bench.store / RESPONDER.replace(":", "")).glob("*app_key*"))
    provision_responder(bench.radio("02:00:00:00:00:01"), r, os.urandom(32))
    node.wait_for("app_main: Get APP key")


def test_rogue_initiator_without_the_pop_never_gets_in_and_does_not_lock_out(bench: Bench) -> None:
    """A stranger with a wrong PoP runs Cmd0/Cmd1 five times from its own MAC: each attempt is
    refused (PoP mismatch, no Resp1), nothing is stored, and the real initiator then succeeds."""
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    rogue = bench.radio(ATTACKER)
    r = node.mac_bytes

    def answer(f: Frame) -> bool:
        return f.header.type == DataType.SECURITY and f.header.src_addr == r

    for attempt in range(5):
        mark = node.mark()
        cli = Security1Client(b"guess-%d" % attempt, os.urandom(32))
        rogue.send(r, security(Handshake(cli.cmd0().encode()).encode(), rogue.mac, r))
        c1 = cli.handle_resp0_bytes(Handshake.decode(rogue.expect(answer).payload).data)
        rogue.send(r, security(Handshake(c1).encode(), rogue.mac, r))
        node.wait_for("PoP mismatch", 5, start=mark)
        # a KEY pushed anyway (made with the rogue's view of the stream) is not taken either
        rogue.send(r, security(bytes([3, 32]) + os.urandom(32), rogue.mac, r))
    time.sleep(0.3)
    assert [f for f in rogue.drain() if answer(f)] == [], "the responder answered a wrong PoP"
    assert "Get APP key" not in node.output()
    assert not any((bench.store / RESPONDER.replace(":", "")).glob("*app_key*"))
    provision_responder(bench.radio(INITIATOR), r, os.urandom(32))
    node.wait_for("app_main: Get APP key")
    node.assert_responsive()


def test_secured_responder_delivers_only_authentic_payloads(bench: Bench) -> None:
    """Once secured: ciphertext/tag/nonce bit flips, plaintext DATA, other versions, frames that
    claim the node's own MAC, REST and GROUP frames are never logged as decrypted; a genuine
    250-byte frame (218-byte payload) is; the node keeps its key and still encrypts."""
    node, rad, key = _secured_responder(bench)
    mark = node.mark()
    sent = [0]
    send = rad.send

    def paced(dst: bytes, body: bytes) -> None:
        send(dst, body)
        sent[0] += 1
        if sent[0] % 16 == 0:
            time.sleep(0.01)  # stay under the node's 32-frame radio queue: no drop by overload

    rad.send = paced  # type: ignore[method-assign]
    good = data_frame(key, b"bit flip target", rad.mac)
    for bit in range(20 * 8, len(good) * 8):  # every bit of ciphertext, tag and nonce
        b = bytearray(good)
        b[bit // 8] ^= 1 << (bit % 8)
        b[2:4] = _next_magic().to_bytes(2, "little")  # a fresh magic: not a duplicate
        rad.send(BROADCAST, bytes(b))
    for cut in range(1, len(good) - 20):  # truncated, size byte fixed up
        b = bytearray(good[: len(good) - cut])
        b[1] = len(b) - 20
        b[2:4] = _next_magic().to_bytes(2, "little")
        rad.send(BROADCAST, bytes(b))
    for i in range(5):
        rad.send(BROADCAST, frame(DataType.DATA, b"PLAINTEXT-%d" % i, src=rad.mac))
        rad.send(
            node.mac_bytes,
            frame(DataType.DATA, b"PLAINTEXT-U%d" % i, src=rad.mac, dest=node.mac_bytes),
        )
    for v in (0, 1, 3):
        body = data_frame(key, b"VERSION-%d" % v, rad.mac)
        rad.send(BROADCAST, frame(DataType.DATA, body[20:], src=rad.mac, security=True, version=v))
    rad.send(BROADCAST, data_frame(key, b"FROM-ITS-OWN-MAC", node.mac_bytes))
    for dst in (node.mac_bytes, BROADCAST):
        rad.send(dst, security(b"\x05", rad.mac, dst))
        rad.send(dst, security(b"\x05\x00", rad.mac, dst))
    r = node.mac_bytes
    for g in (
        bytes([0]) + SEC_GROUP_ID + bytes([1]) + r,
        bytes([1]) + SEC_GROUP_ID + bytes([1]) + r,
        bytes([1]) + SEC_GROUP_ID + bytes([40]) + r * 2,
        bytes([7]) + SEC_GROUP_ID + bytes([1]) + r,
        bytes([1]) + SEC_GROUP_ID + bytes([255]) + r * 30,
    ):
        rad.send(BROADCAST, frame(DataType.GROUP, g, src=rad.mac))
    time.sleep(0.2)
    rad.send(BROADCAST, data_frame(key, b"M" * 218, rad.mac))
    node.wait_for("][218]: " + "M" * 40, 5, start=mark)
    assert "radio queue full" not in "\n".join(node.since(mark))
    node.assert_responsive()
    recv = node.recv_lines(mark)
    assert len(recv) == 1 and recv[0].endswith("M" * 218), recv
    assert "PLAINTEXT" not in "\n".join(node.since(mark))
    # still secured with the same key: a valid frame is delivered and the node encrypts
    rad.drain()
    rad.send(BROADCAST, data_frame(key, b"after the storm", rad.mac))
    assert "espnow_recv, " in node.wait_for("after the storm", 5, start=mark)
    node.write(b"reply under the same key\n")

    def reply(f: Frame) -> bool:
        return (
            f.header.type == DataType.DATA
            and f.header.src_addr == node.mac_bytes
            and (f.header.security and pdata.unprotect(key, f)[0] == b"reply under the same key")
        )

    rad.expect(reply)  # raises if the node sent it in clear or under another key


def test_duplicate_of_an_encrypted_frame_is_delivered_once(bench: Bench) -> None:
    """The same frame (same src, type and magic) received twice is one delivery (retransmission
    copies). A copy with a *new* magic is a replay the compat protocol cannot detect (report)."""
    node, rad, key = _secured_responder(bench)
    mark = node.mark()
    f = data_frame(key, b"exactly once", rad.mac)
    for _ in range(5):
        rad.send(BROADCAST, f)
    node.wait_for("exactly once", 5, start=mark)
    node.assert_responsive()
    assert len([ln for ln in node.recv_lines(mark) if "exactly once" in ln]) == 1


def test_stranger_answers_do_not_disturb_a_running_handshake(bench: Bench) -> None:
    """Mid-handshake (initiator waiting for Resp1), a station that is not a peer sends Resp0,
    Resp1 and KEY_RESP to the initiator: all ignored; the responder is secured."""
    fake = bench.fake_responder("02:00:00:00:01:0f", hold="resp1")
    stranger = bench.radio(ATTACKER)
    ini = bench.node("initiator", INITIATOR)
    assert fake.reached["resp1"].wait(8), ini.output()
    i = ini.mac_bytes
    for body in (
        Handshake(Resp0(os.urandom(32), os.urandom(16)).encode()).encode(),
        Handshake(Resp1(os.urandom(32)).encode()).encode(),
        bytes([4, 32]) + os.urandom(32),
        bytes([4, 200]) + os.urandom(10),
        bytes([2, 61]) + os.urandom(61),
    ):
        stranger.send(i, security(body, stranger.mac, i))
    time.sleep(0.2)
    fake.release("resp1")
    done = ini.wait_for("Devices security completed", 15)
    assert done.endswith("successed_num: 1, unfinished_num: 0"), ini.output()
    assert fake.app_key is not None and fake.errors == []
    assert "failed" not in ini.output()


def test_key_resp_with_a_wrong_echo_is_not_success(bench: Bench) -> None:
    """A responder whose KEY_RESP does not echo the key is reported failed, never secured."""
    fake = bench.fake_responder("02:00:00:00:01:0f", key_resp=bytes(32))
    ini = bench.node("initiator", INITIATOR)
    done = ini.wait_for("Devices security completed", 15)
    assert done.endswith("successed_num: 0, unfinished_num: 1"), ini.output()
    ini.wait_for("handshake with 02:00:00:00:01:0f failed: KEY_RESP did not echo")
    assert fake.app_key is not None


def test_info_flood_from_thousands_of_spoofed_macs_is_bounded(bench: Bench) -> None:
    """5000 INFO answers from 5000 spoofed MACs during the scan: the scan still ends on time,
    the responder table stays bounded (CONFIG_ESPNOW_SEC_MAX_RESPONDERS, 32 by default), the
    initiator stays responsive. (Ghost peers then cost the run their retry timeouts: report.)"""
    rad = bench.radio(ATTACKER)
    ini = bench.node("initiator", INITIATOR, level="info")
    i = ini.mac_bytes
    rad.expect(lambda f: f.header.type == DataType.SECURITY and f.payload == b"\x00", 5)
    info = bytes([1, 0]) + bytes(6)
    for n in range(5000):
        src = bytes([0x02, 0x66]) + n.to_bytes(4, "big")
        rad.send(i, frame(DataType.SECURITY_STATUS, info, src=src, dest=i))
    found = ini.wait_for("espnow wait security num:", 5)
    assert 1 <= int(found.rsplit(":", 1)[1]) <= 32, found
    scan = ini.wait_for("scan done:", 1)
    assert int(scan.split(" in ")[1].split()[0]) <= 1100, scan
    ini.assert_responsive()


def test_frames_after_a_finished_run_are_ignored(bench: Bench) -> None:
    """Replaying the handshake answers (captured by a fake responder's radio) to an initiator
    whose run is over changes nothing: no second 'completed', no failure, still responsive."""
    fake = bench.fake_responder("02:00:00:00:01:0f")
    ini = bench.node("initiator", INITIATOR)
    assert ini.wait_for("Devices security completed", 15).endswith(
        "successed_num: 1, unfinished_num: 0"
    )
    mark = ini.mark()
    i = ini.mac_bytes
    f = fake.radio.mac
    for body in (
        bytes([1, 0]) + bytes(6),
        Handshake(Resp0(os.urandom(32), os.urandom(16)).encode()).encode(),
        Handshake(Resp1(os.urandom(32)).encode()).encode(),
        bytes([4, 32]) + os.urandom(32),
    ):
        ftype = DataType.SECURITY_STATUS if body[0] == 1 else DataType.SECURITY
        fake.radio.send(i, frame(ftype, body, src=f, dest=i))
    time.sleep(0.3)
    ini.assert_responsive()
    later = "\n".join(ini.since(mark))
    assert "completed" not in later and "failed" not in later, later

"""The simulated air: its pure radio model, its wire codec, and the socket server (docs/air.md)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from espnow_sec.air.medium import RSSI_MAX, RSSI_MIN, Medium, MediumError
from espnow_sec.air.pcap import LINKTYPE_IEEE802_11, PcapWriter, action_frame
from espnow_sec.air.server import AirServer
from espnow_sec.air.wire import (
    BROADCAST,
    ESP_NOW_SEND_FAIL,
    ESP_NOW_SEND_SUCCESS,
    WELCOME_MAC_IN_USE,
    WELCOME_OK,
    AirMessage,
    Hello,
    ProtocolError,
    Rx,
    SetChannel,
    Tx,
    TxStatus,
    Welcome,
    decode_air_message,
    decode_node_message,
    describe_frame,
    format_mac,
    parse_mac,
)


def mac(n: int) -> bytes:
    return bytes([2, 0, 0, 0, 0, n])


A, B, C, D = mac(1), mac(2), mac(3), mac(4)


# --- wire codec ---


@pytest.mark.parametrize(
    "msg",
    [
        Hello(A, 6),
        Tx(0xDEADBEEF, BROADCAST, b"x" * 250),
        Tx(1, B, b""),
        SetChannel(11),
    ],
)
def test_node_messages_round_trip(msg: Hello | Tx | SetChannel) -> None:
    assert decode_node_message(msg.encode()) == msg


@pytest.mark.parametrize(
    "msg", [Welcome(WELCOME_MAC_IN_USE), Rx(A, B, 1, -42, b"abc"), TxStatus(7, B, 1)]
)
def test_air_messages_round_trip(msg: AirMessage) -> None:
    assert decode_air_message(msg.encode()) == msg


def test_wire_layout_matches_docs() -> None:
    assert Hello(A, 6).encode() == b"\x01" + A + b"\x06"
    assert Tx(0x01020304, B, b"hi").encode() == b"\x02\x04\x03\x02\x01" + B + b"hi"
    assert Rx(A, B, 1, -1, b"z").encode() == b"\x82" + A + B + b"\x01\xff" + b"z"
    assert TxStatus(1, B, 1).encode() == b"\x83\x01\x00\x00\x00" + B + b"\x01"
    assert Welcome(0).encode() == b"\x81\x00"


@pytest.mark.parametrize(
    "packet", [b"", b"\x09", b"\x01" + A, b"\x01" + A + b"\x01\x02", b"\x02\x00\x00", b"\x03"]
)
def test_malformed_node_packets_are_rejected(packet: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_node_message(packet)


def test_mac_text() -> None:
    assert parse_mac("02:00:00:00:01:0A") == bytes([2, 0, 0, 0, 1, 10])
    assert format_mac(bytes([2, 0, 0, 0, 1, 10])) == "02:00:00:00:01:0a"
    for bad in ("02:00:00:00:01", "zz:00:00:00:00:00", "0200000000001"):
        with pytest.raises(ValueError, match="MAC"):
            parse_mac(bad)


def test_describe_frame_decodes_the_espnow_header() -> None:
    head = bytes([0x2C, 4, 0x34, 0x12, 0x41, 0x08, 0, 0]) + BROADCAST + A
    text = describe_frame(head + b"abcd")
    assert "SECURITY v2" in text and "magic=0x1234" in text and "sec=1" in text
    assert "bcast=1" in text and f"src={format_mac(A)}" in text
    assert "shorter" in describe_frame(b"\x00")


# --- the radio model ---


def medium(loss: float = 0.0, seed: int = 1, **nodes: int) -> Medium:
    m = Medium(loss=loss, seed=seed)
    for name, channel in nodes.items():
        assert m.join({"a": A, "b": B, "c": C, "d": D}[name], channel)
    return m


def test_unicast_reaches_only_the_destination_and_succeeds() -> None:
    m = medium(a=1, b=1, c=1)
    out = m.transmit(A, Tx(5, B, b"hello"))
    assert [d.receiver for d in out.deliveries] == [B]
    rx = out.deliveries[0].rx
    assert (rx.src, rx.dst, rx.channel, rx.data) == (A, B, 1, b"hello")
    assert out.status == TxStatus(5, B, ESP_NOW_SEND_SUCCESS)


def test_broadcast_reaches_every_other_node_on_the_channel() -> None:
    m = medium(a=1, b=1, c=1, d=6)
    out = m.transmit(A, Tx(1, BROADCAST, b"x"))
    assert sorted(d.receiver for d in out.deliveries) == [B, C]
    assert all(d.rx.dst == BROADCAST for d in out.deliveries)
    assert out.status.status == ESP_NOW_SEND_SUCCESS


def test_broadcast_with_nobody_listening_still_succeeds() -> None:
    out = medium(a=1, b=6).transmit(A, Tx(1, BROADCAST, b"x"))
    assert out.deliveries == () and out.status.status == ESP_NOW_SEND_SUCCESS


@pytest.mark.parametrize("dst", [C, D, A], ids=["absent", "other-channel", "self"])
def test_unicast_without_a_peer_on_the_channel_fails(dst: bytes) -> None:
    out = medium(a=1, b=1, d=6).transmit(A, Tx(9, dst, b"x"))
    assert out.deliveries == () and out.status == TxStatus(9, dst, ESP_NOW_SEND_FAIL)


@pytest.mark.parametrize("size", [0, 251, 1000])
@pytest.mark.parametrize("dst", [B, BROADCAST])
def test_empty_or_oversized_frames_fail_and_are_not_delivered(size: int, dst: bytes) -> None:
    out = medium(a=1, b=1).transmit(A, Tx(1, dst, b"x" * size))
    assert out.deliveries == () and out.status.status == ESP_NOW_SEND_FAIL


def test_250_bytes_is_allowed() -> None:
    out = medium(a=1, b=1).transmit(A, Tx(1, B, b"x" * 250))
    assert out.ok and len(out.deliveries[0].rx.data) == 250


def test_set_channel_moves_a_node() -> None:
    m = medium(a=1, b=1)
    m.set_channel(B, 6)
    assert not m.transmit(A, Tx(1, B, b"x")).ok
    m.set_channel(A, 6)
    assert m.transmit(A, Tx(1, B, b"x")).ok


def test_duplicate_mac_and_unknown_nodes() -> None:
    m = medium(a=1)
    assert not m.join(A, 6)
    assert m.channel_of(A) == 1
    with pytest.raises(MediumError, match="not joined"):
        m.transmit(B, Tx(1, A, b"x"))
    m.leave(A)
    assert m.join(A, 6)


def test_rssi_is_per_pair_seeded_and_in_range() -> None:
    m1, m2, m3 = Medium(seed=1), Medium(seed=1), Medium(seed=2)
    values = [m1.rssi(mac(i), mac(j)) for i in range(20) for j in range(20) if i != j]
    assert all(RSSI_MIN <= v <= RSSI_MAX for v in values)
    assert len(set(values)) > 10
    assert m1.rssi(A, B) == m2.rssi(A, B) == m1.rssi(B, A)
    assert [m1.rssi(mac(i), D) for i in range(8)] != [m3.rssi(mac(i), D) for i in range(8)]
    out = medium(a=1, b=1).transmit(A, Tx(1, B, b"x"))
    assert out.deliveries[0].rx.rssi == Medium(seed=1).rssi(A, B)


def _loss_run(seed: int, loss: float, frames: int = 2000) -> list[tuple[bytes, ...]]:
    m = medium(loss=loss, seed=seed, a=1, b=1, c=1, d=1)
    return [m.transmit(A, Tx(i, BROADCAST, b"x")).lost for i in range(frames)]


def test_loss_is_reproducible_with_a_seed_and_matches_p() -> None:
    run = _loss_run(7, 0.2)
    assert run == _loss_run(7, 0.2)
    assert run != _loss_run(8, 0.2)
    rate = sum(len(lost) for lost in run) / (3 * len(run))
    assert 0.17 < rate < 0.23
    per_receiver = {r: sum(r in lost for lost in run) / len(run) for r in (B, C, D)}
    assert all(0.15 < p < 0.25 for p in per_receiver.values())  # independent per receiver


def test_lost_unicast_reports_fail_and_lost_broadcast_success() -> None:
    m = Medium(loss=1.0, seed=0)
    m.join(A, 1)
    m.join(B, 1)
    uni = m.transmit(A, Tx(1, B, b"x"))
    assert uni.deliveries == () and uni.status.status == ESP_NOW_SEND_FAIL and uni.lost == (B,)
    bc = m.transmit(A, Tx(2, BROADCAST, b"x"))
    assert bc.deliveries == () and bc.status.status == ESP_NOW_SEND_SUCCESS


def test_injected_rng_drives_loss() -> None:
    m = Medium(loss=0.5, rng=random.Random(3))
    m.join(A, 1)
    m.join(B, 1)
    expected = [random.Random(3).random() < 0.5]
    assert [not m.transmit(A, Tx(1, B, b"x")).ok] == expected


def test_bad_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Medium(loss=1.5)


# --- pcap ---


def test_pcap_holds_espnow_vendor_action_frames(tmp_path: Path) -> None:
    frame = action_frame(A, B, b"payload", seq=3)
    assert frame[0:2] == b"\xd0\x00" and frame[4:10] == B and frame[10:16] == A
    assert frame[16:22] == BROADCAST
    body = frame[24:]
    assert body[0] == 127 and body[1:4] == b"\x18\xfe\x34"
    element = body[8:]
    assert element[0] == 221 and element[1] == 5 + 7 and element[2:7] == b"\x18\xfe\x34\x04\x01"
    assert element[7:] == b"payload"
    with pytest.raises(ValueError):
        action_frame(A, B, b"x" * 251, 0)

    path = tmp_path / "air.pcap"
    with PcapWriter(path) as writer:
        writer.write(1.5, A, B, b"one")
        writer.write(2.25, A, BROADCAST, b"two")
    raw = path.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, LINKTYPE_IEEE802_11)
    sec, usec, incl, orig = struct.unpack_from("<IIII", raw, 24)
    assert (sec, usec, incl, orig) == (1, 500000, len(action_frame(A, B, b"one", 0)), incl)
    assert raw.endswith(b"two")


# --- the socket server, with fake nodes ---


class FakeNode:
    """A minimal air client, as the Linux port is."""

    def __init__(self, path: Path, node_mac: bytes, channel: int = 1, hello: bool = True) -> None:
        self.mac = node_mac
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(str(path))
        if hello:
            self.sock.send(Hello(node_mac, channel).encode())
            self.welcome = self.recv()

    def send(self, msg: Tx | SetChannel | Hello) -> None:
        self.sock.settimeout(5.0)  # recv() may have left a tiny timeout behind
        self.sock.send(msg.encode())

    def tx(self, seq: int, dst: bytes, data: bytes) -> None:
        self.send(Tx(seq, dst, data))

    def recv(self, timeout: float = 2.0) -> AirMessage:
        self.sock.settimeout(timeout)
        packet = self.sock.recv(4096)
        if not packet:
            raise EOFError("air closed the connection")
        return decode_air_message(packet)

    def recv_all(self, timeout: float = 0.2) -> list[AirMessage]:
        out: list[AirMessage] = []
        while True:
            try:
                out.append(self.recv(timeout))
            except (TimeoutError, EOFError):
                return out

    def status(self) -> TxStatus:
        msg = self.recv()
        assert isinstance(msg, TxStatus), msg
        return msg

    def close(self) -> None:
        self.sock.close()


class RunningAir:
    def __init__(self, path: Path, medium: Medium, latency: float = 0.0) -> None:
        self.path = path
        self.lines: list[str] = []
        self.server = AirServer(path, medium, latency=latency, say=self.lines.append)
        self.server.bind()
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.nodes: list[FakeNode] = []

    def node(self, node_mac: bytes, channel: int = 1) -> FakeNode:
        node = FakeNode(self.path, node_mac, channel)
        self.nodes.append(node)
        return node

    def wait_line(self, text: str, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no air line with {text!r} in {self.lines}"
            time.sleep(0.01)

    def stop(self) -> None:
        for node in self.nodes:
            node.close()
        self.server.stop()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def air(tmp_path: Path) -> Iterator[RunningAir]:
    running = RunningAir(tmp_path / "air.sock", Medium(seed=1))
    yield running
    running.stop()


def test_socket_unicast_broadcast_and_status(air: RunningAir) -> None:
    a, b, c = air.node(A), air.node(B), air.node(C)
    assert a.welcome == Welcome(WELCOME_OK)
    a.tx(1, B, b"to b")
    assert b.recv() == Rx(A, B, 1, Medium(seed=1).rssi(A, B), b"to b")
    assert a.status() == TxStatus(1, B, ESP_NOW_SEND_SUCCESS)
    assert c.recv_all() == []

    b.tx(2, BROADCAST, b"all")
    got = [a.recv(), c.recv()]
    assert all(isinstance(m, Rx) and m.src == B and m.data == b"all" for m in got)
    assert b.status() == TxStatus(2, BROADCAST, ESP_NOW_SEND_SUCCESS)
    assert b.recv_all() == []  # a sender never hears itself

    a.tx(3, D, b"nobody")
    assert a.status() == TxStatus(3, D, ESP_NOW_SEND_FAIL)


def test_socket_channels_and_set_channel(air: RunningAir) -> None:
    a, b, c = air.node(A, 1), air.node(B, 1), air.node(C, 6)
    a.tx(1, BROADCAST, b"ch1")
    assert isinstance(b.recv(), Rx)
    assert a.status().status == ESP_NOW_SEND_SUCCESS
    assert c.recv_all() == []
    a.tx(2, C, b"x")
    assert a.status().status == ESP_NOW_SEND_FAIL
    a.send(SetChannel(6))
    a.recv_all()
    a.tx(3, C, b"x")
    assert c.recv() == Rx(A, C, 6, Medium(seed=1).rssi(A, C), b"x")
    assert a.status().status == ESP_NOW_SEND_SUCCESS


@pytest.mark.parametrize("size", [0, 251])
def test_socket_size_limits(air: RunningAir, size: int) -> None:
    a, b = air.node(A), air.node(B)
    a.tx(1, B, b"x" * size)
    assert a.status() == TxStatus(1, B, ESP_NOW_SEND_FAIL)
    assert b.recv_all() == []
    a.tx(2, B, b"x" * 250)
    assert len(b.recv().data) == 250  # type: ignore[union-attr]


def test_socket_duplicate_mac_is_rejected(air: RunningAir) -> None:
    air.node(A)
    dup = FakeNode(air.path, A)
    assert dup.welcome == Welcome(WELCOME_MAC_IN_USE)
    with pytest.raises(EOFError):
        dup.recv(1)
    air.wait_line(f"node {format_mac(A)} rejected: MAC already in use")


def test_socket_node_leave_is_announced_and_frees_the_mac(air: RunningAir) -> None:
    a, b = air.node(A), air.node(B)
    air.wait_line(f"node {format_mac(B)} joined on channel 1")
    b.close()
    air.wait_line(f"node {format_mac(B)} left")
    a.tx(1, B, b"x")
    assert a.status().status == ESP_NOW_SEND_FAIL
    again = air.node(B)
    assert again.welcome == Welcome(WELCOME_OK)


def test_socket_tx_before_hello_disconnects(air: RunningAir) -> None:
    rogue = FakeNode(air.path, A, hello=False)
    rogue.tx(1, BROADCAST, b"x")
    with pytest.raises(EOFError):
        rogue.recv(1)
    rogue.close()
    assert air.node(A).welcome == Welcome(WELCOME_OK)


def test_socket_garbage_is_ignored(air: RunningAir) -> None:
    a, b = air.node(A), air.node(B)
    a.sock.send(b"\x7f garbage")
    a.sock.send(b"\x02\x01")  # truncated TX
    a.tx(1, B, b"still fine")
    assert b.recv().data == b"still fine"  # type: ignore[union-attr]


def test_socket_loss_reproducible_with_seed(tmp_path: Path) -> None:
    def run(seed: int) -> list[int]:
        air = RunningAir(tmp_path / f"loss{seed}.sock", Medium(loss=0.3, seed=seed))
        try:
            a, b = air.node(A), air.node(B)
            statuses = []
            for i in range(300):
                a.tx(i, B, b"x")
                statuses.append(a.status().status)
            received = b.recv_all()
            assert len(received) == statuses.count(ESP_NOW_SEND_SUCCESS)
            return statuses
        finally:
            air.stop()

    first = run(5)
    assert first == run(5)
    assert 0.2 < first.count(ESP_NOW_SEND_FAIL) / len(first) < 0.4


def test_socket_latency_delays_delivery(tmp_path: Path) -> None:
    air = RunningAir(tmp_path / "lat.sock", Medium(), latency=0.15)
    try:
        a, b = air.node(A), air.node(B)
        start = time.monotonic()
        a.tx(1, B, b"x")
        assert isinstance(b.recv(), Rx)
        assert a.status().status == ESP_NOW_SEND_SUCCESS
        assert time.monotonic() - start >= 0.14
    finally:
        air.stop()


def test_socket_fifty_nodes_broadcast(air: RunningAir) -> None:
    nodes = [air.node(bytes([2, 0, 0, 0, 1, i])) for i in range(50)]
    for i, node in enumerate(nodes):
        node.tx(i, BROADCAST, bytes([i]))
    for node in nodes:
        msgs = [node.recv() for _ in range(50)]  # 49 RX and one TX_STATUS
        assert node.recv_all(0.01) == []
        rx = sorted(m.data[0] for m in msgs if isinstance(m, Rx))
        assert rx == sorted(set(range(50)) - {nodes.index(node)})
        assert sum(isinstance(m, TxStatus) for m in msgs) == 1


def test_socket_slow_reader_does_not_block_others(air: RunningAir) -> None:
    a, b, c = air.node(A), air.node(B), air.node(C)  # b never reads
    for i in range(2000):
        a.tx(i, BROADCAST, b"y" * 200)
        if i % 100 == 0:
            a.recv_all(0.001)
    a.tx(99999, C, b"last")
    deadline = time.monotonic() + 5
    while True:
        msg = c.recv()
        if isinstance(msg, Rx) and msg.data == b"last":
            break
        assert time.monotonic() < deadline
    del b


# --- the command ---


def _air_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "espnow_sec.air", *args]


def test_command_listens_stops_on_sigterm_and_removes_socket(tmp_path: Path) -> None:
    path = tmp_path / "cmd.sock"
    pcap = tmp_path / "cmd.pcap"
    proc = subprocess.Popen(
        _air_cmd("--socket", str(path), "--pcap", str(pcap), "--seed", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"air: listening on {path}"
        a, b = FakeNode(path, A), FakeNode(path, B)
        assert proc.stdout.readline().strip() == f"air: node {format_mac(A)} joined on channel 1"
        assert proc.stdout.readline().strip() == f"air: node {format_mac(B)} joined on channel 1"
        a.tx(1, B, b"frame")
        assert b.recv().data == b"frame"  # type: ignore[union-attr]
        a.close()
        assert proc.stdout.readline().strip() == f"air: node {format_mac(A)} left"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after 1 frames" in out
    assert not path.exists()
    assert len(pcap.read_bytes()) > 24


def test_command_refuses_a_live_socket_and_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    air = RunningAir(path, Medium())
    try:
        res = subprocess.run(_air_cmd("--socket", str(path)), capture_output=True, text=True)
        assert res.returncode == 2 and "already listening" in res.stderr
    finally:
        air.stop()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(str(path))
    stale.close()
    proc = subprocess.Popen(_air_cmd("--socket", str(path)), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_command_rejects_bad_arguments(tmp_path: Path) -> None:
    res = subprocess.run(
        _air_cmd("--socket", str(tmp_path / "s"), "--loss", "2"), capture_output=True, text=True
    )
    assert res.returncode == 2 and "between 0 and 1" in res.stderr


def test_pcap_opens_in_tshark(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (apt-get install tshark) - optional check")
    path = tmp_path / "t.pcap"
    with PcapWriter(path) as writer:
        writer.write(1.0, A, BROADCAST, b"\x2c\x04hello")
        writer.write(1.1, B, A, b"x" * 250)
    res = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "wlan.sa", "-e", "wlan.da"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert rows == [[format_mac(A), "ff:ff:ff:ff:ff:ff"], [format_mac(B), format_mac(A)]]

"""``espnow-sec-air``: the simulated ESP-NOW radio as one process (docs/air.md).

A selectors loop over one SOCK_SEQPACKET Unix socket. It only moves packets: every delivery
decision is made by ``Medium`` (medium.py), every byte layout by wire.py.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import itertools
import logging
import os
import selectors
import signal
import socket
import stat
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from espnow_sec.air.medium import Medium, TxOutcome
from espnow_sec.air.pcap import PcapWriter
from espnow_sec.air.wire import (
    BROADCAST,
    ESP_NOW_MAX_DATA_LEN,
    ESP_NOW_SEND_FAIL,
    WELCOME_MAC_IN_USE,
    WELCOME_OK,
    Hello,
    ProtocolError,
    SetChannel,
    Tx,
    TxStatus,
    Welcome,
    decode_node_message,
    describe_frame,
    format_mac,
)

log = logging.getLogger("espnow_sec.air")

RECV_SIZE = 65536  # far above any legal packet; a larger one is a broken client anyway
MAX_QUEUED_PACKETS = 4096  # per node; beyond it the node is not reading and frames are dropped
READS_PER_WAKE = 64  # fairness between chatty and quiet nodes
MAX_UNIX_PATH = 107


def _say(text: str) -> None:
    print(f"air: {text}", flush=True)


class _Conn:
    """One connected node: its socket, MAC once HELLO arrived, and packets not yet sent."""

    __slots__ = ("sock", "mac", "outq", "name")

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.mac: bytes | None = None
        self.outq: deque[bytes] = deque()
        self.name = f"connection #{number}"

    def label(self) -> str:
        return format_mac(self.mac) if self.mac is not None else self.name


class AirServer:
    """Accepts nodes on ``path`` and relays their frames through ``medium``."""

    def __init__(
        self,
        path: str | Path,
        medium: Medium,
        *,
        latency: float = 0.0,
        pcap: PcapWriter | None = None,
        say: Callable[[str], None] = _say,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self.path = Path(path)
        self.medium = medium
        self.latency = latency
        self.pcap = pcap
        self._say = say
        self._sel = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._by_mac: dict[bytes, _Conn] = {}
        self._conns: dict[int, _Conn] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._numbers = itertools.count(1)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self.frames = 0

    # --- lifecycle ---

    def bind(self) -> None:
        """Create and listen on the socket; replaces a stale socket file, refuses a live one."""
        path = str(self.path)
        if len(os.fsencode(path)) > MAX_UNIX_PATH:
            raise OSError(
                errno.ENAMETOOLONG,
                f"socket path is {len(os.fsencode(path))} bytes, Unix sockets allow "
                f"{MAX_UNIX_PATH}: choose a shorter --socket path",
            )
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise FileExistsError(f"{path} exists and is not a socket: choose another --socket")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale: nobody is listening
            else:
                raise FileExistsError(f"another air is already listening on {path}")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(path)
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._sel.register(listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)

    def stop(self) -> None:
        """Ask ``serve`` to return; safe from signal handlers and other threads."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def close(self) -> None:
        """Disconnect every node, close the listener and remove the socket file."""
        for conn in list(self._conns.values()):
            self._drop(conn, announce=False)
        if self._listener is not None:
            self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(self._wake_r)
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()

    def serve(self) -> None:
        """Run until ``stop``."""
        if self._listener is None:
            raise RuntimeError("call bind() before serve()")
        while not self._stopping:
            timeout = None
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            for key, events in self._sel.select(timeout):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                else:
                    conn: _Conn = key.data
                    if events & selectors.EVENT_WRITE:
                        self._flush(conn)
                    if events & selectors.EVENT_READ and conn.sock.fileno() in self._conns:
                        self._read(conn)
            self._run_timers()

    # --- sockets ---

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            conn = _Conn(sock, next(self._numbers))
            self._conns[sock.fileno()] = conn
            self._sel.register(sock, selectors.EVENT_READ, conn)
            log.debug("%s connected", conn.name)

    def _read(self, conn: _Conn) -> None:
        for _ in range(READS_PER_WAKE):
            try:
                packet = conn.sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("%s: recv failed: %s", conn.label(), exc)
                self._drop(conn)
                return
            if not packet:  # EOF: the node went away
                self._drop(conn)
                return
            self._handle(conn, packet)
            if conn.sock.fileno() not in self._conns:
                return

    def _send(self, conn: _Conn, packet: bytes) -> bool:
        """Queue one packet for ``conn``; False if it had to be dropped."""
        if conn.outq:
            if len(conn.outq) >= MAX_QUEUED_PACKETS:
                log.warning("%s is not reading: dropped a packet", conn.label())
                return False
            conn.outq.append(packet)
            return True
        try:
            conn.sock.send(packet)
        except (BlockingIOError, InterruptedError):
            conn.outq.append(packet)
            self._sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        except OSError as exc:
            log.debug("%s: send failed: %s", conn.label(), exc)
            self._drop(conn)
            return False
        return True

    def _flush(self, conn: _Conn) -> None:
        while conn.outq:
            try:
                conn.sock.send(conn.outq[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("%s: send failed: %s", conn.label(), exc)
                self._drop(conn)
                return
            conn.outq.popleft()
        self._sel.modify(conn.sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: _Conn, *, announce: bool = True) -> None:
        fd = conn.sock.fileno()
        if fd < 0 or fd not in self._conns:
            return
        del self._conns[fd]
        self._sel.unregister(conn.sock)
        conn.sock.close()
        if conn.mac is not None and self._by_mac.get(conn.mac) is conn:
            del self._by_mac[conn.mac]
            self.medium.leave(conn.mac)
            if announce:
                self._say(f"node {format_mac(conn.mac)} left")
        else:
            log.debug("%s closed", conn.label())

    # --- protocol ---

    def _handle(self, conn: _Conn, packet: bytes) -> None:
        try:
            msg = decode_node_message(packet)
        except ProtocolError as exc:
            log.warning("%s sent a bad packet, ignored: %s", conn.label(), exc)
            return
        if isinstance(msg, Hello):
            self._hello(conn, msg)
        elif conn.mac is None:
            log.warning(
                "%s sent %s before HELLO: disconnected (HELLO must come first, docs/air.md)",
                conn.name,
                type(msg).__name__,
            )
            self._drop(conn)
        elif isinstance(msg, Tx):
            self._tx(conn, msg)
        elif isinstance(msg, SetChannel):
            self.medium.set_channel(conn.mac, msg.channel)
            log.info("node %s moved to channel %d", format_mac(conn.mac), msg.channel)

    def _hello(self, conn: _Conn, hello: Hello) -> None:
        if conn.mac is not None:
            log.warning("%s sent a second HELLO: ignored", conn.label())
            return
        mac = format_mac(hello.mac)
        if hello.mac == BROADCAST or not self.medium.join(hello.mac, hello.channel):
            why = "broadcast address" if hello.mac == BROADCAST else "MAC already in use"
            self._say(f"node {mac} rejected: {why}")
            self._send(conn, Welcome(WELCOME_MAC_IN_USE).encode())
            self._drop(conn, announce=False)
            return
        conn.mac = hello.mac
        self._by_mac[hello.mac] = conn
        self._send(conn, Welcome(WELCOME_OK).encode())
        self._say(f"node {mac} joined on channel {hello.channel}")

    def _tx(self, conn: _Conn, tx: Tx) -> None:
        assert conn.mac is not None
        src = conn.mac
        self.frames += 1
        outcome = self.medium.transmit(src, tx)
        if self.pcap is not None and 0 < len(tx.data) <= ESP_NOW_MAX_DATA_LEN:
            self.pcap.write(time.time(), src, tx.dst, tx.data)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s -> %s seq %d %s: %d delivered, %d lost, status %s%s",
                format_mac(src),
                format_mac(tx.dst),
                tx.seq,
                describe_frame(tx.data),
                len(outcome.deliveries),
                len(outcome.lost),
                "SUCCESS" if outcome.ok else "FAIL",
                f" ({outcome.reason})" if outcome.reason else "",
            )
        if self.latency > 0:
            due = time.monotonic() + self.latency
            heapq.heappush(
                self._timers, (due, next(self._counter), lambda: self._complete(src, conn, outcome))
            )
        else:
            self._complete(src, conn, outcome)

    def _complete(self, src: bytes, sender: _Conn, outcome: TxOutcome) -> None:
        status = outcome.status
        unicast = status.dst != BROADCAST
        for delivery in outcome.deliveries:
            receiver = self._by_mac.get(delivery.receiver)
            delivered = receiver is not None and self._send(receiver, delivery.rx.encode())
            if unicast and not delivered:
                status = TxStatus(status.seq, status.dst, ESP_NOW_SEND_FAIL)
        if self._by_mac.get(src) is sender:
            self._send(sender, status.encode())

    def _run_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()


# --- command line ---


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="espnow-sec-air",
        description="Simulated ESP-NOW radio for host nodes (protocol: docs/air.md).",
    )
    parser.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    parser.add_argument(
        "--loss", type=_probability, default=0.0, help="drop probability per delivery (0..1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the loss and RSSI models")
    parser.add_argument(
        "--latency-ms", type=_non_negative, default=0.0, help="delay of every delivery"
    )
    parser.add_argument("--pcap", help="write every frame to this pcap file (802.11, linktype 105)")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="stderr diagnostics; debug logs every frame",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="air: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    pcap: PcapWriter | None = None
    try:
        if args.pcap:
            pcap = PcapWriter(args.pcap)
        server = AirServer(
            args.socket,
            Medium(loss=args.loss, seed=args.seed),
            latency=args.latency_ms / 1000.0,
            pcap=pcap,
        )
        server.bind()
    except OSError as exc:
        print(f"espnow-sec-air: cannot listen on {args.socket}: {exc}", file=sys.stderr)
        if pcap is not None:
            pcap.close()
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _say(f"listening on {args.socket}")
    try:
        server.serve()
    finally:
        server.close()
        if pcap is not None:
            pcap.close()
    extra = f", pcap {pcap.path} ({pcap.frames} frames)" if pcap is not None else ""
    _say(f"stopped after {server.frames} frames{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

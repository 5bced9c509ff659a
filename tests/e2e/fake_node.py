"""A stand-in for the host node binary, speaking docs/air.md and printing the app_main log lines.

Its "handshake" is a toy (the PoP travels in clear): it exists to test the runner and the air
end to end without the C build. Never use it for anything security related.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

from espnow_sec.air.wire import (
    BROADCAST,
    Hello,
    Rx,
    Tx,
    TxStatus,
    Welcome,
    decode_air_message,
    format_mac,
    parse_mac,
)

T0 = time.monotonic()
LOCK = threading.Lock()


def log(level: str, text: str) -> None:
    with LOCK:
        ms = int((time.monotonic() - T0) * 1000)
        sys.stdout.write(f"{level} ({ms}) app_main: {text}\n")
        sys.stdout.flush()


def xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % len(key)] for i, b in enumerate(data))


class Node:
    def __init__(self) -> None:
        air = os.environ.get("ESPNOW_AIR")
        if not air:
            sys.stderr.write("ESPNOW_AIR is not set\n")
            sys.exit(2)
        self.mac = parse_mac(os.environ["ESPNOW_MAC"])
        self.role = os.environ["ESPNOW_ROLE"]
        self.pop = os.environ["ESPNOW_POP"]
        self.channel = int(os.environ["ESPNOW_CHANNEL"])
        self.store = Path(os.environ["ESPNOW_STORE_DIR"])
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(air)
        self.sock.send(Hello(self.mac, self.channel).encode())
        if decode_air_message(self.sock.recv(64)) != Welcome(0):
            sys.stderr.write("MAC already in use\n")
            sys.exit(3)
        keyfile = self.store / "app_key"
        self.key: bytes | None = keyfile.read_bytes() if keyfile.exists() else None
        self.seq = 0
        self.count = 0
        self.found: set[bytes] = set()
        self.acked: dict[bytes, bool] = {}
        state = "secured" if self.key else "not secured"
        log("I", f"ESP-NOW {self.role} ready, mac {format_mac(self.mac)}, "
            f"channel {self.channel}, {state}")  # fmt: skip

    def tx(self, dst: bytes, data: bytes) -> None:
        self.seq += 1
        self.sock.send(Tx(self.seq, dst, data).encode())

    def on_rx(self, rx: Rx) -> None:
        peer = format_mac(rx.src)
        if rx.data == b"SCAN" and self.role == "responder":
            self.tx(rx.src, b"INFO")
        elif rx.data == b"INFO" and self.role == "initiator":
            self.found.add(rx.src)
        elif rx.data.startswith(b"KEY:") and self.role == "responder":
            _, pop, key = rx.data.split(b":", 2)
            if pop.decode() != self.pop:
                log("W", f"handshake with {peer} failed: PoP mismatch (proof of possession)")
                self.tx(rx.src, b"KEYBAD")
                return
            if self.key is None:
                self.key = key
                self.store.mkdir(parents=True, exist_ok=True)
                (self.store / "app_key").write_bytes(key)
                log("I", "Get APP key")
            self.tx(rx.src, b"KEYOK")
        elif rx.data in (b"KEYOK", b"KEYBAD") and self.role == "initiator":
            self.acked[rx.src] = rx.data == b"KEYOK"
            if rx.data == b"KEYBAD":
                log("W", f"handshake with {peer} failed: responder rejected the PoP")
        elif rx.data.startswith(b"DATA:"):
            body = rx.data[5:]
            self.count += 1
            fields = f"{self.count} [{peer}][{rx.channel}][{rx.rssi}][{len(body)}]"
            if self.key is None:
                log("W", f"espnow_recv plaintext (not authenticated), {fields}: {body!r}")
            else:
                log("I", f"espnow_recv, {fields}: {xor(body, self.key).decode()}")

    def reader(self) -> None:
        while True:
            packet = self.sock.recv(4096)
            if not packet:
                os._exit(4)
            msg = decode_air_message(packet)
            if isinstance(msg, Rx):
                self.on_rx(msg)
            elif isinstance(msg, TxStatus):
                pass

    def provision(self) -> None:
        start = time.monotonic()
        for _ in range(5):
            self.tx(BROADCAST, b"SCAN")
            time.sleep(0.2)
        scan_ms = int((time.monotonic() - start) * 1000)
        log("W", f"espnow wait security num: {len(self.found)}")
        self.key = b"k3y-" + os.urandom(12).hex().encode()
        for _ in range(8):
            for peer in sorted(self.found - set(self.acked)):
                self.tx(peer, b"KEY:" + self.pop.encode() + b":" + self.key)
            time.sleep(0.2)
        spend = int((time.monotonic() - start) * 1000)
        ok = sum(self.acked.values())
        log("I", f"App key is sent to the device to complete, Spend time: {spend}ms, "
            f"Scan time: {scan_ms}ms")  # fmt: skip
        log("I", f"Devices security completed, successed_num: {ok}, "
            f"unfinished_num: {len(self.found) - ok}")  # fmt: skip

    def uart(self) -> None:
        for line in sys.stdin:
            text = line.rstrip("\n").encode()
            if len(text) > 200:
                log("E", f"espnow_send failed: {len(text)} bytes is too long")
                continue
            body = xor(text, self.key) if self.key else text
            self.tx(BROADCAST, b"DATA:" + body)
            log("I", f"espnow_send, count: {self.seq}, size: {len(text)}, data: {text.decode()}")
        while True:  # EOF on stdin does not stop a node
            time.sleep(3600)


def main() -> None:
    node = Node()
    threading.Thread(target=node.reader, daemon=True).start()
    threading.Thread(target=node.uart, daemon=True).start()
    if node.role == "initiator":
        node.provision()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()

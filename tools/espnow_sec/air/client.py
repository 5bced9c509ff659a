"""A node's side of the air socket (docs/air.md, "Socket protocol"): connect, HELLO, TX, receive.

Only sockets and the wire codec live here; what a node *does* with the frames (the protocol) is
the caller's business. Used by ``espnow_sec.pynode`` to put the Python reference on the air.
"""

from __future__ import annotations

import select
import socket
from pathlib import Path
from types import TracebackType

from espnow_sec.air.wire import (
    MAC_LEN,
    WELCOME_MAC_IN_USE,
    WELCOME_OK,
    AirMessage,
    Hello,
    SetChannel,
    Tx,
    Welcome,
    decode_air_message,
    format_mac,
)

RECV_SIZE = 4096  # an RX is at most 1 + 14 + 250 bytes (a v2 frame would still fit)
CONNECT_TIMEOUT_S = 5.0


class AirError(OSError):
    """The air refused us, closed the connection, or sent something that is not docs/air.md."""


class AirClient:
    """One node's connection to the air. Not thread safe on its own: callers serialise sends."""

    def __init__(self, path: str | Path, mac: bytes, channel: int = 1) -> None:
        if len(mac) != MAC_LEN:
            raise ValueError(f"MAC must be {MAC_LEN} bytes, got {len(mac)}")
        if not 0 <= channel <= 255:
            raise ValueError(f"channel must fit one byte, got {channel}")
        self.path = Path(path)
        self.mac = bytes(mac)
        self.channel = channel
        self._sock: socket.socket | None = None
        self._seq = 0

    # --- lifecycle ---

    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Connect and say HELLO; AirError unless the air answers WELCOME ok."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.settimeout(timeout)
            sock.connect(str(self.path))
            sock.send(Hello(self.mac, self.channel).encode())
            reply = decode_air_message(sock.recv(RECV_SIZE) or b"")
        except (OSError, ValueError) as exc:
            sock.close()
            raise AirError(f"cannot join the air at {self.path}: {exc}") from exc
        if not isinstance(reply, Welcome) or reply.status != WELCOME_OK:
            sock.close()
            why = "MAC already in use" if reply == Welcome(WELCOME_MAC_IN_USE) else repr(reply)
            raise AirError(f"the air refused {format_mac(self.mac)}: {why}")
        sock.settimeout(None)  # sends block (briefly); receives go through ``recv(timeout)``
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> AirClient:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # --- traffic ---

    def send(self, dst: bytes, data: bytes) -> int:
        """TX one frame body to ``dst``; returns the sequence number its TX_STATUS will carry.

        Frames the air would refuse (empty, over 250 bytes) are still sent: the air answers
        them with ``ESP_NOW_SEND_FAIL``, as ESP-NOW does.
        """
        sock = self._require()
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        sock.send(Tx(self._seq, bytes(dst), bytes(data)).encode())
        return self._seq

    def set_channel(self, channel: int) -> None:
        self._require().send(SetChannel(channel).encode())
        self.channel = channel

    def recv(self, timeout: float | None) -> AirMessage | None:
        """The next message from the air, or None after ``timeout`` seconds (None: wait)."""
        sock = self._require()
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return None
        packet = sock.recv(RECV_SIZE)
        if not packet:
            raise AirError("the air closed the connection")
        try:
            return decode_air_message(packet)
        except ValueError as exc:
            raise AirError(f"unreadable packet from the air: {exc}") from exc

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise AirError("not connected to the air: call connect() first")
        return self._sock

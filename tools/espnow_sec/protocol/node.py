"""What the Initiator and Responder machines share: config, outputs, events, data path.

The machines follow DESIGN.md §2 ("frames and clock ticks in, frames and events out"): they own
no socket, thread or clock. A driver (a test, the in-process simulator, or a bridge to the
simulated radio) calls

* ``on_frame(src, dst, frame_bytes) -> list[Outgoing]`` for every received frame body,
* ``tick(now_ms) -> list[Outgoing]`` whenever time passes (at least every few ms while busy),
* ``take_events()`` to collect what happened.

All randomness (ephemeral keys, device randoms, magics, CCM nonces) comes from the ``rng``
callable given to the constructor: ``rng(n)`` returns ``n`` bytes. Tests pass a seeded one.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .data import MAX_PLAINTEXT_V1, protect, unprotect
from .errors import ProtocolError
from .frame import BROADCAST_MAC, DataType, Frame, Header
from .records import Group, GroupOp

Rng = Callable[[int], bytes]


def system_rng(n: int) -> bytes:
    """The default RNG: the operating system's CSPRNG."""
    return os.urandom(n)


@dataclass(frozen=True)
class Outgoing:
    """One frame to put on the air. ``dst`` is the radio destination (unicast or broadcast)."""

    dst: bytes
    frame: bytes


@dataclass(frozen=True)
class ScanDone:
    found: int
    scan_ms: int


@dataclass(frozen=True)
class PeerSecured:
    """Initiator: ``mac`` echoed our app key. Responder: we installed the key ``mac`` sent."""

    mac: bytes


@dataclass(frozen=True)
class PeerFailed:
    mac: bytes
    reason: str  # a ProtocolError reason class, or "timeout"


@dataclass(frozen=True)
class KeyInstalled:
    """Responder: store this app key (docs/keystore.md) before trusting a reboot to keep it."""

    app_key: bytes
    provisioner_mac: bytes


@dataclass(frozen=True)
class ProvisionDone:
    succeeded: tuple[bytes, ...]
    unfinished: tuple[bytes, ...]
    spend_ms: int
    scan_ms: int


@dataclass(frozen=True)
class DataReceived:
    src: bytes
    data: bytes
    encrypted: bool  # True only if the CCM tag verified under our app key


Event = ScanDone | PeerSecured | PeerFailed | KeyInstalled | ProvisionDone | DataReceived


@dataclass(frozen=True)
class NodeConfig:
    """Limits and timeouts; the defaults are the component's Kconfig defaults."""

    mac: bytes
    pop: bytes = b"espnow_pop"
    channel: int = 1
    scan_duration_ms: int = 1000
    scan_interval_ms: int = 250
    retry_max: int = 6
    retry_base_ms: int = 150
    retry_cap_ms: int = 1200
    max_responders: int = 32
    max_handshakes: int = 16
    responder_sessions: int = 2
    dedupe_size: int = 32

    def __post_init__(self) -> None:
        if len(self.mac) != 6:
            raise ValueError("NodeConfig.mac must be 6 bytes")


@dataclass
class _Dedupe:
    """Recently seen (src, type, magic): drop repeated copies of one transmission."""

    size: int
    seen: deque[tuple[bytes, int, int]] = field(default_factory=deque)

    def check_and_add(self, key: tuple[bytes, int, int]) -> bool:
        if key in self.seen:
            return False
        self.seen.append(key)
        while len(self.seen) > self.size:
            self.seen.popleft()
        return True


class Node:
    """Base of both roles: clock, RNG, events, statistics, frame intake and the data path."""

    def __init__(self, config: NodeConfig, rng: Rng = system_rng, now_ms: int = 0) -> None:
        self.config = config
        self.rng = rng
        self.now_ms = now_ms
        self.app_key: bytes | None = None
        self.groups: set[bytes] = set()
        self.stats: Counter[str] = Counter()
        self._events: list[Event] = []
        self._dedupe = _Dedupe(config.dedupe_size)

    # -- driver interface -------------------------------------------------------------------
    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def tick(self, now_ms: int) -> list[Outgoing]:
        if now_ms < self.now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self.now_ms}")
        self.now_ms = now_ms
        return self._on_tick()

    def on_frame(
        self, src: bytes, dst: bytes, frame: bytes, now_ms: int | None = None
    ) -> list[Outgoing]:
        """Feed one received frame body. ``src``/``dst`` are the radio addresses."""
        if now_ms is not None:
            self.now_ms = max(self.now_ms, now_ms)
        try:
            parsed = Frame.decode(frame)
        except ProtocolError as exc:
            self.stats[f"rx_{exc.reason}"] += 1
            return []
        h = parsed.header
        if not self._addressed_to_me(h):
            self.stats["rx_not_for_me"] += 1
            return []
        if not self._dedupe.check_and_add((h.src_addr, h.type, h.magic)):
            self.stats["rx_duplicate"] += 1
            return []
        if h.type == DataType.GROUP:
            self._on_group(parsed)
            return []
        if h.type in (DataType.SECURITY, DataType.SECURITY_STATUS):
            try:
                return self._on_security(parsed)
            except ProtocolError as exc:
                self.stats[f"rx_{exc.reason}"] += 1
                return []
        if h.type == DataType.DATA:
            self._on_data(parsed)
            return []
        self.stats["rx_ignored_type"] += 1
        return []

    def send_data(
        self, payload: bytes, dst: bytes = BROADCAST_MAC, encrypt: bool = True
    ) -> list[Outgoing]:
        """Build a DATA frame (AES-CCM under the app key unless ``encrypt`` is False)."""
        # retransmit_count says how often the sender transmits the frame (§2.1). Upstream's
        # example app repeats data 5 times; this node, like the C node, sends it once.
        header = self._header(
            DataType.DATA, dst, broadcast=dst == BROADCAST_MAC, retransmit_count=1
        )
        if encrypt:
            if self.app_key is None:
                raise ValueError(
                    "no app key yet: provision this node first (or send with encrypt=False)"
                )
            frame = protect(self.app_key, self.rng(8), payload, header, MAX_PLAINTEXT_V1)
        else:
            frame = Frame.build(header, payload)
        return [Outgoing(dst, frame.encode())]

    # -- helpers for subclasses ---------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _magic(self) -> int:
        while True:
            magic = int.from_bytes(self.rng(2), "little")
            if magic:
                return magic

    def _header(self, type_: int, dst: bytes, **flags: object) -> Header:
        return Header(
            type=type_,
            magic=self._magic(),
            channel=self.config.channel,
            dest_addr=dst,
            src_addr=self.config.mac,
            **flags,
        )  # type: ignore[arg-type]

    def _addressed_to_me(self, h: Header) -> bool:
        if h.group:
            return h.dest_addr in self.groups
        return h.dest_addr in (BROADCAST_MAC, self.config.mac)

    def _on_group(self, frame: Frame) -> None:
        try:
            group = Group.decode(frame.payload)
        except ProtocolError as exc:
            self.stats[f"rx_{exc.reason}"] += 1
            return
        if self.config.mac in group.macs:
            if group.op == GroupOp.ADD:
                self.groups.add(group.group_id)
            else:
                self.groups.discard(group.group_id)

    def _on_data(self, frame: Frame) -> None:
        src = frame.header.src_addr
        if frame.header.security:
            if self.app_key is None:
                self.stats["rx_data_no_key"] += 1
                return
            try:
                plaintext, _ = unprotect(self.app_key, frame)
            except ProtocolError as exc:
                self.stats[f"rx_data_{exc.reason}"] += 1
                return
            self._emit(DataReceived(src, plaintext, True))
        elif self.app_key is not None:
            self.stats["rx_plaintext_rejected"] += 1  # DESIGN.md §3: never pass it off as authentic
        else:
            self._emit(DataReceived(src, frame.payload, False))

    def _on_tick(self) -> list[Outgoing]:
        return []

    def _on_security(self, frame: Frame) -> list[Outgoing]:
        return []

"""The radio model: which node hears which frame, the TX_STATUS, RSSI and loss (docs/air.md).

Pure and deterministic: no sockets, no clock. Randomness comes from one ``random.Random``
seeded with ``--seed`` (or injected), so the same sequence of calls gives the same losses.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from espnow_sec.air.wire import (
    BROADCAST,
    ESP_NOW_MAX_DATA_LEN,
    ESP_NOW_SEND_FAIL,
    ESP_NOW_SEND_SUCCESS,
    Rx,
    Tx,
    TxStatus,
    format_mac,
)

RSSI_MIN = -90
RSSI_MAX = -30


class MediumError(ValueError):
    """An operation on a node the medium does not know (a bug in the caller)."""


@dataclass(frozen=True)
class Delivery:
    """One RX the air hands to ``receiver``."""

    receiver: bytes
    rx: Rx


@dataclass(frozen=True)
class TxOutcome:
    """What one TX causes: the RX deliveries, the sender's TX_STATUS and why."""

    deliveries: tuple[Delivery, ...]
    status: TxStatus
    lost: tuple[bytes, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status.status == ESP_NOW_SEND_SUCCESS


@dataclass
class Medium:
    """All joined nodes and their channels; decides every delivery."""

    loss: float = 0.0
    seed: int = 0
    rng: random.Random | None = None
    _channels: dict[bytes, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be a probability between 0 and 1, got {self.loss}")
        if self.rng is None:
            self.rng = random.Random(self.seed)

    # --- membership ---

    def join(self, mac: bytes, channel: int) -> bool:
        """Add a node; False when that MAC is already on the air (WELCOME status 1)."""
        if mac in self._channels:
            return False
        self._channels[mac] = channel
        return True

    def leave(self, mac: bytes) -> None:
        self._channels.pop(mac, None)

    def set_channel(self, mac: bytes, channel: int) -> None:
        if mac not in self._channels:
            raise MediumError(f"SET_CHANNEL from {format_mac(mac)}, which has not joined")
        self._channels[mac] = channel

    def channel_of(self, mac: bytes) -> int | None:
        return self._channels.get(mac)

    def nodes(self) -> dict[bytes, int]:
        return dict(self._channels)

    # --- the model ---

    def rssi(self, a: bytes, b: bytes) -> int:
        """RSSI of the link a<->b in dBm: fixed per pair and seed, in [RSSI_MIN, RSSI_MAX]."""
        lo, hi = sorted((a, b))
        digest = hashlib.blake2b(
            lo + hi, digest_size=4, key=self.seed.to_bytes(8, "little", signed=True)
        ).digest()
        span = RSSI_MAX - RSSI_MIN + 1
        return RSSI_MIN + int.from_bytes(digest, "little") % span

    def _lost(self) -> bool:
        assert self.rng is not None
        # Draw for every delivery, even at loss 0, so a run's sequence does not depend on P.
        return self.rng.random() < self.loss

    def transmit(self, src: bytes, tx: Tx) -> TxOutcome:
        """Deliver one TX from ``src`` per ESP-NOW semantics (docs/air.md, "Delivery")."""
        channel = self._channels.get(src)
        if channel is None:
            raise MediumError(f"TX from {format_mac(src)}, which has not joined")

        def status(code: int) -> TxStatus:
            return TxStatus(tx.seq, tx.dst, code)

        if not tx.data:
            return TxOutcome((), status(ESP_NOW_SEND_FAIL), reason="empty frame")
        if len(tx.data) > ESP_NOW_MAX_DATA_LEN:
            return TxOutcome(
                (),
                status(ESP_NOW_SEND_FAIL),
                reason=f"{len(tx.data)} bytes > ESP_NOW_MAX_DATA_LEN {ESP_NOW_MAX_DATA_LEN}",
            )

        broadcast = tx.dst == BROADCAST
        if broadcast:
            receivers = sorted(m for m, ch in self._channels.items() if ch == channel and m != src)
        elif tx.dst != src and self._channels.get(tx.dst) == channel:
            receivers = [tx.dst]
        else:
            return TxOutcome((), status(ESP_NOW_SEND_FAIL), reason="no such peer on the channel")

        deliveries: list[Delivery] = []
        lost: list[bytes] = []
        for mac in receivers:
            if self._lost():
                lost.append(mac)
                continue
            rx = Rx(src, tx.dst, channel, self.rssi(src, mac), tx.data)
            deliveries.append(Delivery(mac, rx))

        if broadcast:  # no ACK exists for broadcast: always SUCCESS
            return TxOutcome(tuple(deliveries), status(ESP_NOW_SEND_SUCCESS), tuple(lost))
        if lost:
            return TxOutcome((), status(ESP_NOW_SEND_FAIL), tuple(lost), reason="lost")
        return TxOutcome(tuple(deliveries), status(ESP_NOW_SEND_SUCCESS))

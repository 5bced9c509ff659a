"""What the v2 machines hand to their driver: frames to send and events (PROTOCOL.md §6, §15)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outgoing:
    """One frame to put on the air; ``dst`` is the radio destination (unicast or broadcast)."""

    dst: bytes
    frame: bytes


@dataclass(frozen=True)
class ScanDone:
    found: int
    scan_ms: int


@dataclass(frozen=True)
class PeerSecured:
    """Initiator: ``mac`` confirmed the key it installed (emitted exactly once per
    provisioning). Responder: we installed a key from our bound initiator ``mac``."""

    mac: bytes


@dataclass(frozen=True)
class PeerFailed:
    mac: bytes
    reason: str  # a V2Error reason


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
    protection: str  # "encrypted" (passed §8.2 under a group key) or "plaintext" (§10)
    broadcast: bool
    epoch: int = 0


@dataclass(frozen=True)
class EpochActivated:
    epoch: int


@dataclass(frozen=True)
class RekeyDone:
    epoch: int
    acked: tuple[bytes, ...]
    stragglers: tuple[bytes, ...]


@dataclass(frozen=True)
class DeviceRemoved:
    mac: bytes
    acked: bool  # the device confirmed UNPROVISION


@dataclass(frozen=True)
class Unprovisioned:
    """Responder: our initiator un-provisioned us; keys erased."""

    by: bytes


Event = (
    ScanDone
    | PeerSecured
    | PeerFailed
    | ProvisionDone
    | DataReceived
    | EpochActivated
    | RekeyDone
    | DeviceRemoved
    | Unprovisioned
)

"""Wire constants of protocol v2 (PROTOCOL.md §2, §4.3, §13) and the Kconfig-style limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MAGIC = 0xCF
VERSION = 0x02
CLEAR_HEADER_LEN = 4
SECURED_HEADER_LEN = 12
NONCE_LEN = 13
AAD_LEN = 24
MAC_LEN = 6
BROADCAST_MAC = b"\xff" * 6
TAG_GROUP = 8  # CCM8: DATA, SYNC
TAG_PAIR = 16  # CCM16: CTRL, CTRL_ACK
COUNTER_MAX = (1 << 48) - 1
EPOCH_MAX = 0xFFFF
WINDOW = 64
POP_MAX_LEN = 64
GRACE_MAX_S = 600
SUITE_1 = 0x01

#: ESP-NOW frame limits and the app payload maxima of §7.5.
FRAME_MAX_V1 = 250
FRAME_MAX_V2 = 1470
MAX_PAYLOAD = FRAME_MAX_V1 - SECURED_HEADER_LEN - TAG_GROUP  # 230
MAX_PAYLOAD_LONG = FRAME_MAX_V2 - SECURED_HEADER_LEN - TAG_GROUP  # 1450


class FrameType(IntEnum):
    """PROTOCOL.md §2.3."""

    SCAN_REQ = 0x01
    SCAN_RESP = 0x02
    HS1 = 0x10
    HS2 = 0x11
    HS3 = 0x12
    HS4 = 0x13
    HS_ERR = 0x1F
    CTRL = 0x20
    CTRL_ACK = 0x21
    DATA = 0x30
    DATA_PLAIN = 0x31
    SYNC = 0x32


SECURED_TYPES = frozenset({FrameType.CTRL, FrameType.CTRL_ACK, FrameType.DATA, FrameType.SYNC})
PAIRWISE_TYPES = frozenset({FrameType.CTRL, FrameType.CTRL_ACK})
GROUP_TYPES = frozenset({FrameType.DATA, FrameType.SYNC})

#: Exact lengths of fixed-size frames (§2.3); CTRL has one per op, DATA/DATA_PLAIN a range.
FIXED_LEN: dict[FrameType, int] = {
    FrameType.SCAN_REQ: 8,
    FrameType.SCAN_RESP: 16,
    FrameType.HS1: 41,
    FrameType.HS2: 40,
    FrameType.HS3: 40,
    FrameType.HS4: 40,
    FrameType.HS_ERR: 11,
    FrameType.CTRL_ACK: 56,
    FrameType.SYNC: 36,
}
CTRL_LENGTHS = frozenset({12 + 38 + 16, 12 + 1 + 16, 12 + 3 + 16})


class CtrlOp(IntEnum):
    """CTRL ``op`` (§5.1)."""

    KEY = 0x01
    UNPROVISION = 0x02
    RESET = 0x03


class AckStatus(IntEnum):
    """CTRL_ACK ``status`` (§5.2)."""

    OK = 0
    STALE_EPOCH = 1
    EPOCH_CONFLICT = 2
    STORE_FAIL = 3
    BAD_OP = 4


class HsErrCode(IntEnum):
    """HS_ERR ``code`` (§4.1)."""

    BUSY = 1
    PROVISIONED = 2
    POP_MISMATCH = 3
    BAD_KEY = 4
    UNSUPPORTED = 5
    NO_SESSION = 6


class ScanState(IntEnum):
    """SCAN_RESP ``state`` (§3)."""

    UNPROVISIONED = 0
    PROVISIONED_BY_YOU = 1
    PROVISIONED_OTHER = 2
    REPAIR_OPEN = 3


KEY_FLAG_ACTIVATE = 0x01
CAPS_SUITE1 = 0x01
CAPS_LONG_FRAMES = 0x02

# -- labels of the key schedule (§4.3) --------------------------------------------------------
L_POP = b"espnow-sec v2 pop"
L_TH = b"espnow-sec v2 transcript"
L_CONF_I = b"espnow-sec v2 conf I"
L_CONF_R = b"espnow-sec v2 conf R"
L_DEV = b"espnow-sec v2 device key"
L_PAIR = b"espnow-sec v2 pairwise"
L_CTL = b"ctl key"
L_GROUP = b"espnow-sec v2 group"
L_DATA = b"data key"
L_CHECK = b"espnow-sec v2 key check"
L_PAIR_ID = b"espnow-sec v2 pair id"


@dataclass(frozen=True)
class V2Config:
    """Limits, timers and options; defaults are PROTOCOL.md §13's suggested Kconfig defaults."""

    mac: bytes
    pop: bytes = b"espnow_pop"
    require_pop: bool = True
    long_frames: bool = False
    max_responders: int = 32
    max_devices: int = 32
    max_handshakes: int = 16
    responder_sessions: int = 2
    scan_duration_ms: int = 1000
    scan_interval_ms: int = 200
    scan_reply_jitter_ms: int = 50
    retry_max: int = 6
    retry_base_ms: int = 150
    retry_cap_ms: int = 1200
    hs_attempts: int = 3
    session_timeout_ms: int = 8000
    session_min_hold_ms: int = 2000
    linger_ms: int = 10000
    pop_burst: int = 5
    pop_refill_ms: int = 10000
    pop_backoff_base_ms: int = 1000
    pop_backoff_max_ms: int = 60000
    pop_fail_table: int = 8
    pop_forget_ms: int = 600000
    counter_block: int = 1024
    replay_senders: int = 32
    replay_idle_s: int = 600
    sync_retry_ms: int = 200
    sync_retries: int = 5
    sync_jitter_ms: int = 100
    sync_spread_ms: int = 5000
    sync_bcast_valid_ms: int = 4000
    sync_on_join: bool = True
    epoch_grace_s: int = 30
    rekey_timeout_ms: int = 10000
    announce_repeat: int = 3
    announce_gap_ms: int = 200
    straggler_gap_ms: int = 5000
    repair_window_s: int = 120

    def __post_init__(self) -> None:
        if len(self.mac) != MAC_LEN:
            raise ValueError("V2Config.mac must be 6 bytes")
        if len(self.pop) > POP_MAX_LEN:
            raise ValueError(f"PoP is {len(self.pop)} bytes; v2 allows at most {POP_MAX_LEN}")
        if self.require_pop and not self.pop:
            raise ValueError(
                "empty PoP refused under v2 (CONFIG_ESPNOW_SEC_V2_REQUIRE_POP): set a PoP, "
                "e.g. from `keygen.py pop`"
            )
        if not 0 <= self.epoch_grace_s <= GRACE_MAX_S:
            raise ValueError(f"epoch_grace_s must be 0..{GRACE_MAX_S}")

    @property
    def max_payload(self) -> int:
        return MAX_PAYLOAD_LONG if self.long_frames else MAX_PAYLOAD

    @property
    def frame_max(self) -> int:
        return FRAME_MAX_V2 if self.long_frames else FRAME_MAX_V1

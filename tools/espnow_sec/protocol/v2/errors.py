"""Exceptions of protocol v2 and their stable reason strings (PROTOCOL.md §2.6).

Every rejection raises a :class:`V2Error` whose ``reason`` is one of :data:`REASONS`. The
reasons are the drop reasons of PROTOCOL.md §2.6 in lower case, plus the handshake failure
classes; ``vectors/v2.json`` uses the same strings, so the C core maps its codes onto them.

=================  ======================================================================
reason             meaning
=================  ======================================================================
``malformed``      length, type, flags, addressing or field value not allowed (§2.6 steps 2-3)
``foreign``        not a v2 frame for this node (§2.1), wrong role, or no key to open it
``auth``           a CCM tag or a confirmation MAC did not verify
``replay``         the replay window has seen the counter, or it is too old (§8.2); CTRL below
                   ``ctl_floor`` (§5.3)
``duplicate``      identical retransmission of a handshake message (answered, §6)
``unsynced``       authentic DATA from a sender without a SYNCED window entry (§8.3)
``epoch``          key epoch not current, staged, or previous within grace (§9.4)
``table_full``     no replay-table slot for a new sender (§8.5)
``state``          well-formed but not expected in this state
``rate_limited``   a limiter of §11 refused it
``plaintext``      DATA_PLAIN received while secured (§10)
``bad_key``        an X25519 public key that gives the all-zero result (low order)
``pop_mismatch``   a handshake confirmation that does not verify (different PoP)
``key_echo``       CTRL_ACK ``key_check`` or status does not confirm the key sent
``store_fail``     a storage write failed
``store_corrupt``  a storage record with a bad length, magic, version or CRC (§12)
``too_long``       an app payload above the maximum (§7.5), or empty
``exhausted``      the 48-bit frame counter or the epoch space is used up
``timeout``        an exchange ran out of retransmissions
=================  ======================================================================
"""

from __future__ import annotations

from ..errors import ProtocolError


class V2Error(ProtocolError):
    """A v2 frame, message or operation was rejected; ``reason`` is the stable class."""

    reason = "malformed"


class Malformed(V2Error):
    reason = "malformed"


class Foreign(V2Error):
    reason = "foreign"


class AuthFailed(V2Error):
    reason = "auth"


class Replay(V2Error):
    reason = "replay"


class Duplicate(V2Error):
    reason = "duplicate"


class Unsynced(V2Error):
    reason = "unsynced"


class EpochRejected(V2Error):
    reason = "epoch"


class TableFull(V2Error):
    reason = "table_full"


class WrongState(V2Error):
    reason = "state"


class RateLimited(V2Error):
    reason = "rate_limited"


class PlaintextRejected(V2Error):
    reason = "plaintext"


class BadKey(V2Error):
    reason = "bad_key"


class PopMismatch(V2Error):
    reason = "pop_mismatch"


class KeyEchoMismatch(V2Error):
    reason = "key_echo"


class StoreFail(V2Error):
    reason = "store_fail"


class StoreCorrupt(V2Error):
    reason = "store_corrupt"


class TooLong(V2Error):
    reason = "too_long"


class Exhausted(V2Error):
    reason = "exhausted"


class TimedOut(V2Error):
    reason = "timeout"


#: Drop reasons of PROTOCOL.md §2.6, in table order (the per-reason counters of ``status``).
DROP_REASONS: tuple[str, ...] = (
    "malformed",
    "foreign",
    "auth",
    "replay",
    "duplicate",
    "unsynced",
    "epoch",
    "table_full",
    "state",
    "rate_limited",
    "plaintext",
)

REASONS: tuple[str, ...] = DROP_REASONS + (
    "bad_key",
    "pop_mismatch",
    "key_echo",
    "store_fail",
    "store_corrupt",
    "too_long",
    "exhausted",
    "timeout",
)

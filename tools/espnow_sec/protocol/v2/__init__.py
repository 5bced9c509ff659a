"""Pure reference implementation of protocol v2 ("secure"), docs/PROTOCOL.md.

No sockets, files, threads or clocks: bytes and time in, bytes and events out, every random
value injected (PROTOCOL.md §4.5), storage through a :class:`~.store.Store`.

Modules, one per spec concept:

=================  ==============================================================
``constants``      magic, version, types, labels, limits (§2, §4.3, §13)
``framing``        classification, headers, nonce, AAD, seal / open (§2)
``keyschedule``    transcript, HKDF outputs, confirmations, ``k_ctl``, ``k_grp`` (§4.3)
``messages``       SCAN_REQ / SCAN_RESP, HS1-HS4, HS_ERR (§3, §4.1)
``control``        CTRL ops and CTRL_ACK (§5)
``data``           DATA, DATA_PLAIN, SYNC (§7, §8.4, §10)
``counter``        48-bit frame counter reserved in blocks (§7.3)
``replay``         sliding windows and the bounded per-epoch table (§8)
``epochs``         current / staged / previous group keys and grace (§9)
``limiter``        token buckets and PoP backoff (§11)
``records``        storage records (§12); ``store`` the store interface
``node``           intake pipeline, data plane and SYNC shared by both roles
``initiator`` / ``responder``  the two role machines (§6)
``errors``         exceptions and their stable reason strings
=================  ==============================================================
"""

from .constants import BROADCAST_MAC, FrameType, V2Config
from .errors import REASONS, V2Error
from .events import (
    DataReceived,
    DeviceRemoved,
    EpochActivated,
    Outgoing,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    RekeyDone,
    ScanDone,
    Unprovisioned,
)
from .initiator import Initiator
from .responder import Responder
from .store import MemoryStore

__all__ = [
    "BROADCAST_MAC",
    "REASONS",
    "DataReceived",
    "DeviceRemoved",
    "EpochActivated",
    "FrameType",
    "Initiator",
    "MemoryStore",
    "Outgoing",
    "PeerFailed",
    "PeerSecured",
    "ProvisionDone",
    "RekeyDone",
    "Responder",
    "ScanDone",
    "Unprovisioned",
    "V2Config",
    "V2Error",
]

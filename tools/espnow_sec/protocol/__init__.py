"""Pure reference implementation of the compat protocol (esp-now 2.x security).

No sockets, files, threads or clocks: bytes and time in, bytes and events out, every random
value injected. Written from reference/upstream-espnow-security.md §2 and
reference/protocomm-security.md §1 and §4, not from any C code.

Modules, one per spec concept:

========================  ==========================================================
``frame``                 20-byte ESP-NOW header and frame (§2.1)
``records``               scan REQUEST / INFO, inner ``{type,size,data}`` record, GROUP
``session_pb``            ``SessionData`` protobuf classes, built without protoc
``session``               the four security1 messages (Cmd0, Resp0, Cmd1, Resp1)
``security1``             X25519 + SHA-256(PoP) + AES-256-CTR, client and device
``appkey``                KEY / KEY_RESP transfer and echo check (§2.5)
``data``                  AES-128-CCM data frames (§2.6-2.7)
``keystore``              the ``app_key`` key-store record (docs/keystore.md)
``node``                  shared machine plumbing: outputs, events, data path
``initiator``/``responder``  the two role state machines
``errors``                exceptions and their reason classes
========================  ==========================================================
"""

from .errors import ProtocolError
from .frame import BROADCAST_MAC, SEC_GROUP_ID, DataType, Frame, Header
from .initiator import Initiator
from .node import (
    DataReceived,
    KeyInstalled,
    NodeConfig,
    Outgoing,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    ScanDone,
)
from .responder import Responder
from .security1 import Security1Client, Security1Device

__all__ = [
    "BROADCAST_MAC",
    "SEC_GROUP_ID",
    "DataReceived",
    "DataType",
    "Frame",
    "Header",
    "Initiator",
    "KeyInstalled",
    "NodeConfig",
    "Outgoing",
    "PeerFailed",
    "PeerSecured",
    "ProtocolError",
    "ProvisionDone",
    "Responder",
    "ScanDone",
    "Security1Client",
    "Security1Device",
]

"""The initiator machine (protocomm *client* role) for the compat protocol.

Wire behaviour follows reference/upstream-espnow-security.md §2.3-2.5 (summary items 4-8, 15);
the schedule is ours, replacing upstream's fixed 5x500 ms scan and single retry round (§6.2.1-2):

1. **Scan** for ``scan_duration_ms``: a broadcast REQUEST (``filter_adjacent_channel``,
   ``retransmit_count`` 10, ``forward_rssi`` -65) every ``scan_interval_ms``, each with a fresh
   magic so a lost INFO is recovered by the next request. Responders already configured (by us
   or by another initiator) are not targets; at most ``max_responders`` are kept.
2. **Handshake** in batches of ``max_handshakes``. Per batch one client X25519 key (as upstream,
   so one Cmd0 serves all): GROUP add, Cmd0 broadcast to the ``SEC`` group, GROUP delete.
3. Per responder: Resp0 -> Cmd1, Resp1 (verified) -> KEY, KEY_RESP (echo verified) -> secured.
   A message whose answer does not come is sent again, byte for byte, unicast, after
   ``retry_base_ms`` doubling up to ``retry_cap_ms``, at most ``retry_max`` times; then the
   responder is reported failed with reason ``timeout``.
4. When every batch is finished: :class:`~.node.ProvisionDone`.

Malformed or unexpected frames are counted and ignored; a verification failure (PoP, low-order
key, wrong echo) fails that responder only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .appkey import APP_KEY_LEN, check_key_resp, make_key
from .errors import ProtocolError
from .frame import BROADCAST_MAC, SEC_GROUP_ID, DataType, Frame
from .node import (
    Node,
    NodeConfig,
    Outgoing,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    Rng,
    ScanDone,
    system_rng,
)
from .records import (
    GroupOp,
    Handshake,
    Info,
    KeyResp,
    ScanRequest,
    SecVer,
    decode_security_payload,
    group_frames,
)
from .security1 import Security1Client
from .session import Resp0, Resp1, decode_session


class Phase(Enum):
    IDLE = "idle"
    SCAN = "scan"
    HANDSHAKE = "handshake"
    DONE = "done"


class Step(Enum):
    WAIT_RESP0 = "wait_resp0"
    WAIT_RESP1 = "wait_resp1"
    WAIT_KEY_RESP = "wait_key_resp"
    SECURED = "secured"
    FAILED = "failed"


@dataclass
class _Peer:
    mac: bytes
    client: Security1Client
    step: Step
    last: bytes  # the record we sent last; resent verbatim on timeout
    deadline_ms: int
    retries: int = 0
    resp0: bytes | None = None
    resp1: bytes | None = None

    @property
    def finished(self) -> bool:
        return self.step in (Step.SECURED, Step.FAILED)


class Initiator(Node):
    """An initiator. Call :meth:`start`, then feed frames and ticks until ProvisionDone."""

    def __init__(self, config: NodeConfig, rng: Rng = system_rng, now_ms: int = 0) -> None:
        super().__init__(config, rng, now_ms)
        self.phase = Phase.IDLE
        self.found: dict[bytes, Info] = {}
        self._queue: list[bytes] = []
        self._peers: dict[bytes, _Peer] = {}
        self._finished: list[_Peer] = []
        self._start_ms = 0
        self._scan_end_ms = 0
        self._next_scan_ms = 0
        self._scan_ms = 0

    def start(self, app_key: bytes, now_ms: int | None = None) -> list[Outgoing]:
        """Begin a provisioning run with ``app_key`` (32 bytes)."""
        if len(app_key) != APP_KEY_LEN:
            raise ValueError(f"app key must be {APP_KEY_LEN} bytes, got {len(app_key)}")
        if self.phase in (Phase.SCAN, Phase.HANDSHAKE):
            raise ValueError("a provisioning run is already in progress")
        if now_ms is not None:
            self.now_ms = max(self.now_ms, now_ms)
        self.app_key = bytes(app_key)
        self.phase = Phase.SCAN
        self.found.clear()
        self._queue, self._peers, self._finished = [], {}, []
        self._start_ms = self.now_ms
        self._scan_end_ms = self.now_ms + self.config.scan_duration_ms
        self._next_scan_ms = self.now_ms
        return self._on_tick()

    @property
    def secured_peers(self) -> tuple[bytes, ...]:
        return tuple(p.mac for p in self._finished if p.step is Step.SECURED)

    # -- time ---------------------------------------------------------------------------------
    def _on_tick(self) -> list[Outgoing]:
        out: list[Outgoing] = []
        if self.phase is Phase.SCAN:
            if self.now_ms >= self._scan_end_ms:
                out += self._end_scan()
            elif self.now_ms >= self._next_scan_ms:
                out.append(
                    self._broadcast(
                        DataType.SECURITY,
                        ScanRequest().encode(),
                        filter_adjacent_channel=True,
                        retransmit_count=10,
                        forward_rssi=-65,
                    )
                )
                self._next_scan_ms = self.now_ms + self.config.scan_interval_ms
        if self.phase is Phase.HANDSHAKE:
            for peer in list(self._peers.values()):
                if not peer.finished and self.now_ms >= peer.deadline_ms:
                    out += self._retry(peer)
            out += self._advance()
        return out

    def _end_scan(self) -> list[Outgoing]:
        self._scan_ms = self.now_ms - self._start_ms
        self._queue = [mac for mac, info in self.found.items() if info.sec_ver == SecVer.NONE]
        self._emit(ScanDone(len(self._queue), self._scan_ms))
        self.phase = Phase.HANDSHAKE
        return self._advance()

    def _retry(self, peer: _Peer) -> list[Outgoing]:
        if peer.retries >= self.config.retry_max:
            self._fail(peer, "timeout")
            return []
        peer.retries += 1
        peer.deadline_ms = self.now_ms + self._timeout(peer.retries)
        self.stats["tx_retry"] += 1
        return [self._unicast(peer.mac, peer.last)]

    def _timeout(self, retries: int) -> int:
        return min(self.config.retry_base_ms << retries, self.config.retry_cap_ms)

    def _advance(self) -> list[Outgoing]:
        """Start the next batch when the current one is finished; finish the run at the end."""
        if any(not p.finished for p in self._peers.values()):
            return []
        self._finished += self._peers.values()
        self._peers = {}
        if not self._queue:
            self.phase = Phase.DONE
            secured = tuple(p.mac for p in self._finished if p.step is Step.SECURED)
            unfinished = tuple(p.mac for p in self._finished if p.step is not Step.SECURED)
            self._emit(
                ProvisionDone(secured, unfinished, self.now_ms - self._start_ms, self._scan_ms)
            )
            return []
        batch = self._queue[: self.config.max_handshakes]
        self._queue = self._queue[self.config.max_handshakes :]
        return self._start_batch(batch)

    def _start_batch(self, batch: list[bytes]) -> list[Outgoing]:
        client_priv = self.rng(32)
        cmd0 = b""
        for mac in batch:
            client = Security1Client(self.config.pop, client_priv)
            cmd0 = Handshake(client.cmd0().encode()).encode()
            self._peers[mac] = _Peer(
                mac, client, Step.WAIT_RESP0, cmd0, self.now_ms + self._timeout(0)
            )
        out = [
            self._broadcast(DataType.GROUP, g.encode(), retransmit_count=10)
            for g in group_frames(GroupOp.ADD, SEC_GROUP_ID, batch)
        ]
        header = self._header(
            DataType.SECURITY,
            SEC_GROUP_ID,
            broadcast=True,
            group=True,
            retransmit_count=1,
            filter_adjacent_channel=True,
            forward_rssi=-65,
        )
        out.append(Outgoing(BROADCAST_MAC, Frame.build(header, cmd0).encode()))
        out += [
            self._broadcast(DataType.GROUP, g.encode(), retransmit_count=10)
            for g in group_frames(GroupOp.DELETE, SEC_GROUP_ID, batch)
        ]
        return out

    # -- receive ------------------------------------------------------------------------------
    def _on_security(self, frame: Frame) -> list[Outgoing]:
        msg = decode_security_payload(frame.payload)
        src = frame.header.src_addr
        if isinstance(msg, Info):
            if frame.header.type == DataType.SECURITY_STATUS:
                self._on_info(src, msg)
            return []
        peer = self._peers.get(src)
        if peer is None or peer.finished or frame.header.type != DataType.SECURITY:
            self.stats["rx_not_expected_from_peer"] += 1
            return []
        if isinstance(msg, Handshake):
            return self._on_handshake(peer, msg)
        if isinstance(msg, KeyResp):
            return self._on_key_resp(peer, msg)
        self.stats["rx_unexpected"] += 1
        return []

    def _on_info(self, src: bytes, info: Info) -> None:
        if self.phase is not Phase.SCAN or src in self.found:
            return
        if info.sec_ver == SecVer.V1_0 and info.client_mac != self.config.mac:
            self.stats["scan_configured_by_other"] += 1
        if len(self.found) >= self.config.max_responders:
            self.stats["scan_table_full"] += 1
            return
        self.found[src] = info

    def _on_handshake(self, peer: _Peer, rec: Handshake) -> list[Outgoing]:
        msg = decode_session(rec.data)
        if isinstance(msg, Resp0):
            if peer.step is not Step.WAIT_RESP0:
                self.stats["rx_duplicate_resp0" if rec.data == peer.resp0 else "rx_unexpected"] += 1
                return []
            try:
                cmd1 = peer.client.handle_resp0(msg)
            except ProtocolError as exc:
                self._fail(peer, exc.reason)
                return self._advance()
            peer.resp0 = rec.data
            return self._send_next(peer, Step.WAIT_RESP1, Handshake(cmd1.encode()).encode())
        if isinstance(msg, Resp1):
            if peer.step is not Step.WAIT_RESP1:
                self.stats["rx_duplicate_resp1" if rec.data == peer.resp1 else "rx_unexpected"] += 1
                return []
            try:
                peer.client.handle_resp1(msg)
            except ProtocolError as exc:
                self._fail(peer, exc.reason)
                return self._advance()
            peer.resp1 = rec.data
            assert self.app_key is not None
            return self._send_next(
                peer, Step.WAIT_KEY_RESP, make_key(peer.client, self.app_key).encode()
            )
        self.stats["rx_unexpected"] += 1
        return []

    def _on_key_resp(self, peer: _Peer, resp: KeyResp) -> list[Outgoing]:
        if peer.step is not Step.WAIT_KEY_RESP:
            self.stats["rx_unexpected"] += 1
            return []
        assert self.app_key is not None
        try:
            check_key_resp(peer.client, self.app_key, resp)
        except ProtocolError as exc:
            self._fail(peer, exc.reason)
            return self._advance()
        peer.step = Step.SECURED
        self._emit(PeerSecured(peer.mac))
        return self._advance()

    # -- helpers ------------------------------------------------------------------------------
    def _send_next(self, peer: _Peer, step: Step, record: bytes) -> list[Outgoing]:
        peer.step, peer.last, peer.retries = step, record, 0
        peer.deadline_ms = self.now_ms + self._timeout(0)
        return [self._unicast(peer.mac, record)]

    def _fail(self, peer: _Peer, reason: str) -> None:
        peer.step = Step.FAILED
        self._emit(PeerFailed(peer.mac, reason))

    def _unicast(self, dst: bytes, record: bytes) -> Outgoing:
        header = self._header(
            DataType.SECURITY, dst, retransmit_count=1, filter_adjacent_channel=True
        )
        return Outgoing(dst, Frame.build(header, record).encode())

    def _broadcast(self, type_: int, payload: bytes, **flags: object) -> Outgoing:
        header = self._header(type_, BROADCAST_MAC, broadcast=True, **flags)
        return Outgoing(BROADCAST_MAC, Frame.build(header, payload).encode())

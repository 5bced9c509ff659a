"""The responder machine (protocomm *device* role) for the compat protocol.

Wire behaviour follows reference/upstream-espnow-security.md §2.3-2.5 (summary items 4, 5, 14);
the policies below are ours, chosen to fix upstream's robustness bugs (§6.1.10, §6.2.1):

* Scan: a REQUEST gets a unicast INFO ``{sec_ver, client_mac}`` in a SECURITY_STATUS frame,
  unless the request has ``filter_adjacent_channel`` set and names another channel.
* Cmd0 is accepted unicast, broadcast, or addressed to a group we joined through GROUP frames
  (upstream initiators send it to the ``SEC`` group).
* No lock-on to a stranger: up to ``responder_sessions`` half-open handshakes are kept, keyed by
  initiator MAC; when the table is full the least recently active one is dropped.
* Retransmissions are answered from a cache: an identical Cmd0, Cmd1 or KEY gets the same reply
  again without touching the CTR stream, so a lost reply never strands either side.
* A different Cmd0 from the same initiator restarts its session (protocomm §4.4).
* Once configured, handshakes from other initiators are ignored until :meth:`Responder.reset`;
  REST frames (unauthenticated) are counted and ignored.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .appkey import accept_key
from .errors import ProtocolError
from .frame import DataType, Frame
from .node import KeyInstalled, Node, NodeConfig, Outgoing, PeerFailed, PeerSecured, Rng, system_rng
from .records import Handshake, Info, Key, Rest, ScanRequest, SecVer, decode_security_payload
from .security1 import Security1Device, State
from .session import Cmd0, Cmd1, decode_session


@dataclass
class _Session:
    device: Security1Device
    cmd0: bytes
    resp0: bytes
    last_seen_ms: int
    cmd1: bytes | None = None
    resp1: bytes | None = None
    key: bytes | None = None
    key_resp: bytes | None = None


class Responder(Node):
    """A responder. ``app_key``/``provisioner`` preload a key from the key store."""

    def __init__(
        self,
        config: NodeConfig,
        rng: Rng = system_rng,
        now_ms: int = 0,
        app_key: bytes | None = None,
        provisioner: bytes | None = None,
    ) -> None:
        super().__init__(config, rng, now_ms)
        self.app_key = app_key
        self.configured_by: bytes | None = provisioner if app_key is not None else None
        self._sessions: OrderedDict[bytes, _Session] = OrderedDict()
        self._done: tuple[bytes, _Session] | None = None

    @property
    def secured(self) -> bool:
        return self.app_key is not None

    def reset(self) -> None:
        """Forget the key and every session (a local, authenticated action: button, console)."""
        self.app_key = None
        self.configured_by = None
        self._sessions.clear()
        self._done = None

    # -- receive ------------------------------------------------------------------------------
    def _on_security(self, frame: Frame) -> list[Outgoing]:
        if frame.header.type != DataType.SECURITY:
            self.stats["rx_ignored_type"] += 1
            return []
        msg = decode_security_payload(frame.payload)
        src = frame.header.src_addr
        if isinstance(msg, ScanRequest):
            return self._on_scan(frame)
        if isinstance(msg, Handshake):
            return self._on_handshake(src, msg)
        if isinstance(msg, Key):
            return self._on_key(src, msg)
        if isinstance(msg, Rest):
            self.stats["rx_rest_ignored"] += 1
            return []
        self.stats["rx_unexpected"] += 1
        return []

    def _on_scan(self, frame: Frame) -> list[Outgoing]:
        h = frame.header
        if h.filter_adjacent_channel and h.channel not in (0, self.config.channel):
            self.stats["rx_scan_other_channel"] += 1
            return []
        info = Info(SecVer.V1_0 if self.secured else SecVer.NONE, self.configured_by or bytes(6))
        return [self._send(DataType.SECURITY_STATUS, h.src_addr, info.encode(), retransmit_count=1)]

    def _on_handshake(self, src: bytes, rec: Handshake) -> list[Outgoing]:
        if self._done is not None and self._done[0] == src:
            s = self._done[1]
            if rec.data == s.cmd1 and s.resp1 is not None:
                return [self._reply(src, s.resp1)]
        if self.secured:
            self.stats["rx_handshake_while_configured"] += 1
            return []
        msg = decode_session(rec.data)
        if isinstance(msg, Cmd0):
            return self._on_cmd0(src, rec.data, msg)
        if isinstance(msg, Cmd1):
            return self._on_cmd1(src, rec.data, msg)
        self.stats["rx_unexpected"] += 1
        return []

    def _on_cmd0(self, src: bytes, raw: bytes, msg: Cmd0) -> list[Outgoing]:
        old = self._sessions.get(src)
        if old is not None and old.cmd0 == raw and old.device.state is State.WAIT_CMD1:
            old.last_seen_ms = self.now_ms
            self._sessions.move_to_end(src)
            return [self._reply(src, old.resp0)]
        self._sessions.pop(src, None)
        while len(self._sessions) >= self.config.responder_sessions:
            self._sessions.popitem(last=False)
            self.stats["session_evicted"] += 1
        device = Security1Device(self.config.pop, self.rng(32), self.rng(16))
        try:
            resp0 = Handshake(device.handle_cmd0(msg).encode()).encode()
        except ProtocolError as exc:
            self._emit(PeerFailed(src, exc.reason))
            return []
        self._sessions[src] = _Session(device, raw, resp0, self.now_ms)
        return [self._reply(src, resp0)]

    def _on_cmd1(self, src: bytes, raw: bytes, msg: Cmd1) -> list[Outgoing]:
        s = self._sessions.get(src)
        if s is None:
            self.stats["rx_cmd1_without_session"] += 1
            return []
        if s.cmd1 is not None:
            if raw == s.cmd1 and s.resp1 is not None:
                return [self._reply(src, s.resp1)]
            self.stats["rx_unexpected"] += 1
            return []
        try:
            resp1 = Handshake(s.device.handle_cmd1(msg).encode()).encode()
        except ProtocolError as exc:
            del self._sessions[src]
            self._emit(PeerFailed(src, exc.reason))
            return []
        s.cmd1, s.resp1, s.last_seen_ms = raw, resp1, self.now_ms
        return [self._reply(src, resp1)]

    def _on_key(self, src: bytes, key: Key) -> list[Outgoing]:
        if self._done is not None and self._done[0] == src:
            s = self._done[1]
            if key.encode() == s.key and s.key_resp is not None:
                return [self._reply(src, s.key_resp)]
            self.stats["rx_unexpected"] += 1
            return []
        if self.secured:
            self.stats["rx_key_while_configured"] += 1
            return []
        s = self._sessions.get(src)
        if s is None or not s.device.done:
            self.stats["rx_key_without_session"] += 1
            return []
        try:
            app_key, resp = accept_key(s.device, key)
        except ProtocolError as exc:
            del self._sessions[src]
            self._emit(PeerFailed(src, exc.reason))
            return []
        s.key, s.key_resp = key.encode(), resp.encode()
        del self._sessions[src]
        self._done = (src, s)
        self.app_key, self.configured_by = app_key, src
        self._sessions.clear()  # other half-open handshakes can no longer finish
        self._emit(KeyInstalled(app_key, src))
        self._emit(PeerSecured(src))
        return [self._reply(src, s.key_resp)]

    # -- send ---------------------------------------------------------------------------------
    def _send(self, type_: int, dst: bytes, payload: bytes, **flags: object) -> Outgoing:
        frame = Frame.build(self._header(type_, dst, **flags), payload)
        return Outgoing(dst, frame.encode())

    def _reply(self, dst: bytes, record: bytes) -> Outgoing:
        """A handshake reply: unicast SECURITY frame (reference §2.4 step 3)."""
        return self._send(
            DataType.SECURITY, dst, record, retransmit_count=1, filter_adjacent_channel=True
        )

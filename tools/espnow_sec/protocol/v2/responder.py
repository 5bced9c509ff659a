"""The v2 responder (PROTOCOL.md §3, §4, §5.3, §6.2, §11).

Provisioned state lives in one storage record (``v2_resp``, §12) written atomically when a KEY
is installed, so a handshake that fails, is abandoned or is interrupted leaves nothing in
flash. Sessions, the re-pair window, PoP backoff and limiters are RAM only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ... import crypto
from .constants import (
    CAPS_LONG_FRAMES,
    CAPS_SUITE1,
    SUITE_1,
    AckStatus,
    CtrlOp,
    FrameType,
    HsErrCode,
    ScanState,
    V2Config,
)
from .control import BadOp, CtrlAck, CtrlBody, KeyOp, ResetOp, UnprovisionOp, parse_ctrl
from .errors import Malformed, RateLimited, Replay, StoreFail, V2Error, WrongState
from .events import EpochActivated, Outgoing, PeerFailed, PeerSecured, Unprovisioned
from .framing import SecuredHeader, open_
from .keyschedule import HandshakeKeys, dh, k_ctl, key_check, pair_id, th3
from .limiter import PopBackoff, TokenBucket
from .messages import Hs1, Hs2, Hs3, Hs4, HsErr, ScanReq, ScanResp
from .node import Rng, V2Node, system_rng
from .records import CTR_NAME, RESP_NAME, CounterRecord, ResponderRecord
from .store import Store


class SessionState(Enum):
    HS2_SENT = "hs2_sent"
    CONFIRMED = "confirmed"


@dataclass
class Session:
    mac_i: bytes
    sid: int
    state: SessionState
    hs1: bytes
    hs2: bytes
    keys: HandshakeKeys
    t_last: int
    hs3: bytes = b""
    hs4: bytes = b""
    k_ctl: bytes = b""
    ctl_floor: int = -1  # -1: no CTRL accepted yet (the first is accepted whatever its counter)


@dataclass
class Pairing:
    mac_i: bytes
    k_dev: bytes
    k_ctl: bytes
    ctl_floor: int
    grace_s: int


class Responder(V2Node):
    ROLE_TYPES = frozenset({FrameType.SCAN_REQ, FrameType.HS1, FrameType.HS3, FrameType.CTRL})

    def __init__(
        self, config: V2Config, rng: Rng = system_rng, store: Store | None = None, now_ms: int = 0
    ) -> None:
        self.pairing: Pairing | None = None
        super().__init__(config, rng, store, now_ms)
        self.sessions: dict[tuple[bytes, int], Session] = {}
        self._pending_out: list[Outgoing] = []
        self.repair_until: int | None = None
        self.linger: tuple[bytes, bytes, int, int] | None = None  # mac_i, k_ctl, c, until
        self.backoff = PopBackoff(
            config.pop_fail_table,
            config.pop_backoff_base_ms,
            config.pop_backoff_max_ms,
            config.pop_forget_ms,
        )
        self.bucket = TokenBucket(config.pop_burst, config.pop_refill_ms, t_ref=now_ms)
        self.reply_limiter = TokenBucket(8, 50, t_ref=now_ms)
        self._load()

    # -- boot ------------------------------------------------------------------------------
    def _key_record_exists(self) -> bool:
        return self.store.load(RESP_NAME) is not None

    def _load(self) -> None:
        raw = self.store.load(RESP_NAME)
        if raw is None:
            return
        r = ResponderRecord.decode(raw)
        self.pairing = Pairing(
            r.mac_i, r.k_dev, k_ctl(r.k_dev, r.mac_i, self.mac), r.ctl_floor, r.grace_s
        )
        self.epochs.set(r.epoch, r.secret, (r.staged_epoch, r.staged_secret))
        self.epochs.grace_ms = r.grace_s * 1000

    def start(self, now_ms: int | None = None) -> list[Outgoing]:
        """After boot: a secured responder announces itself with a broadcast SYNC (§8.4)."""
        if now_ms is not None:
            self._advance_clock(now_ms)
        return self._join_sync()

    @property
    def provisioned(self) -> bool:
        return self.pairing is not None

    def _record(self, p: Pairing) -> ResponderRecord:
        cur, stg = self.epochs.current, self.epochs.staged
        return ResponderRecord(
            p.mac_i,
            p.k_dev,
            p.ctl_floor,
            cur.epoch if cur else 0,
            cur.secret if cur else bytes(32),
            stg.epoch if stg else 0,
            stg.secret if stg else bytes(32),
            p.grace_s,
        )

    def _persist_keys(self) -> None:
        if self.pairing is not None:
            try:
                self.store.save(RESP_NAME, self._record(self.pairing).encode())
            except StoreFail:
                self.stats["store_fail"] += 1

    # -- dispatch --------------------------------------------------------------------------
    def _on_role_frame(
        self, type_: FrameType, src: bytes, dst: bytes, body: bytes
    ) -> list[Outgoing]:
        if type_ is FrameType.SCAN_REQ:
            return self._on_scan(src, ScanReq.decode(body))
        if type_ is FrameType.HS1:
            return self._on_hs1(src, body)
        if type_ is FrameType.HS3:
            return self._on_hs3(src, body)
        return self._on_ctrl(src, dst, body)

    def _limited(self, dst: bytes, frame: bytes) -> list[Outgoing]:
        """SCAN_RESP and HS_ERR go through the reply limiter (§11.4)."""
        if not self.reply_limiter.take(self.now_ms):
            raise RateLimited("reply limiter: too many SCAN_RESP / HS_ERR")
        return [Outgoing(dst, frame)]

    def _hs_err(self, dst: bytes, sid: int, code: HsErrCode, retry: int = 0) -> list[Outgoing]:
        self.stats[f"tx_hs_err_{code.name.lower()}"] += 1
        return self._limited(dst, HsErr(sid, code, retry).encode())

    # -- discovery (§3) --------------------------------------------------------------------
    def _scan_state(self, src: bytes) -> ScanState:
        if self.pairing is None:
            return ScanState.UNPROVISIONED
        if src != self.pairing.mac_i:
            return ScanState.PROVISIONED_OTHER
        if self._repair_open():
            return ScanState.REPAIR_OPEN
        return ScanState.PROVISIONED_BY_YOU

    def _on_scan(self, src: bytes, req: ScanReq) -> list[Outgoing]:
        if not self.reply_limiter.take(self.now_ms):
            raise RateLimited("reply limiter: too many SCAN_REQ")
        state = self._scan_state(src)
        mine = state in (ScanState.PROVISIONED_BY_YOU, ScanState.REPAIR_OPEN)
        caps = CAPS_SUITE1 | (CAPS_LONG_FRAMES if self.config.long_frames else 0)
        resp = ScanResp(
            req.scan_id,
            state,
            self.epochs.epoch if mine else 0,
            caps,
            pair_id(self.pairing.k_dev) if mine and self.pairing else bytes(4),
        )
        frame = resp.encode()
        return self._after(
            self._delay(self.config.scan_reply_jitter_ms), lambda: [Outgoing(src, frame)]
        )

    # -- handshake (§4, §6.2) --------------------------------------------------------------
    def _repair_open(self) -> bool:
        return self.repair_until is not None and self.now_ms < self.repair_until

    def _on_hs1(self, src: bytes, body: bytes) -> list[Outgoing]:
        hs1 = Hs1.decode(body)
        if hs1.sid == 0:
            raise Malformed("HS1 sid 0")
        now = self.now_ms
        if self.pairing is not None and not (self._repair_open() and src == self.pairing.mac_i):
            return self._hs_err(src, hs1.sid, HsErrCode.PROVISIONED)
        blocked = self.backoff.blocked_for(src, now)
        if blocked:
            return self._hs_err(src, hs1.sid, HsErrCode.BUSY, blocked)
        if hs1.suite != SUITE_1:
            return self._hs_err(src, hs1.sid, HsErrCode.UNSUPPORTED)
        same = self.sessions.get((src, hs1.sid))
        if same is not None:
            if same.hs1 != body:
                raise WrongState("HS1 with a known sid but other content")
            same.t_last = now
            self.drop("duplicate")
            return [Outgoing(src, same.hs2)]
        for key, s in list(self.sessions.items()):
            if s.mac_i == src:
                if s.state is SessionState.CONFIRMED:
                    raise WrongState("a proven initiator from this MAC is mid-flight")
                del self.sessions[key]  # a restart
        victim: tuple[bytes, int] | None = None
        if len(self.sessions) >= self.config.responder_sessions:
            old = [
                (s.t_last, k)
                for k, s in self.sessions.items()
                if s.state is SessionState.HS2_SENT
                and now - s.t_last >= self.config.session_min_hold_ms
            ]
            if not old:
                return self._hs_err(src, hs1.sid, HsErrCode.BUSY)
            victim = min(old)[1]
        if not self.bucket.take(now):
            return self._hs_err(src, hs1.sid, HsErrCode.BUSY, self.bucket.retry_after(now))
        if victim is not None:
            del self.sessions[victim]
            self.stats["session_evicted"] += 1
        e_r_priv = self.rng(32)
        try:
            shared = dh(e_r_priv, hs1.e_i)
        except V2Error:
            return self._hs_err(src, hs1.sid, HsErrCode.BAD_KEY)
        hs2 = Hs2(hs1.sid, crypto.x25519_public(e_r_priv)).encode()
        keys = HandshakeKeys.derive(shared, self.config.pop, src, self.mac, body, hs2)
        state = SessionState.HS2_SENT
        self.sessions[(src, hs1.sid)] = Session(src, hs1.sid, state, body, hs2, keys, now)
        return [Outgoing(src, hs2)]

    def _on_hs3(self, src: bytes, body: bytes) -> list[Outgoing]:
        hs3 = Hs3.decode(body)
        s = self.sessions.get((src, hs3.sid))
        if s is None:
            if hs3.sid and hs3.sid == self.backoff.last_failed_sid(src, self.now_ms):
                return self._hs_err(src, hs3.sid, HsErrCode.POP_MISMATCH)
            if self.pairing is None:
                return self._hs_err(src, hs3.sid, HsErrCode.NO_SESSION)
            raise WrongState("HS3 for no session")
        if s.state is SessionState.CONFIRMED:
            if body == s.hs3:
                s.t_last = self.now_ms
                self.drop("duplicate")
                return [Outgoing(src, s.hs4)]
            raise WrongState("other HS3 for a confirmed session")
        if not s.keys.verify_conf_i(hs3.conf):
            del self.sessions[(src, hs3.sid)]
            self.backoff.record_failure(src, hs3.sid, self.now_ms)
            self.stats["hs_failed"] += 1
            self._emit(PeerFailed(src, "pop_mismatch"))
            return self._hs_err(src, hs3.sid, HsErrCode.POP_MISMATCH)
        self.bucket.refund(self.now_ms)
        self.backoff.clear(src)
        t3 = th3(s.keys.th2, body)
        s.hs3, s.hs4 = body, Hs4(hs3.sid, s.keys.conf_r(t3)).encode()
        s.k_ctl = k_ctl(s.keys.k_dev, src, self.mac)
        s.state, s.t_last = SessionState.CONFIRMED, self.now_ms
        return [Outgoing(src, s.hs4)]

    # -- control (§5.3) --------------------------------------------------------------------
    def _confirmed(self, src: bytes) -> Session | None:
        for s in self.sessions.values():
            if s.mac_i == src and s.state is SessionState.CONFIRMED:
                return s
        return None

    def _on_ctrl(self, src: bytes, dst: bytes, body: bytes) -> list[Outgoing]:
        hdr = SecuredHeader.decode(body)
        c = hdr.counter
        session = self._confirmed(src)
        if session is not None:
            key, floor = session.k_ctl, session.ctl_floor
        elif self.pairing is not None and src == self.pairing.mac_i:
            key, floor = self.pairing.k_ctl, self.pairing.ctl_floor
        elif self.linger is not None and self.linger[0] == src and self.now_ms < self.linger[3]:
            pt = open_(self.linger[1], body, src, dst)
            if c != self.linger[2]:
                raise Replay("CTRL after UNPROVISION")
            self.drop("duplicate")  # §5.3: the linger only re-ACKs duplicates (§2.6)
            ack = CtrlAck(c, pt[0] if pt else 0, AckStatus.OK, 0, 0)
            return [self._ack(src, self.linger[1], ack)]
        else:
            raise WrongState("CTRL from a MAC that is not our initiator")
        if 0 <= floor and c < floor:
            raise Replay(f"CTRL counter {c} below ctl_floor {floor}")
        pt = open_(key, body, src, dst)
        try:
            op: CtrlBody | None = parse_ctrl(pt)
        except BadOp:
            op = None
        if floor >= 0 and c == floor:
            self.drop("duplicate")
            return [self._ack(src, key, self._evaluate(session, op, c, pt, dry=True))]
        ack = self._evaluate(session, op, c, pt, dry=False)
        if session is not None and (src, session.sid) in self.sessions:
            if ack.status is not AckStatus.BAD_OP:
                session.ctl_floor = c
        out = [self._ack(src, key, ack)]
        out, self._pending_out = out + self._pending_out, []
        return out

    def _ack(self, dst: bytes, key: bytes, ack: CtrlAck) -> Outgoing:
        self.stats["tx_ctrl_ack"] += 1
        return Outgoing(dst, self._seal(key, FrameType.CTRL_ACK, 0, dst, ack.encode()))

    def _evaluate(
        self, session: Session | None, op: CtrlBody | None, c: int, pt: bytes, dry: bool
    ) -> CtrlAck:
        raw_op = pt[0] if pt else 0
        ep = self.epochs
        if op is None:
            return CtrlAck(c, raw_op, AckStatus.BAD_OP, ep.epoch, ep.staged_epoch)
        newcomer = session is not None and self.pairing is None
        if newcomer:
            assert session is not None
            if not isinstance(op, KeyOp) or not op.activate:
                return CtrlAck(c, raw_op, AckStatus.BAD_OP, ep.epoch, ep.staged_epoch)
            if dry:
                return self._status_now(c, op, session.keys.k_dev)
            return self._install_newcomer(session, op, c)
        if isinstance(op, UnprovisionOp):
            return self._unprovision(c, dry)
        if isinstance(op, ResetOp):
            if not dry:
                if not self._write_floor(c, session):
                    return CtrlAck(c, raw_op, AckStatus.STORE_FAIL, ep.epoch, ep.staged_epoch)
                self.repair_until = self.now_ms + op.window_s * 1000
            return CtrlAck(c, raw_op, AckStatus.OK, ep.epoch, ep.staged_epoch)
        assert isinstance(op, KeyOp)
        return self._key(session, op, c, dry)

    def _status_now(self, c: int, op: KeyOp, k_dev: bytes) -> CtrlAck:
        """Duplicate of an installed KEY: report the state as it is, no write."""
        ep = self.epochs
        have = {e.epoch: e.secret for e in (ep.current, ep.staged) if e is not None}
        if have.get(op.epoch) == op.group_secret:
            kc = key_check(k_dev, op.epoch, op.group_secret)
            return CtrlAck(c, CtrlOp.KEY, AckStatus.OK, ep.epoch, ep.staged_epoch, kc)
        return CtrlAck(c, CtrlOp.KEY, self._key_status(op), ep.epoch, ep.staged_epoch)

    def _key_status(self, op: KeyOp) -> AckStatus:
        """§5.3 KEY evaluation table, status column."""
        cur, stg = self.epochs.current, self.epochs.staged
        for e in (cur, stg):
            if e is not None and op.epoch == e.epoch:
                return AckStatus.OK if op.group_secret == e.secret else AckStatus.EPOCH_CONFLICT
        if cur is not None and op.epoch < cur.epoch:
            return AckStatus.STALE_EPOCH
        if not op.activate and stg is not None and op.epoch < stg.epoch:
            return AckStatus.STALE_EPOCH
        return AckStatus.OK

    def _install_newcomer(self, s: Session, op: KeyOp, c: int) -> CtrlAck:
        pairing = Pairing(s.mac_i, s.keys.k_dev, s.k_ctl, c, op.grace_s)
        rec = ResponderRecord(
            s.mac_i, s.keys.k_dev, c, op.epoch, op.group_secret, 0, bytes(32), op.grace_s
        )
        ep = self.epochs
        try:
            # §7.3 boot rule: the counter record must exist before any key record does, so a
            # reset between the two writes cannot leave a key record without a counter record.
            self.store.save(CTR_NAME, CounterRecord(self.counter.reserved).encode())
            self.store.save(RESP_NAME, rec.encode())
        except StoreFail:
            return CtrlAck(c, CtrlOp.KEY, AckStatus.STORE_FAIL, ep.epoch, ep.staged_epoch)
        back = ResponderRecord.decode(self.store.load(RESP_NAME) or b"")
        self.pairing = pairing
        ep.set(back.epoch, back.secret)
        ep.grace_ms = op.grace_s * 1000
        self.sessions.clear()
        self.repair_until = None
        self._sync_ctrl(s.mac_i, c)
        self._emit(PeerSecured(s.mac_i))
        self._pending_out = self._join_sync()
        kc = key_check(back.k_dev, back.epoch, back.secret)
        return CtrlAck(c, CtrlOp.KEY, AckStatus.OK, ep.epoch, ep.staged_epoch, kc)

    def _key(self, session: Session | None, op: KeyOp, c: int, dry: bool) -> CtrlAck:
        """KEY to a provisioned responder (stored pairing, or a re-pair session)."""
        assert self.pairing is not None
        ep = self.epochs
        status = self._key_status(op)
        k_dev = session.keys.k_dev if session is not None else self.pairing.k_dev
        if dry:
            return (
                self._status_now(c, op, k_dev)
                if status is AckStatus.OK
                else CtrlAck(c, CtrlOp.KEY, status, ep.epoch, ep.staged_epoch)
            )
        cur = (ep.current.epoch, ep.current.secret) if ep.current else (0, bytes(32))
        stg = (ep.staged.epoch, ep.staged.secret) if ep.staged else (0, bytes(32))
        new_cur, new_stg, activate = cur, stg, False
        if status is AckStatus.OK:
            if op.epoch == stg[0] and op.activate:
                new_cur, new_stg, activate = stg, (0, bytes(32)), True
            elif op.epoch > cur[0] and op.epoch != stg[0]:
                if op.activate:
                    new_cur, activate = (op.epoch, op.group_secret), True
                    if stg[0] <= op.epoch:
                        new_stg = (0, bytes(32))
                else:
                    new_stg = (op.epoch, op.group_secret)
        grace = op.grace_s if status is AckStatus.OK else self.pairing.grace_s
        p = self.pairing
        mac_i, k_dev_new = p.mac_i, p.k_dev
        if session is not None and status is AckStatus.OK:
            k_dev_new = session.keys.k_dev
        rec = ResponderRecord(
            mac_i, k_dev_new, c, new_cur[0], new_cur[1], new_stg[0], new_stg[1], grace
        )
        try:
            self.store.save(RESP_NAME, rec.encode())
        except StoreFail:
            return CtrlAck(c, CtrlOp.KEY, AckStatus.STORE_FAIL, ep.epoch, ep.staged_epoch)
        back = ResponderRecord.decode(self.store.load(RESP_NAME) or b"")
        if session is not None and status is AckStatus.OK:
            self.pairing = Pairing(mac_i, back.k_dev, session.k_ctl, c, grace)
            self.sessions.clear()
            self.repair_until = None
        else:
            self.pairing = Pairing(mac_i, p.k_dev, p.k_ctl, c, grace)
        if status is AckStatus.OK:
            ep.grace_ms = grace * 1000
        if activate:
            ep.install(back.epoch, back.secret, self.now_ms)
        if back.staged_epoch and (ep.staged is None or ep.staged.epoch != back.staged_epoch):
            ep.stage(back.staged_epoch, back.staged_secret)
        elif not back.staged_epoch:
            ep.staged = None
        self._sync_ctrl(mac_i, c)
        if activate:
            self._pending_out = self._activate_event(back.epoch)
        kc = bytes(16)
        if status is AckStatus.OK:
            g = back.secret if back.epoch == op.epoch else back.staged_secret
            kc = key_check(back.k_dev, op.epoch, g)
        return CtrlAck(c, CtrlOp.KEY, status, ep.epoch, ep.staged_epoch, kc)

    def _activate_event(self, epoch: int) -> list[Outgoing]:
        self._emit(EpochActivated(epoch))
        return self._join_sync()

    def _write_floor(self, c: int, session: Session | None) -> bool:
        assert self.pairing is not None
        p = self.pairing
        old = p.ctl_floor
        p.ctl_floor = c
        try:
            self.store.save(RESP_NAME, self._record(p).encode())
        except StoreFail:
            p.ctl_floor = old
            return False
        self._sync_ctrl(p.mac_i, c)
        return True

    def _unprovision(self, c: int, dry: bool) -> CtrlAck:
        assert self.pairing is not None
        mac_i, key = self.pairing.mac_i, self.pairing.k_ctl
        if not dry:
            self.store.erase(RESP_NAME)
            self.pairing = None
            self.epochs.wipe()
            self.sessions.clear()
            self.repair_until = None
            self.linger = (mac_i, key, c, self.now_ms + self.config.linger_ms)
            self._emit(Unprovisioned(mac_i))
        return CtrlAck(c, CtrlOp.UNPROVISION, AckStatus.OK, 0, 0)

    def _sync_ctrl(self, mac_i: bytes, c: int) -> None:
        """§5.3 freshness: an accepted CTRL proves the initiator's counter is at least c."""
        cur = self.epochs.current
        if cur is not None:
            cur.table.sync_at(mac_i, c, self.now_ms)

    # -- time ------------------------------------------------------------------------------
    def _on_tick(self) -> list[Outgoing]:
        now = self.now_ms
        for key, s in list(self.sessions.items()):
            if now - s.t_last >= self.config.session_timeout_ms:
                del self.sessions[key]
                self.stats["session_expired"] += 1
        if self.linger is not None and now >= self.linger[3]:
            self.linger = None
        if self.repair_until is not None and now >= self.repair_until:
            self.repair_until = None
        return []

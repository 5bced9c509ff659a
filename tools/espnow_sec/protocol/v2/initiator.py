"""The v2 initiator: discovery, handshakes, key delivery, re-key, add, remove, reset.

PROTOCOL.md §3 (scan), §4 and §6.1 (handshake per responder), §5 (CTRL / CTRL_ACK), §9 (epochs).
Every request is retransmitted byte for byte on the §6 schedule. Device records (``v2_devNN``)
are written before the request that depends on them (write-ahead), so a lost CTRL_ACK or a
reboot never leaves a responder holding a key this initiator cannot manage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ... import crypto
from .constants import (
    BROADCAST_MAC,
    EPOCH_MAX,
    SUITE_1,
    AckStatus,
    FrameType,
    HsErrCode,
    ScanState,
    V2Config,
)
from .control import CtrlAck, KeyOp, ResetOp, UnprovisionOp
from .errors import (
    AuthFailed,
    Duplicate,
    Exhausted,
    Malformed,
    StoreFail,
    V2Error,
    WrongState,
)
from .events import (
    DeviceRemoved,
    EpochActivated,
    Outgoing,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    RekeyDone,
    ScanDone,
)
from .framing import SecuredHeader, open_, seal
from .keyschedule import HandshakeKeys, dh, k_ctl, key_check, pair_id, th3
from .messages import Hs1, Hs2, Hs3, Hs4, HsErr, ScanReq, ScanResp
from .node import Rng, V2Node, system_rng
from .records import GRP_NAME, DeviceRecord, DeviceState, GroupRecord, dev_name
from .store import Store

CtlBody = KeyOp | UnprovisionOp | ResetOp


class Step(Enum):
    FOUND = "found"
    W_HS2 = "w_hs2"
    W_HS4 = "w_hs4"
    W_ACK = "w_ack"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Retx:
    """One outstanding request: identical bytes resent on the §6 schedule."""

    frame: bytes
    deadline: int
    retries: int = 0


@dataclass
class Ctl:
    """An outstanding CTRL request to one device."""

    mac: bytes
    key: bytes  # k_ctl
    k_dev: bytes
    body: CtlBody
    counter: int
    retx: Retx
    on_done: Callable[[CtrlAck | None, str], None]


@dataclass
class Peer:
    mac: bytes
    step: Step = Step.FOUND
    attempts: int = 0
    not_before: int = 0
    sid: int = 0
    e_i_priv: bytes = b""
    hs1: bytes = b""
    hs2: bytes = b""
    hs3: bytes = b""
    keys: HandshakeKeys | None = None
    retx: Retx | None = None
    repair: bool = False
    rejoin: bool = False

    @property
    def busy(self) -> bool:
        return self.step in (Step.W_HS2, Step.W_HS4, Step.W_ACK)


@dataclass
class Device:
    slot: int
    rec: DeviceRecord


@dataclass
class Rollout:
    epoch: int
    secret: bytes
    started: int
    queue: list[bytes] = field(default_factory=list)
    acked: list[bytes] = field(default_factory=list)
    failed: list[bytes] = field(default_factory=list)


class Initiator(V2Node):
    ROLE_TYPES = frozenset(
        {FrameType.SCAN_RESP, FrameType.HS2, FrameType.HS4, FrameType.HS_ERR, FrameType.CTRL_ACK}
    )

    def __init__(
        self, config: V2Config, rng: Rng = system_rng, store: Store | None = None, now_ms: int = 0
    ) -> None:
        super().__init__(config, rng, store, now_ms)
        self.devices: dict[bytes, Device] = {}
        self.grace_s = config.epoch_grace_s
        self.found: dict[bytes, ScanResp] = {}
        self.peers: dict[bytes, Peer] = {}
        self.ctls: dict[bytes, Ctl] = {}
        self.rollout: Rollout | None = None
        self.stragglers: dict[bytes, int] = {}
        self.running = False
        self.scanning = False
        self._scan_id = 0
        self._t_start = self._scan_end = self._next_scan = self._scan_ms = 0
        self._secured: list[bytes] = []
        self._rolling: set[bytes] = set()
        self._pending_rekey = False
        self._straggler_out: list[Outgoing] = []
        self._load()

    # -- storage ---------------------------------------------------------------------------
    def _key_record_exists(self) -> bool:
        return self.store.load(GRP_NAME) is not None

    def _load(self) -> None:
        raw = self.store.load(GRP_NAME)
        if raw is not None:
            g = GroupRecord.decode(raw)
            self.epochs.set(g.epoch, g.secret, (g.staged_epoch, g.staged_secret))
            self.grace_s = g.grace_s
        for slot in range(100):
            rec = self.store.load(dev_name(slot))
            if rec is not None:
                d = DeviceRecord.decode(rec)
                self.devices[d.mac] = Device(slot, d)

    def _save_group(self, rollout: bool = False) -> None:
        cur, stg = self.epochs.current, self.epochs.staged
        assert cur is not None
        self.store.save(
            GRP_NAME,
            GroupRecord(
                cur.epoch,
                cur.secret,
                stg.epoch if stg else 0,
                stg.secret if stg else bytes(32),
                self.grace_s,
                rollout,
            ).encode(),
        )

    def _persist_keys(self) -> None:
        self._save_group(self.rollout is not None)

    def _save_device(self, mac: bytes, rec: DeviceRecord) -> None:
        dev = self.devices.get(mac)
        if dev is None:
            used = {d.slot for d in self.devices.values()}
            free = [s for s in range(self.config.max_devices) if s not in used]
            if not free:
                raise StoreFail("device table full (CONFIG_ESPNOW_SEC_MAX_DEVICES)")
            dev = Device(free[0], rec)
        self.store.save(dev_name(dev.slot), rec.encode())
        dev.rec = rec
        self.devices[mac] = dev

    def _delete_device(self, mac: bytes) -> None:
        dev = self.devices.pop(mac, None)
        if dev is not None:
            self.store.erase(dev_name(dev.slot))

    def ensure_group(self) -> None:
        """First start without a group record: draw ``G_1`` (§4.5) and persist epoch 1."""
        if self.epochs.current is None:
            self.epochs.set(1, self.rng(32))
            self._save_group()

    # -- operations ------------------------------------------------------------------------
    def provision(self, now_ms: int | None = None) -> list[Outgoing]:
        """Scan and provision newcomers; also the "add a device later" operation (§9.5)."""
        if now_ms is not None:
            self._advance_clock(now_ms)
        if self.running:
            raise WrongState("a provisioning run is already in progress")
        self.ensure_group()
        self.running = self.scanning = True
        self.found.clear()
        self.peers = {}
        self._secured = []
        self._scan_id = self._draw_nonzero(4)
        self._t_start = self.now_ms
        self._scan_end = self.now_ms + self.config.scan_duration_ms
        self._next_scan = self.now_ms
        return self._on_tick()

    start = provision

    def rekey(self, now_ms: int | None = None) -> list[Outgoing]:
        """§9.2: stage ``E + 1`` on every ACTIVE device, then activate it everywhere."""
        if now_ms is not None:
            self._advance_clock(now_ms)
        if self.rollout is not None:
            raise WrongState("a re-key, add or remove is already rolling out")
        self.ensure_group()
        if self.epochs.epoch >= EPOCH_MAX:
            raise Exhausted("epoch space exhausted: erase every node and re-provision")
        stg = self.epochs.staged
        if stg is None:
            self.epochs.stage(self.epochs.epoch + 1, self.rng(32))
            stg = self.epochs.staged
        assert stg is not None
        self._save_group(rollout=True)
        self.rollout = Rollout(stg.epoch, stg.secret, self.now_ms)
        self.rollout.queue = [
            m
            for m, d in self.devices.items()
            if d.rec.state is DeviceState.ACTIVE and d.rec.staged_acked < stg.epoch
        ]
        self.rollout.acked = [
            m
            for m, d in self.devices.items()
            if d.rec.state is DeviceState.ACTIVE and d.rec.staged_acked >= stg.epoch
        ]
        return self._rollout_step()

    def remove(self, mac: bytes, now_ms: int | None = None) -> list[Outgoing]:
        """§9.5: revoke ``mac``: UNPROVISION it and re-key every other ACTIVE device."""
        if now_ms is not None:
            self._advance_clock(now_ms)
        dev = self.devices.get(mac)
        if dev is None:
            raise WrongState(f"no device record for {mac.hex()}")
        if self.rollout is not None:
            raise WrongState("a re-key, add or remove is already rolling out")
        r = dev.rec
        self._save_device(
            mac,
            DeviceRecord(
                r.mac, r.k_dev, r.k_dev_pending, DeviceState.REMOVING, r.acked_epoch, r.staged_acked
            ),
        )

        def done(ack: CtrlAck | None, why: str) -> None:
            self._delete_device(mac)
            self._emit(DeviceRemoved(mac, ack is not None))

        out = self._send_ctl(mac, UnprovisionOp(), done)
        return out + self.rekey()

    def reset(self, mac: bytes, window_s: int | None = None) -> list[Outgoing]:
        """CTRL RESET: open a re-pair window on ``mac`` (§5.1)."""
        if mac not in self.devices:
            raise WrongState(f"no device record for {mac.hex()}")
        w = window_s if window_s is not None else self.config.repair_window_s

        def done(ack: CtrlAck | None, why: str) -> None:
            self.stats["reset_ok" if ack else "reset_failed"] += 1

        return self._send_ctl(mac, ResetOp(w), done)

    def status(self) -> dict[str, object]:
        st = super().status()
        st["devices"] = {
            m.hex(): {"state": d.rec.state.name, "acked_epoch": d.rec.acked_epoch}
            for m, d in sorted(self.devices.items())
        }
        st["rollout"] = self.rollout.epoch if self.rollout else 0
        return st

    # -- retransmission (§6) ---------------------------------------------------------------
    def _timeout(self, k: int) -> int:
        return min(self.config.retry_base_ms << k, self.config.retry_cap_ms)

    def _retx(self, frame: bytes) -> Retx:
        return Retx(frame, self.now_ms + self._timeout(0))

    def _due(self, r: Retx, dst: bytes, out: list[Outgoing]) -> bool:
        """Handle a deadline; True when the attempt is over."""
        if self.now_ms < r.deadline:
            return False
        if r.retries >= self.config.retry_max:
            return True
        r.retries += 1
        r.deadline = self.now_ms + self._timeout(r.retries)
        self.stats["tx_retransmits"] += 1
        out.append(Outgoing(dst, r.frame))
        return False

    # -- time ------------------------------------------------------------------------------
    def _on_tick(self) -> list[Outgoing]:
        out: list[Outgoing] = []
        if self.scanning:
            if self.now_ms >= self._scan_end:
                self.scanning = False
                out += self._end_scan()
            elif self.now_ms >= self._next_scan:
                out.append(Outgoing(BROADCAST_MAC, ScanReq(self._scan_id).encode()))
                self._next_scan = self.now_ms + self.config.scan_interval_ms
        for p in list(self.peers.values()):
            if p.retx is not None and p.step in (Step.W_HS2, Step.W_HS4, Step.W_ACK):
                if self._due(p.retx, p.mac, out):
                    if p.step is Step.W_ACK:
                        self._fail(p, "timeout")
                    else:
                        self._retry_attempt(p, 0)
        for c in list(self.ctls.values()):
            if self._due(c.retx, c.mac, out):
                del self.ctls[c.mac]
                c.on_done(None, "timeout")
        if self.running and not self.scanning:
            out += self._advance()
        if self.rollout is not None:
            out += self._rollout_step()
        return out

    # -- discovery -------------------------------------------------------------------------
    def _on_scan_resp(self, src: bytes, resp: ScanResp) -> list[Outgoing]:
        if not self.scanning or resp.scan_id != self._scan_id:
            raise WrongState("SCAN_RESP outside a scan or for another scan_id")
        if src in self.found:
            raise Duplicate("second SCAN_RESP from this responder")
        if len(self.found) >= self.config.max_responders:
            self.stats["scan_overflow"] += 1
            return []
        self.found[src] = resp
        return []

    def _end_scan(self) -> list[Outgoing]:
        self._scan_ms = self.now_ms - self._t_start
        out: list[Outgoing] = []
        for mac, resp in self.found.items():
            dev = self.devices.get(mac)
            if resp.state == ScanState.UNPROVISIONED:
                self.peers[mac] = Peer(mac, rejoin=dev is not None)
            elif resp.state == ScanState.REPAIR_OPEN:
                self.peers[mac] = Peer(mac, repair=dev is not None)
            elif resp.state == ScanState.PROVISIONED_BY_YOU:
                out += self._resolve(mac, resp)
        self._emit(ScanDone(len(self.peers), self._scan_ms))
        return out

    def _resolve(self, mac: bytes, resp: ScanResp) -> list[Outgoing]:
        """§6.1 unfinished record / §3 outdated epoch: fresh KEY under the matching key."""
        dev = self.devices.get(mac)
        if dev is None:
            self.stats["scan_unknown_provisioned"] += 1
            return []
        r = dev.rec
        unfinished = r.state is DeviceState.PENDING_KEY or any(r.k_dev_pending)
        if not unfinished and resp.epoch >= self.epochs.epoch:
            return []
        k = r.k_dev
        if any(r.k_dev_pending) and pair_id(r.k_dev_pending) == resp.pair_id:
            k = r.k_dev_pending
        elif pair_id(r.k_dev) != resp.pair_id:
            self.stats["scan_pair_id_unknown"] += 1
            return []
        self._save_device(
            mac, DeviceRecord(mac, k, bytes(32), r.state, r.acked_epoch, r.staged_acked)
        )
        return self._deliver_current(mac)

    def _deliver_current(self, mac: bytes) -> list[Outgoing]:
        cur = self._current()

        def done(ack: CtrlAck | None, why: str) -> None:
            if ack is not None:
                self._mark_active(mac, cur.epoch)

        return self._send_ctl(mac, KeyOp(True, cur.epoch, self.grace_s, cur.secret), done)

    # -- handshakes (§6.1) -----------------------------------------------------------------
    def _advance(self) -> list[Outgoing]:
        out: list[Outgoing] = []
        busy = sum(1 for p in self.peers.values() if p.busy)
        for p in self.peers.values():
            if busy >= self.config.max_handshakes:
                break
            if p.step is Step.FOUND and self.now_ms >= p.not_before:
                out += self._send_hs1(p)
                busy += 1
        if not any(
            p.step in (Step.FOUND, Step.W_HS2, Step.W_HS4, Step.W_ACK) for p in self.peers.values()
        ):
            self.running = False
            ok = tuple(self._secured)
            bad = tuple(m for m, p in self.peers.items() if p.step is not Step.DONE)
            self._emit(ProvisionDone(ok, bad, self.now_ms - self._t_start, self._scan_ms))
        return out

    def _send_hs1(self, p: Peer) -> list[Outgoing]:
        p.attempts += 1
        p.sid = self._draw_nonzero(4)
        p.e_i_priv = self.rng(32)
        p.hs1 = Hs1(p.sid, SUITE_1, crypto.x25519_public(p.e_i_priv)).encode()
        p.hs2 = p.hs3 = b""
        p.keys = None
        p.step = Step.W_HS2
        p.retx = self._retx(p.hs1)
        return [Outgoing(p.mac, p.hs1)]

    def _retry_attempt(self, p: Peer, wait: int) -> None:
        if p.attempts < self.config.hs_attempts:
            p.step, p.retx, p.not_before = Step.FOUND, None, self.now_ms + wait
        else:
            self._fail(p, "timeout")

    def _fail(self, p: Peer, reason: str) -> None:
        if p.step is Step.FAILED:
            return  # §6.1 FAILED: anything for this peer is ignored (a W_ACK timeout is seen twice)
        p.step, p.retx, p.keys = Step.FAILED, None, None
        self.stats["hs_failed"] += 1
        self._emit(PeerFailed(p.mac, reason))

    def _peer(self, src: bytes, sid: int) -> Peer:
        p = self.peers.get(src)
        if p is None or not p.busy or p.sid != sid:
            raise WrongState("no handshake with this responder and sid")
        return p

    def _on_hs2(self, src: bytes, body: bytes) -> list[Outgoing]:
        hs2 = Hs2.decode(body)
        p = self._peer(src, hs2.sid)
        if p.step is Step.W_HS4 and body == p.hs2:
            self.drop("duplicate")
            return [Outgoing(src, p.hs3)]
        if p.step is not Step.W_HS2:
            raise WrongState("HS2 not expected now")
        try:
            shared = dh(p.e_i_priv, hs2.e_r)
        except V2Error:
            self._retry_attempt(p, 0)
            return self._advance()
        p.keys = HandshakeKeys.derive(shared, self.config.pop, self.mac, src, p.hs1, body)
        p.hs2 = body
        p.hs3 = Hs3(p.sid, p.keys.conf_i).encode()
        p.step, p.retx = Step.W_HS4, self._retx(p.hs3)
        return [Outgoing(src, p.hs3)]

    def _on_hs4(self, src: bytes, body: bytes) -> list[Outgoing]:
        hs4 = Hs4.decode(body)
        p = self._peer(src, hs4.sid)
        if p.step is not Step.W_HS4 or p.keys is None:
            raise WrongState("HS4 not expected now")
        if not p.keys.verify_conf_r(th3(p.keys.th2, p.hs3), hs4.conf):
            self._fail(p, "pop_mismatch")
            return self._advance()
        k_dev = p.keys.k_dev
        dev = self.devices.get(src)
        try:
            if p.repair and dev is not None:
                r = dev.rec
                rec = DeviceRecord(src, r.k_dev, k_dev, r.state, r.acked_epoch, r.staged_acked)
            else:
                rec = DeviceRecord(src, k_dev, bytes(32), DeviceState.PENDING_KEY, 0, 0)
            self._save_device(src, rec)
        except StoreFail:
            self._fail(p, "store_fail")
            return self._advance()
        cur = self._current()
        epoch, secret = cur.epoch, cur.secret
        if p.rejoin:
            stg = self.epochs.staged
            if stg is None:
                self.epochs.stage(cur.epoch + 1, self.rng(32))
                self._save_group(rollout=True)
                stg = self.epochs.staged
            assert stg is not None
            epoch, secret = stg.epoch, stg.secret
        p.step, p.retx = Step.W_ACK, None

        def done(ack: CtrlAck | None, why: str) -> None:
            if ack is None:
                self._fail(p, why)
                return
            d = self.devices[src].rec
            self._save_device(
                src,
                DeviceRecord(
                    src, k_dev, bytes(32), DeviceState.ACTIVE, epoch, epoch if p.rejoin else 0
                ),
            )
            _ = d
            p.step = Step.DONE
            self._secured.append(src)
            self._emit(PeerSecured(src))
            if p.rejoin and self.rollout is None:
                self._pending_rekey = True

        out = self._send_ctl(src, KeyOp(True, epoch, self.grace_s, secret), done, k_dev)
        p.retx = self.ctls[src].retx if src in self.ctls else None
        return out

    def _on_hs_err(self, src: bytes, body: bytes) -> list[Outgoing]:
        err = HsErr.decode(body)
        p = self._peer(src, err.sid)
        if p.step not in (Step.W_HS2, Step.W_HS4):
            raise WrongState("HS_ERR not expected now")
        if err.code in (HsErrCode.BUSY, HsErrCode.BAD_KEY, HsErrCode.NO_SESSION):
            wait = (
                max(err.retry_after_ms, self.config.retry_base_ms)
                if err.code is HsErrCode.BUSY
                else 0
            )
            self._retry_attempt(p, wait)
        elif err.code is HsErrCode.POP_MISMATCH:
            self._fail(p, "pop_mismatch")
        else:
            self._fail(p, "malformed")
        return self._advance()

    # -- control (§5) ----------------------------------------------------------------------
    def _send_ctl(
        self,
        mac: bytes,
        body: CtlBody,
        on_done: Callable[[CtrlAck | None, str], None],
        k_dev: bytes | None = None,
    ) -> list[Outgoing]:
        if k_dev is None:
            k_dev = self.devices[mac].rec.k_dev
        key = k_ctl(k_dev, self.mac, mac)
        c = self.counter.take()
        frame = seal(key, FrameType.CTRL, 0, c, self.mac, mac, body.encode())
        old = self.ctls.pop(mac, None)
        if old is not None:
            old.on_done(None, "superseded")
        self.ctls[mac] = Ctl(mac, key, k_dev, body, c, self._retx(frame), on_done)
        self.stats["tx_ctrl"] += 1
        return [Outgoing(mac, frame)]

    def _on_ctrl_ack(self, src: bytes, dst: bytes, body: bytes) -> list[Outgoing]:
        ctl = self.ctls.get(src)
        if ctl is None:
            raise WrongState("CTRL_ACK without an outstanding request")
        hdr = SecuredHeader.decode(body)
        try:
            ack = CtrlAck.decode(open_(ctl.key, body, src, dst))
        except AuthFailed:
            raise
        except V2Error as exc:
            raise Malformed(str(exc)) from exc
        if ack.req_counter != ctl.counter:
            raise WrongState("CTRL_ACK for another request")
        cur = self.epochs.current
        if cur is not None:
            cur.table.sync_at(src, hdr.counter, self.now_ms)
        del self.ctls[src]
        why = ""
        ok = ack.status is AckStatus.OK and ack.op == ctl.body.encode()[0]
        if ok and isinstance(ctl.body, KeyOp):
            b = ctl.body
            ok = crypto.constant_time_equal(
                ack.key_check, key_check(ctl.k_dev, b.epoch, b.group_secret)
            )
        if not ok:
            why = "store_fail" if ack.status is AckStatus.STORE_FAIL else "key_echo"
        ctl.on_done(ack if ok else None, why)
        out: list[Outgoing] = []
        if self._pending_rekey and self.rollout is None:
            self._pending_rekey = False
            out += self.rekey()
        return out + (self._advance() if self.running and not self.scanning else [])

    def _mark_active(self, mac: bytes, epoch: int) -> None:
        d = self.devices.get(mac)
        if d is not None:
            r = d.rec
            self._save_device(
                mac,
                DeviceRecord(
                    mac, r.k_dev, bytes(32), DeviceState.ACTIVE, epoch, max(r.staged_acked, 0)
                ),
            )
        self.stragglers.pop(mac, None)

    # -- re-key rollout (§9.2) -------------------------------------------------------------
    def _rollout_step(self) -> list[Outgoing]:
        ro = self.rollout
        if ro is None:
            return []
        out: list[Outgoing] = []
        in_flight = sum(1 for m in self.ctls if m in ro.queue or m in self._rolling)
        while ro.queue and in_flight < self.config.max_handshakes:
            mac = ro.queue.pop(0)
            if mac not in self.devices:
                continue
            self._rolling.add(mac)
            in_flight += 1
            out += self._send_ctl(
                mac, KeyOp(False, ro.epoch, self.grace_s, ro.secret), self._staged_done(mac, ro)
            )
        pending = ro.queue or any(m in self._rolling for m in self.ctls)
        if not pending or self.now_ms - ro.started >= self.config.rekey_timeout_ms:
            out += self._finish_rollout(ro)
        return out

    def _staged_done(self, mac: bytes, ro: Rollout) -> Callable[[CtrlAck | None, str], None]:
        def done(ack: CtrlAck | None, why: str) -> None:
            self._rolling.discard(mac)
            if ack is None:
                ro.failed.append(mac)
                return
            d = self.devices.get(mac)
            if d is not None:
                r = d.rec
                self._save_device(
                    mac,
                    DeviceRecord(mac, r.k_dev, r.k_dev_pending, r.state, r.acked_epoch, ro.epoch),
                )
            ro.acked.append(mac)

        return done

    def _finish_rollout(self, ro: Rollout) -> list[Outgoing]:
        self.rollout = None
        for mac in list(self._rolling):
            ctl = self.ctls.pop(mac, None)
            if ctl is not None:
                ro.failed.append(mac)
        self._rolling.clear()
        self.epochs.activate_staged(self.now_ms)
        self._save_group(rollout=False)
        for mac in ro.acked:
            if mac in self.devices:
                self._mark_active(mac, ro.epoch)
        stragglers = tuple(
            m
            for m, d in self.devices.items()
            if d.rec.state is DeviceState.ACTIVE and d.rec.acked_epoch < ro.epoch
        )
        for m in stragglers:
            self.stragglers[m] = self.now_ms - self.config.straggler_gap_ms
        self._emit(EpochActivated(ro.epoch))
        self._emit(RekeyDone(ro.epoch, tuple(ro.acked), stragglers))
        return self._broadcast_sync(0, self.config.announce_repeat, self.config.announce_gap_ms)

    def _heard(self, src: bytes) -> None:
        """§9.2 step 4: a frame claiming a straggler's MAC triggers one KEY ACTIVATE=1."""
        t = self.stragglers.get(src)
        if t is None or src in self.ctls or self.now_ms - t < self.config.straggler_gap_ms:
            return
        self.stragglers[src] = self.now_ms
        self._straggler_out += self._deliver_current(src)

    # -- dispatch --------------------------------------------------------------------------
    def on_frame(
        self, src: bytes, dst: bytes, body: bytes, now_ms: int | None = None
    ) -> list[Outgoing]:
        self._straggler_out = []
        out = super().on_frame(src, dst, body, now_ms)
        extra, self._straggler_out = self._straggler_out, []
        return out + extra

    def _on_role_frame(
        self, type_: FrameType, src: bytes, dst: bytes, body: bytes
    ) -> list[Outgoing]:
        if type_ is FrameType.SCAN_RESP:
            self._heard(src)
            return self._on_scan_resp(src, ScanResp.decode(body))
        if type_ is FrameType.HS2:
            return self._on_hs2(src, body)
        if type_ is FrameType.HS4:
            return self._on_hs4(src, body)
        if type_ is FrameType.HS_ERR:
            return self._on_hs_err(src, body)
        return self._on_ctrl_ack(src, dst, body)

"""What both v2 roles share: intake pipeline, frame counter, epochs, the data plane and SYNC.

The machines follow DESIGN.md §2: no socket, thread or clock. A driver calls

* ``on_frame(src, dst, body, now_ms) -> list[Outgoing]`` for every received frame body,
* ``tick(now_ms) -> list[Outgoing]`` whenever time passes,
* ``take_events()`` to collect what happened,
* ``send_data(payload, dst)`` to send app data (DATA when secured, DATA_PLAIN otherwise).

All randomness comes from ``rng(n)`` in the order of PROTOCOL.md §4.5; all persistence goes
through a :class:`~.store.Store` (hand the same store to a new instance to simulate a reboot).
Drops are counted in ``stats["drop_<reason>"]`` and in the §2.6 counters (``rx_*``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from .constants import (
    BROADCAST_MAC,
    GROUP_TYPES,
    SECURED_TYPES,
    FrameType,
    V2Config,
)
from .data import Sync, build_data, build_plain, build_sync, check_payload
from .epochs import EpochKey, Epochs
from .errors import (
    EpochRejected,
    Foreign,
    PlaintextRejected,
    Replay,
    Unsynced,
    V2Error,
)
from .events import DataReceived, EpochActivated, Event, Outgoing
from .framing import FrameClass, SecuredHeader, check_frame, classify, open_, seal
from .limiter import TokenBucket
from .replay import EntryState
from .store import MemoryStore, Store

Rng = Callable[[int], bytes]

#: §2.6: the ``espnow_sec_stats_t`` counter each drop reason increments.
STATS_COUNTER = {
    "malformed": "rx_malformed",
    "foreign": "rx_foreign",
    "auth": "rx_auth_fail",
    "replay": "rx_duplicate",
    "duplicate": "rx_duplicate",
    "unsynced": "rx_unexpected",
    "epoch": "rx_unexpected",
    "table_full": "rx_unexpected",
    "state": "rx_unexpected",
    "rate_limited": "rx_unexpected",
    "plaintext": "rx_plaintext",
}


def system_rng(n: int) -> bytes:
    return os.urandom(n)


class V2Node:
    """Base of both roles. Subclasses handle the handshake and control types of their role."""

    ROLE_TYPES: frozenset[FrameType] = frozenset()

    def __init__(
        self, config: V2Config, rng: Rng = system_rng, store: Store | None = None, now_ms: int = 0
    ) -> None:
        self.config = config
        self.mac = config.mac
        self.rng = rng
        self.store: Store = store if store is not None else MemoryStore()
        self.now_ms = now_ms
        self.stats: Counter[str] = Counter()
        self.epochs = Epochs(
            config.replay_senders, config.replay_idle_s * 1000, config.sync_retries
        )
        self.epochs.grace_ms = config.epoch_grace_s * 1000
        self._events: list[Event] = []
        self._timers: list[tuple[int, int, Callable[[], list[Outgoing]]]] = []
        self._timer_seq = 0
        self._bcast_challenge = 0
        self._bcast_until = 0
        self._sync_limiter = TokenBucket(8, 25)
        from .counter import FrameCounter  # local: keeps the import graph one-way

        self.counter = FrameCounter(
            store=self.store,
            block=config.counter_block,
            key_record_exists=self._key_record_exists(),
        )

    # -- driver interface -----------------------------------------------------------------
    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def tick(self, now_ms: int) -> list[Outgoing]:
        self._advance_clock(now_ms)
        out: list[Outgoing] = []
        while True:
            due = [t for t in self._timers if t[0] <= self.now_ms]
            if not due:
                break
            first = min(due)
            self._timers.remove(first)
            out += first[2]()
        self.epochs.expire(self.now_ms)
        out += self._sync_retries()
        out += self._on_tick()
        return out

    def on_frame(
        self, src: bytes, dst: bytes, body: bytes, now_ms: int | None = None
    ) -> list[Outgoing]:
        """Feed one received frame body with its radio addresses (PROTOCOL.md §2.6)."""
        if now_ms is not None:
            self._advance_clock(now_ms)
        self.stats["rx_frames"] += 1
        try:
            return self._receive(bytes(src), bytes(dst), bytes(body))
        except V2Error as exc:
            self.drop(exc.reason)
            return []

    def send_data(self, payload: bytes, dst: bytes = BROADCAST_MAC) -> list[Outgoing]:
        """§7.4: DATA under the current epoch when secured, else DATA_PLAIN; 1..max bytes."""
        check_payload(payload, self.config.max_payload)
        cur = self.epochs.current
        if cur is None:
            self.stats["tx_plaintext"] += 1
            return [Outgoing(dst, build_plain(payload))]
        c = self.counter.take()
        self.stats["tx_data"] += 1
        return [Outgoing(dst, build_data(cur.key, cur.epoch, c, self.mac, dst, payload))]

    @property
    def secured(self) -> bool:
        return self.epochs.current is not None

    def status(self) -> dict[str, Any]:
        """Issue 6 ``status``: epoch, peers, counters, drops by reason."""
        cur = self.epochs.current
        return {
            "role": type(self).__name__.lower(),
            "epoch": self.epochs.epoch,
            "staged_epoch": self.epochs.staged_epoch,
            "previous_epoch": self.epochs.previous.epoch if self.epochs.previous else 0,
            "counter_next": self.counter.next,
            "counter_reserved": self.counter.reserved,
            "replay_entries": len(cur.table.entries) if cur else 0,
            "drops": {k[5:]: v for k, v in sorted(self.stats.items()) if k.startswith("drop_")},
            "stats": dict(sorted(self.stats.items())),
        }

    # -- helpers for subclasses -----------------------------------------------------------
    def drop(self, reason: str) -> None:
        self.stats[f"drop_{reason}"] += 1
        self.stats[STATS_COUNTER.get(reason, "rx_unexpected")] += 1
        if reason == "plaintext":
            self.stats["rx_plaintext_dropped"] += 1

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _advance_clock(self, now_ms: int) -> None:
        if now_ms < self.now_ms:
            raise ValueError(f"time went backwards: {now_ms} < {self.now_ms}")
        self.now_ms = now_ms

    def _draw_nonzero(self, n: int) -> int:
        """``sid``, ``scan_id``, ``challenge``: an all-zero draw is discarded (§4.5)."""
        while True:
            v = int.from_bytes(self.rng(n), "big")
            if v:
                return v

    def _delay(self, jitter_ms: int) -> int:
        """A random delay 0..J ms: one 2-byte draw, ``BE16(r) mod (J + 1)``; none if J = 0."""
        if jitter_ms <= 0:
            return 0
        return int.from_bytes(self.rng(2), "big") % (jitter_ms + 1)

    def _after(self, delay_ms: int, fn: Callable[[], list[Outgoing]]) -> list[Outgoing]:
        """Run ``fn`` now (delay 0) or from the first tick at or after ``now + delay``."""
        if delay_ms <= 0:
            return fn()
        self._timer_seq += 1
        self._timers.append((self.now_ms + delay_ms, self._timer_seq, fn))
        return []

    def _seal(self, key: bytes, type_: FrameType, epoch: int, dst: bytes, pt: bytes) -> bytes:
        c = self.counter.take()
        return seal(key, type_, epoch, c, self.mac, dst, pt)

    def _key_record_exists(self) -> bool:
        return False

    # -- intake ----------------------------------------------------------------------------
    def _receive(self, src: bytes, dst: bytes, body: bytes) -> list[Outgoing]:
        cls, _why = classify(body, "v2")
        if cls is FrameClass.MALFORMED:
            self.drop("malformed")
            return []
        if src == self.mac or cls is not FrameClass.V2:
            raise Foreign("not a v2 frame for this node")
        type_ = check_frame(body, src, dst, self.mac, self.config.frame_max)
        if type_ is FrameType.DATA:
            return self._on_data(src, dst, body)
        if type_ is FrameType.SYNC:
            return self._on_sync(src, dst, body)
        if type_ is FrameType.DATA_PLAIN:
            self._on_plain(src, dst, body)
            return []
        if type_ not in self.ROLE_TYPES:
            raise Foreign(f"{type_.name} is not for this role")
        if type_ in SECURED_TYPES:
            self._heard(src)
        return self._on_role_frame(type_, src, dst, body)

    def _on_role_frame(
        self, type_: FrameType, src: bytes, dst: bytes, body: bytes
    ) -> list[Outgoing]:
        raise Foreign(f"{type_.name} is not for this role")

    def _heard(self, src: bytes) -> None:
        """Hook: some frame claiming ``src`` arrived (initiator straggler rule, §9.2 step 4)."""

    # -- data plane (§8.2, §10) --------------------------------------------------------------
    def _on_plain(self, src: bytes, dst: bytes, body: bytes) -> None:
        if self.secured:
            raise PlaintextRejected("DATA_PLAIN from a secured network is never delivered")
        self.stats["rx_plaintext"] += 1
        self._emit(DataReceived(src, body[4:], "plaintext", dst == BROADCAST_MAC))

    def _select(self, src: bytes, epoch: int, allow_previous: bool = True) -> tuple[str, EpochKey]:
        try:
            return self.epochs.select(epoch, self.now_ms, allow_previous)
        except EpochRejected:
            self._heard(src)
            raise

    def _on_data(self, src: bytes, dst: bytes, body: bytes) -> list[Outgoing]:
        hdr = SecuredHeader.decode(body)
        slot, ek = self._select(src, hdr.epoch)
        w = ek.table.synced(src)
        if w is not None and not w.check(hdr.counter):
            raise Replay(f"counter {hdr.counter} from {src.hex()} already seen or too old")
        pt = open_(ek.key, body, src, dst)
        self._heard(src)
        out: list[Outgoing] = []
        if slot == "staged":
            out += self._activate(self.epochs.activate_staged(self.now_ms))
            ek = self._current()
        entry = ek.table.get(src)
        if entry is None:
            if not ek.table.frozen:
                out += self._start_sync(ek, src)
                self.drop("unsynced")
                return out
            raise Unsynced("previous-epoch frame from a sender without a synced window")
        if entry.state is EntryState.PENDING or entry.window is None:
            self.drop("unsynced")
            return out
        if not entry.window.check(hdr.counter):
            raise Replay("counter seen while this frame was processed")
        entry.window.commit(hdr.counter)
        entry.t_last = self.now_ms
        self.stats["rx_data"] += 1
        self._emit(DataReceived(src, pt, "encrypted", dst == BROADCAST_MAC, ek.epoch))
        return out

    def _current(self) -> EpochKey:
        cur = self.epochs.current
        assert cur is not None
        return cur

    # -- sync (§8.3-8.4) ---------------------------------------------------------------------
    def _start_sync(self, ek: EpochKey, src: bytes) -> list[Outgoing]:
        if not ek.table.slot_for(src, self.now_ms):
            self.drop("table_full")
            return []
        entry = ek.table.start_pending(src, self._draw_nonzero(8), self.now_ms)
        return [self._sync_frame(src, Sync(entry.challenge, 0))]

    def _sync_frame(self, dst: bytes, sync: Sync) -> Outgoing:
        cur = self._current()
        c = self.counter.take()
        self.stats["tx_sync"] += 1
        return Outgoing(dst, build_sync(cur.key, cur.epoch, c, self.mac, dst, sync))

    def _sync_retries(self) -> list[Outgoing]:
        cur = self.epochs.current
        if cur is None:
            return []
        out: list[Outgoing] = []
        for e in list(cur.table.entries.values()):
            if e.state is not EntryState.PENDING:
                continue
            if self.now_ms - e.t_sent < self.config.sync_retry_ms:
                continue
            if e.tries >= self.config.sync_retries:
                del cur.table.entries[e.mac]
                continue
            e.tries += 1
            e.t_sent = self.now_ms
            out.append(self._sync_frame(e.mac, Sync(e.challenge, 0)))
        return out

    def _on_sync(self, src: bytes, dst: bytes, body: bytes) -> list[Outgoing]:
        hdr = SecuredHeader.decode(body)
        slot, ek = self._select(src, hdr.epoch, allow_previous=False)
        pt = open_(ek.key, body, src, dst)
        self._heard(src)
        out: list[Outgoing] = []
        if slot == "staged":
            out += self._activate(self.epochs.activate_staged(self.now_ms))
        cur = self._current()
        msg = Sync.decode(pt)
        self.stats["rx_sync"] += 1
        entry = cur.table.get(src)
        if msg.echo:
            pending = entry is not None and entry.state is EntryState.PENDING
            if (pending and entry is not None and entry.challenge == msg.echo) or (
                msg.echo == self._bcast_challenge and self.now_ms < self._bcast_until
            ):
                if not cur.table.sync_at(src, hdr.counter, self.now_ms):
                    self.drop("table_full")
        if msg.challenge:
            out += self._sync_reply(cur, src, msg.challenge, dst == BROADCAST_MAC)
        return out

    def _sync_reply(
        self, cur: EpochKey, src: bytes, their: int, was_broadcast: bool
    ) -> list[Outgoing]:
        if not self._sync_limiter.take(self.now_ms):
            self.drop("rate_limited")
            return []
        ours = 0
        entry = cur.table.get(src)
        if entry is None or entry.state is not EntryState.SYNCED:
            if entry is not None:
                ours = entry.challenge
            elif cur.table.slot_for(src, self.now_ms):
                ours = cur.table.start_pending(src, self._draw_nonzero(8), self.now_ms).challenge
        delay = self._delay(self.config.sync_jitter_ms) if was_broadcast else 0
        epoch = cur.epoch

        def send() -> list[Outgoing]:
            now_cur = self.epochs.current
            if now_cur is None or now_cur.epoch != epoch:
                return []
            return [self._sync_frame(src, Sync(ours, their))]

        return self._after(delay, send)

    def _broadcast_sync(
        self, delay_ms: int = 0, repeat: int = 1, gap_ms: int = 0
    ) -> list[Outgoing]:
        """Broadcast ``{challenge, 0}`` (§8.4), ``repeat`` times with one challenge."""
        if not self.secured:
            return []
        challenge = self._draw_nonzero(8)
        epoch = self.epochs.epoch
        out: list[Outgoing] = []
        for i in range(repeat):

            def send() -> list[Outgoing]:
                if self.epochs.epoch != epoch:
                    return []
                self._bcast_challenge = challenge
                self._bcast_until = self.now_ms + self.config.sync_bcast_valid_ms
                return [self._sync_frame(BROADCAST_MAC, Sync(challenge, 0))]

            out += self._after(delay_ms + i * gap_ms, send)
        return out

    def _join_sync(self) -> list[Outgoing]:
        """Broadcast SYNC after a random 0..SYNC_SPREAD_MS delay (boot, first key, new epoch)."""
        if not self.config.sync_on_join or not self.secured:
            return []
        return self._broadcast_sync(self._delay(self.config.sync_spread_ms))

    def _activate(self, epoch: int) -> list[Outgoing]:
        """Hook after a staged epoch became current; subclasses persist it (§9.3)."""
        self._emit(EpochActivated(epoch))
        self._persist_keys()
        return self._join_sync()

    def _persist_keys(self) -> None:
        """Write the key record after a change of current/staged epoch (subclass)."""

    def _on_tick(self) -> list[Outgoing]:
        return []


def group_frame(type_: FrameType) -> bool:
    return type_ in GROUP_TYPES

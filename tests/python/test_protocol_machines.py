"""Initiator vs Responder state machines in one process: N responders, loss, duplicates, PoP."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from espnow_sec.protocol import (
    BROADCAST_MAC,
    DataReceived,
    Initiator,
    KeyInstalled,
    NodeConfig,
    Outgoing,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    Responder,
    ScanDone,
)
from espnow_sec.protocol.frame import DataType, Frame, Header
from espnow_sec.protocol.node import Node
from reference_support import seeded_rng

INIT_MAC = bytes.fromhex("020000000001")
APP_KEY = bytes(range(0x40, 0x60))


def resp_mac(i: int) -> bytes:
    return bytes([2, 0, 0, 1, i >> 8, i & 0xFF])


@dataclass
class Air:
    """A tiny deterministic radio: delivery after 1 ms, seeded loss and duplication."""

    nodes: dict[bytes, Node]
    loss: float = 0.0
    dup: float = 0.0
    seed: int = 0
    drop: Callable[[bytes, bytes, bytes], bool] = lambda src, dst, frame: False
    now: int = 0
    queue: list[tuple[int, bytes, bytes, bytes]] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        self.r = random.Random(self.seed)

    def send(self, src: bytes, outs: list[Outgoing]) -> None:
        for o in outs:
            self.sent += 1
            for mac in self.nodes:
                if mac == src or (o.dst != BROADCAST_MAC and o.dst != mac):
                    continue
                if self.drop(src, mac, o.frame) or self.r.random() < self.loss:
                    continue
                copies = 2 if self.r.random() < self.dup else 1
                for _ in range(copies):
                    self.queue.append((self.now + 1, mac, src, o.frame))

    def run(self, until_ms: int, step: int = 5) -> None:
        while self.now < until_ms:
            self.now += step
            due = [q for q in self.queue if q[0] <= self.now]
            self.queue = [q for q in self.queue if q[0] > self.now]
            for _, dst, src, frame in due:
                self.send(dst, self.nodes[dst].on_frame(src, dst, frame, self.now))
            for mac, node in self.nodes.items():
                self.send(mac, node.tick(self.now))


def network(
    n: int,
    pop: bytes = b"espnow_pop",
    responder_pops: list[bytes] | None = None,
    seed: int = 1,
    **cfg: int,
) -> tuple[Initiator, list[Responder], dict[bytes, Node]]:
    init = Initiator(NodeConfig(INIT_MAC, pop=pop, **cfg), seeded_rng(seed))
    pops = responder_pops or [pop] * n
    resps = [
        Responder(NodeConfig(resp_mac(i), pop=pops[i], **cfg), seeded_rng(seed * 1000 + i))
        for i in range(n)
    ]
    nodes: dict[bytes, Node] = {INIT_MAC: init, **{r.config.mac: r for r in resps}}
    return init, resps, nodes


def provision(
    n: int, until: int = 20000, loss: float = 0.0, dup: float = 0.0, seed: int = 1, **kw: object
) -> tuple[Initiator, list[Responder], list[object], Air]:
    init, resps, nodes = network(n, seed=seed, **kw)  # type: ignore[arg-type]
    air = Air(nodes, loss=loss, dup=dup, seed=seed)
    air.send(INIT_MAC, init.start(APP_KEY))
    air.run(until)
    return init, resps, init.take_events(), air


def done_event(events: list[object]) -> ProvisionDone:
    done = [e for e in events if isinstance(e, ProvisionDone)]
    assert len(done) == 1, events
    return done[0]


@pytest.mark.parametrize("n", [1, 3, 20])
def test_all_responders_secured_on_a_clean_channel(n: int) -> None:
    init, resps, events, _ = provision(n, max_handshakes=8)
    assert ScanDone(n, 1000) in events
    done = done_event(events)
    assert sorted(done.succeeded) == sorted(r.config.mac for r in resps) and not done.unfinished
    for r in resps:
        assert r.app_key == APP_KEY and r.configured_by == INIT_MAC
        ev = r.take_events()
        assert KeyInstalled(APP_KEY, INIT_MAC) in ev and PeerSecured(INIT_MAC) in ev


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_and_duplicates_are_recovered_by_retries(seed: int) -> None:
    # 25% loss per leg: 10 scan requests make missing a responder's every INFO unlikely (~3e-4)
    init, resps, events, _ = provision(
        6, loss=0.25, dup=0.2, seed=seed, retry_max=10, scan_interval_ms=100
    )
    done = done_event(events)
    assert ScanDone(6, 1000) in events
    assert len(done.succeeded) == 6 and not done.unfinished, (done, init.stats)
    assert all(r.app_key == APP_KEY for r in resps)
    assert init.stats["tx_retry"] > 0


def test_lost_key_resp_is_answered_again_from_cache() -> None:
    lost: list[int] = []

    def drop_first_key_resp(src: bytes, dst: bytes, frame: bytes) -> bool:
        f = Frame.decode(frame)
        if f.header.type == DataType.SECURITY and f.payload[:1] == b"\x04" and not lost:
            lost.append(1)
            return True
        return False

    init, resps, nodes = network(1)
    air = Air(nodes, drop=drop_first_key_resp)
    air.send(INIT_MAC, init.start(APP_KEY))
    air.run(10000)
    assert lost and done_event(init.take_events()).succeeded == (resps[0].config.mac,)


def test_wrong_pop_responder_fails_others_succeed() -> None:
    init, resps, nodes = network(3, responder_pops=[b"espnow_pop", b"other", b"espnow_pop"])
    air = Air(nodes)
    air.send(INIT_MAC, init.start(APP_KEY))
    air.run(20000)
    events = init.take_events()
    done = done_event(events)
    assert set(done.succeeded) == {resp_mac(0), resp_mac(2)} and done.unfinished == (resp_mac(1),)
    assert resps[1].app_key is None
    assert PeerFailed(INIT_MAC, "pop_mismatch") in resps[1].take_events()


def test_silent_responder_times_out_after_retries() -> None:
    init, resps, nodes = network(2, retry_max=3)
    air = Air(
        nodes,
        drop=lambda src, dst, f: (
            src == resp_mac(1) and Frame.decode(f).header.type == DataType.SECURITY
        ),
    )
    air.send(INIT_MAC, init.start(APP_KEY))
    air.run(20000)
    events = init.take_events()
    assert PeerFailed(resp_mac(1), "timeout") in events
    assert done_event(events).unfinished == (resp_mac(1),)


def test_configured_responder_is_not_rescanned_as_target() -> None:
    init, resps, events, air = provision(2)
    air.send(INIT_MAC, init.start(APP_KEY, air.now))
    air.run(air.now + 5000)
    events = init.take_events()
    assert ScanDone(0, 1000) in events and done_event(events).succeeded == ()


def test_stranger_does_not_lock_out_the_real_initiator() -> None:
    stranger = Initiator(NodeConfig(bytes.fromhex("0200000000ee"), pop=b"guess"), seeded_rng(9))
    init, resps, nodes = network(1)
    nodes[stranger.config.mac] = stranger
    air = Air(nodes)
    air.send(stranger.config.mac, stranger.start(bytes(32)))
    air.send(INIT_MAC, init.start(APP_KEY))
    air.run(20000)
    assert resps[0].app_key == APP_KEY and resps[0].configured_by == INIT_MAC
    assert done_event(stranger.take_events()).unfinished == (resps[0].config.mac,)


def test_encrypted_data_after_provisioning_and_plaintext_rejected() -> None:
    init, resps, _, air = provision(2)
    air.send(INIT_MAC, init.send_data(b"hello"))
    air.send(INIT_MAC, init.send_data(b"forged?", encrypt=False))
    air.run(air.now + 50)
    for r in resps:
        got = [e for e in r.take_events() if isinstance(e, DataReceived)]
        assert got == [DataReceived(INIT_MAC, b"hello", True)]
        assert r.stats["rx_plaintext_rejected"] == 1
    with pytest.raises(ValueError, match="no app key"):
        Responder(NodeConfig(resp_mac(9))).send_data(b"x")


def test_garbage_frames_are_counted_not_fatal() -> None:
    r = Responder(NodeConfig(resp_mac(0)), seeded_rng(3))
    bad_record = Frame.build(Header(type=DataType.SECURITY, dest_addr=resp_mac(0)), b"\x02\x09ab")
    for junk in (b"", b"\x2c" * 19, bytes(20), bad_record.encode()):
        assert r.on_frame(INIT_MAC, resp_mac(0), junk) == []
    assert sum(r.stats.values()) >= 3


def test_machines_are_deterministic() -> None:
    a = provision(4, loss=0.1, seed=5)[3]
    b = provision(4, loss=0.1, seed=5)[3]
    assert a.sent == b.sent

"""The v2 machines in-process (issue 6 behaviours), on the tiny simulated air of ``v2.sim``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from espnow_sec.protocol.v2 import (
    BROADCAST_MAC,
    DataReceived,
    DeviceRemoved,
    Initiator,
    MemoryStore,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    RekeyDone,
    Responder,
    Unprovisioned,
    V2Config,
)
from espnow_sec.protocol.v2.constants import FrameType
from espnow_sec.protocol.v2.errors import TooLong, WrongState
from espnow_sec.protocol.v2.sim import Air

from reference_support import seeded_rng  # isort: skip

I_MAC = bytes.fromhex("020000000001")
POP = b"correct horse battery"


def r_mac(i: int) -> bytes:
    return bytes([2, 0, 0, 0, 1, i])


def network(
    n: int,
    pop: bytes = POP,
    drop: Callable[[bytes, bytes, bytes], bool] | None = None,
    seed: int = 1,
) -> tuple[Air, Initiator, list[Responder]]:
    air = Air(drop=drop)
    ini = Initiator(V2Config(I_MAC, pop=POP), seeded_rng(seed))
    air.add(ini)
    rs = []
    for i in range(n):
        r = Responder(V2Config(r_mac(i), pop=pop), seeded_rng(seed * 100 + i))
        air.add(r)
        rs.append(r)
    return air, ini, rs


def provision(air: Air, ini: Initiator, until: int = 20_000) -> None:
    air.send(ini.mac, ini.provision(air.now))
    air.run(air.now + until)


def of(air: Air, mac: bytes, kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in air.events[mac] if isinstance(e, kind)]


def is_type(frame: bytes, t: FrameType) -> bool:
    return len(frame) > 2 and frame[0] == 0xCF and frame[2] == t


def test_n_responders_secured_exactly_once() -> None:
    air, ini, rs = network(6)
    provision(air, ini)
    secured = of(air, I_MAC, PeerSecured)
    assert sorted(e.mac for e in secured) == sorted(r.mac for r in rs)
    done = of(air, I_MAC, ProvisionDone)
    assert len(done) == 1 and len(done[0].succeeded) == 6 and not done[0].unfinished
    for r in rs:
        assert r.provisioned and r.epochs.epoch == 1
        assert of(air, r.mac, PeerSecured) == [PeerSecured(I_MAC)]
        assert r.store.load("v2_resp") is not None
    # data flows both ways, encrypted
    air.send(rs[0].mac, rs[0].send_data(b"temp=21"))
    air.run(air.now + 500)
    for node in [ini, *rs[1:]]:
        got = [e for e in of(air, node.mac, DataReceived) if e.src == rs[0].mac]
        assert got and got[-1].data == b"temp=21" and got[-1].protection == "encrypted"


@pytest.mark.parametrize("lost", [FrameType.CTRL_ACK, FrameType.HS4])
def test_lost_final_confirmation_is_retried(lost: FrameType) -> None:
    dropped: list[bytes] = []

    def drop(src: bytes, dst: bytes, frame: bytes) -> bool:
        if is_type(frame, lost) and not dropped:
            dropped.append(frame)
            return True
        return False

    air, ini, rs = network(1, drop=drop)
    provision(air, ini)
    assert dropped, "the confirmation was never sent"
    assert ini.stats["tx_retransmits"] >= 1
    assert of(air, I_MAC, PeerSecured) == [PeerSecured(rs[0].mac)]
    assert of(air, rs[0].mac, PeerSecured) == [PeerSecured(I_MAC)]
    assert rs[0].provisioned and ini.devices[rs[0].mac].rec.state.name == "ACTIVE"


def test_wrong_pop_fails_cleanly_and_is_slowed_down() -> None:
    air, ini, rs = network(1, pop=b"another pop entirely")
    provision(air, ini)
    r = rs[0]
    assert [e.reason for e in of(air, I_MAC, PeerFailed)] == ["pop_mismatch"]
    assert [e.reason for e in of(air, r.mac, PeerFailed)] == ["pop_mismatch"]
    assert not of(air, I_MAC, PeerSecured) and not r.provisioned
    assert r.store.load("v2_resp") is None and not ini.devices
    assert isinstance(r.store, MemoryStore) and all(n == "v2_ctr" for n, _ in r.store.writes)
    # repeated attempts: the MAC is blocked, with growing blocks
    blocks = []
    for _ in range(3):
        air.send(ini.mac, ini.provision(air.now))
        air.run(air.now + 3000)
        blocks.append(r.backoff.entries[I_MAC].fails)
    assert blocks == [2, 3, 4]
    # right after a failure, the same MAC is refused without any X25519 work
    entry = r.backoff.entries[I_MAC]
    assert entry.blocked_until - entry.t_fail == 8_000  # 1, 2, 4, 8 s
    busy_before = r.stats["tx_hs_err_busy"]
    air.send(ini.mac, ini.provision(air.now))
    air.run(air.now + 1200)
    assert r.stats["tx_hs_err_busy"] > busy_before and entry.fails == 4
    assert r.store.load("v2_resp") is None and not ini.devices


def _secured_network(n: int = 3) -> tuple[Air, Initiator, list[Responder]]:
    air, ini, rs = network(n)
    provision(air, ini)
    assert len(of(air, I_MAC, PeerSecured)) == n
    air.run(air.now + 6000)  # boot / join SYNCs settle
    return air, ini, rs


def test_rekey_moves_everyone_and_grace_is_bounded() -> None:
    air, ini, rs = _secured_network()
    old = rs[0].send_data(b"old epoch frame")
    air.send(ini.mac, ini.rekey(air.now))
    air.run(air.now + 8000)
    done = of(air, I_MAC, RekeyDone)
    assert done and done[0].epoch == 2 and not done[0].stragglers
    assert ini.epochs.epoch == 2 and all(r.epochs.epoch == 2 for r in rs)
    # an old-epoch frame sent before the re-key: accepted in grace, dropped after it
    t_act = rs[1].epochs.previous.t_act if rs[1].epochs.previous else air.now
    assert air.now - t_act < 30_000
    before = len(of(air, rs[1].mac, DataReceived))
    air.send(rs[0].mac, old)
    assert len(of(air, rs[1].mac, DataReceived)) == before + 1
    air.run(t_act + 30_000)
    air.send(rs[0].mac, old)
    assert rs[1].stats["drop_epoch"] == 1
    late = rs[2].epochs
    assert late.previous is None
    air.send(rs[0].mac, rs[0].send_data(b"new epoch"))
    assert of(air, rs[1].mac, DataReceived)[-1].data == b"new epoch"


def test_newcomer_added_without_rekeying_others() -> None:
    air, ini, rs = _secured_network(2)
    ctrl_before = ini.stats["tx_ctrl"]
    floors = [r.pairing.ctl_floor if r.pairing else None for r in rs]
    newcomer = air.add(Responder(V2Config(r_mac(9), pop=POP), seeded_rng(99)))
    assert isinstance(newcomer, Responder)
    provision(air, ini)
    assert ini.stats["tx_ctrl"] == ctrl_before + 1
    assert newcomer.provisioned and newcomer.epochs.epoch == 1
    assert [r.pairing.ctl_floor if r.pairing else None for r in rs] == floors
    assert all(r.epochs.epoch == 1 for r in rs)
    air.send(newcomer.mac, newcomer.send_data(b"hello from new"))
    air.run(air.now + 1000)
    air.send(newcomer.mac, newcomer.send_data(b"second"))
    assert of(air, rs[0].mac, DataReceived)[-1].data == b"second"


def test_members_secured_at_different_times_deliver_the_first_frame() -> None:
    """§8.4 step 2: the early member's answer to the late member's announcement carries its own
    challenge, so one exchange gives both a window; the first frame each way is delivered."""
    air, ini, rs = _secured_network(1)  # the early member announced before the late one had a key
    early = rs[0]
    late = air.add(Responder(V2Config(r_mac(9), pop=POP), seeded_rng(99)))
    assert isinstance(late, Responder)
    tx_sync = early.stats["tx_sync"]
    provision(air, ini)
    assert late.provisioned
    air.run(air.now + 6000)  # join SYNCs settle
    assert early.stats["tx_sync"] == tx_sync + 1  # one answer, no retry needed
    air.send(early.mac, early.send_data(b"early->late", late.mac))
    assert of(air, late.mac, DataReceived)[-1].data == b"early->late"
    air.send(late.mac, late.send_data(b"late->all"))
    assert of(air, early.mac, DataReceived)[-1].data == b"late->all"
    assert early.stats["drop_unsynced"] == 0 and late.stats["drop_unsynced"] == 0


@pytest.mark.parametrize("honest", [True, False])
def test_removed_device_cannot_decrypt_new_epoch(honest: bool) -> None:
    air, ini, rs = _secured_network(3)
    victim = rs[2]
    if not honest:  # a dishonest device never sees the UNPROVISION
        air.drop = lambda s, d, f: d == victim.mac and is_type(f, FrameType.CTRL)
    air.send(ini.mac, ini.remove(victim.mac, air.now))
    air.run(air.now + 15_000)
    assert ini.epochs.epoch == 2 and all(r.epochs.epoch == 2 for r in rs[:2])
    assert victim.mac not in ini.devices
    assert of(air, I_MAC, DeviceRemoved) == [DeviceRemoved(victim.mac, honest)]
    if honest:
        assert of(air, victim.mac, Unprovisioned) and victim.store.load("v2_resp") is None
    got_before = len(of(air, victim.mac, DataReceived))
    air.run(air.now + 31_000)
    air.send(rs[0].mac, rs[0].send_data(b"secret after removal"))
    assert len(of(air, victim.mac, DataReceived)) == got_before
    assert victim.epochs.epoch != 2


def test_replays_rejected_immediately_after_100_and_after_reboot() -> None:
    air, ini, rs = _secured_network(2)
    rx = rs[1]
    first = rs[0].send_data(b"frame 0", rx.mac)
    air.send(rs[0].mac, first)
    n = len(of(air, rx.mac, DataReceived))
    air.send(rs[0].mac, first)
    for i in range(100):
        air.send(rs[0].mac, rs[0].send_data(b"later %d" % i, rx.mac))
    air.send(rs[0].mac, first)
    assert len(of(air, rx.mac, DataReceived)) == n + 100
    assert rx.stats["drop_replay"] == 2
    # receiver reboots: new machine on the same store
    rebooted = Responder(V2Config(rx.mac, pop=POP), seeded_rng(7), rx.store, air.now)
    air.nodes[rx.mac] = rebooted
    air.send(rs[0].mac, first)
    assert not [e for e in air.events[rx.mac][n + 100 :] if e.data == b"frame 0"]
    assert rebooted.stats["drop_unsynced"] == 1


def test_plaintext_from_secured_member_is_rejected_and_counted() -> None:
    air, ini, rs = _secured_network(2)
    plain = bytes([0xCF, 0x02, FrameType.DATA_PLAIN, 0]) + b"unlock door"
    air.inject(rs[0].mac, BROADCAST_MAC, plain)
    assert not [e for e in of(air, rs[1].mac, DataReceived) if e.data == b"unlock door"]
    assert rs[1].stats["rx_plaintext"] == 1 and rs[1].stats["rx_plaintext_dropped"] == 1


def test_payload_limits_and_operation_errors() -> None:
    air, ini, rs = _secured_network(1)
    assert len(rs[0].send_data(bytes(230))[0].frame) == 250
    with pytest.raises(TooLong):
        rs[0].send_data(bytes(231))
    with pytest.raises(TooLong):
        rs[0].send_data(b"")
    air.send(ini.mac, ini.rekey(air.now))
    with pytest.raises(WrongState):
        ini.rekey(air.now)
    st = ini.status()
    assert st["rollout"] == 2 and st["devices"]


def test_sender_rebooted_1000_times_never_reuses_a_nonce() -> None:
    air, ini, rs = _secured_network(1)
    store = rs[0].store
    nonces: set[bytes] = set()
    now = air.now
    for boot in range(1000):
        node = Responder(
            V2Config(rs[0].mac, pop=POP, counter_block=16), seeded_rng(boot), store, now
        )
        for k in range(boot % 3):
            frame = node.send_data(b"x%d" % k)[0].frame
            nonce = (frame[4:6], frame[6:12])  # (epoch -> key, counter); MAC fixed
            assert bytes(nonce[0] + nonce[1]) not in nonces
            nonces.add(bytes(nonce[0] + nonce[1]))
    assert len(nonces) == sum(b % 3 for b in range(1000))


@pytest.mark.parametrize("lost", [FrameType.CTRL, FrameType.CTRL_ACK])
def test_repair_with_lost_confirmation_keeps_the_device(lost: FrameType) -> None:
    """§6.1 re-pair: the new k_dev waits in k_dev_pending until the CTRL_ACK; a KEY or CTRL_ACK
    lost for good leaves the device reachable under the pairing it really holds."""
    dropping = [False]

    def drop(src: bytes, dst: bytes, frame: bytes) -> bool:
        return dropping[0] and is_type(frame, lost)

    air, ini, rs = network(1, drop=drop)
    provision(air, ini)
    r = rs[0]
    assert r.pairing is not None
    old = r.pairing.k_dev
    assert ini.devices[r.mac].rec.k_dev == old
    air.send(ini.mac, ini.reset(r.mac))
    air.run(air.now + 1000)
    dropping[0] = True
    provision(air, ini)
    dropping[0] = False
    assert [e.reason for e in of(air, I_MAC, PeerFailed)] == ["timeout"]
    rec = ini.devices[r.mac].rec
    assert rec.k_dev == old and any(rec.k_dev_pending) and rec.state.name == "ACTIVE"
    if lost is FrameType.CTRL_ACK:
        assert r.pairing.k_dev == rec.k_dev_pending  # installed the new pairing
    else:
        assert r.pairing.k_dev == old
        air.run(air.now + 121_000)  # the re-pair window closes
    provision(air, ini)  # the next scan resolves the unfinished record
    rec = ini.devices[r.mac].rec
    assert rec.k_dev == r.pairing.k_dev and not any(rec.k_dev_pending)
    assert rec.state.name == "ACTIVE"
    air.send(ini.mac, ini.rekey(air.now))
    air.run(air.now + 15_000)
    done = of(air, I_MAC, RekeyDone)
    assert done and done[-1].acked == (r.mac,) and not done[-1].stragglers
    assert r.epochs.epoch == 2

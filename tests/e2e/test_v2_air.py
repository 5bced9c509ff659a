"""Protocol v2 through the air (issue 6, "Tests through the air"): real C nodes
(``ESPNOW_PROTOCOL=v2``) on the real air, with attacker / spoofer stations, a targeted-loss proxy
and the air's pcap. Every test asserts what the nodes log and their ``/status`` drop counters.

The air refuses a MAC that is already on it, so a test that spoofs a member takes that member
off the air first (a real radio needs no such step). Helpers are in ``v2_bench.py``.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from espnow_sec.air.wire import BROADCAST, Rx, parse_mac
from espnow_sec.crypto import x25519_public
from espnow_sec.protocol.v2.constants import HsErrCode
from espnow_sec.protocol.v2.keyschedule import HandshakeKeys, dh
from espnow_sec.protocol.v2.messages import Hs1, Hs2, Hs3, HsErr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hostile_air import NODE_BIN, Node  # noqa: E402
from v2_bench import (  # noqa: E402
    SECURED,
    T_CTRL,
    T_CTRL_ACK,
    T_DATA,
    T_HS2,
    T_HS4,
    T_HS_ERR,
    Station,
    V2Bench,
    V2Frame,
    count_lines,
    delta,
    recv_texts,
    status,
    wait_until,
)

INITIATOR = "02:00:00:00:00:01"
R1, R2, R3 = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:01:03"
ATTACKER = "02:00:00:00:00:aa"


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> Iterator[V2Bench]:
    if not NODE_BIN.is_file():
        pytest.skip(f"host node binary {NODE_BIN} is missing: run `make build` first")
    args = getattr(request, "param", ())
    b = V2Bench(*args)
    failed: list[str] = []
    try:
        yield b
    finally:
        failed = b.close()
    assert not failed, "\n\n".join(failed)


def secured_network(b: V2Bench, *responders: str) -> tuple[Node, list[Node]]:
    """Responders up first, then the C initiator; returns once it reports every one secured."""
    rs = [b.node("responder", mac) for mac in responders]
    for r in rs:
        r.wait_for("ready")
    ini = b.node("initiator", INITIATOR)
    done = ini.wait_for("Devices security completed", 15)
    assert done.endswith(f"successed_num: {len(rs)}, unfinished_num: 0"), ini.output()
    for r in rs:
        r.wait_for("app_main: Get APP key", 5)
    return ini, rs


def data_frames(b: V2Bench, src: str) -> list[V2Frame]:
    """The DATA frames ``src`` put on the air, in air order (from the pcap)."""
    s = parse_mac(src)
    return [f for f in b.frames() if f.src == s and f.type == T_DATA]


def send_line(node: Node, text: str) -> None:
    mark = node.mark()
    node.write(text.encode() + b"\n")
    node.wait_for("espnow_send, count: ", 5, start=mark)


def deliver(sender: Node, receivers: list[Node], text: str, tries: int = 5) -> int:
    """Send ``text-<n>`` lines until every receiver logged one (a receiver that rebooted, or
    never heard the sender, drops its first frames UNSYNCED until the challenge round trip of
    PROTOCOL.md §8.3 is done). Returns how many lines it took."""
    marks = {r.mac: r.mark() for r in receivers}

    def everywhere() -> bool:
        return all(any(t.startswith(text) for t in recv_texts(r, marks[r.mac])) for r in receivers)

    for n in range(1, tries + 1):
        send_line(sender, f"{text}-{n}")
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if everywhere():
                return n
            time.sleep(0.02)
    raise AssertionError(f"{text!r} from {sender.mac} never reached every receiver")


# ------------------------------------------------------------------------------ 1. replay


def test_replayed_or_altered_data_frame_is_never_delivered(bench: V2Bench) -> None:
    """A DATA frame recorded on the air and replayed (at once, after 100 later frames from its
    sender, after the receiver rebooted), or with any one byte changed: never logged again as
    ``espnow_recv``; every copy is counted as a drop (replay, or unsynced after the reboot)."""
    i_mac = parse_mac(INITIATOR)
    armed = [False]
    # R1 hears the air through a proxy that can lose the initiator's DATA on the way: a frame R1
    # never received is what a tampered copy must fail on authentication (a copy of a frame R1
    # already has is dropped as a replay before any crypto, PROTOCOL.md §8.2)
    proxy = bench.proxy(lambda rx: armed[0] and rx.src == i_mac and rx.data[2:3] == b"\x30")
    r1 = bench.node("responder", R1, air=proxy.path)
    r1.wait_for("ready")
    ini = bench.node("initiator", INITIATOR)
    ini.wait_for("Devices security completed, successed_num: 1, unfinished_num: 0", 15)
    mark = r1.mark()
    send_line(ini, "replay-me")
    r1.wait_for("]: replay-me", 5, start=mark)
    armed[0] = True
    send_line(ini, "tamper-me")
    wait_until(lambda: len(proxy.dropped) == 1, 5, "the proxy to lose 'tamper-me'")
    armed[0] = False
    f0, f1 = data_frames(bench, INITIATOR)
    assert f1.counter > f0.counter
    r = r1.mac_bytes

    # the sender goes off the air; the attacker takes its MAC and replays the recorded frame
    bench.stop(ini)
    spoof = bench.station(INITIATOR)
    before = status(r1)
    for dst in (BROADCAST, r, BROADCAST):
        spoof.send(dst, f0.body)
    wait_until(lambda: status(r1).rx >= before.rx + 3, 5, "the replays to arrive")
    after = status(r1)
    assert delta(after, before) == {"replay": 3}, (before, after)
    assert after.delivered == before.delivered

    # every single-byte change of the frame R1 never received: header bytes (two bit flips
    # each), then every ciphertext and tag byte
    def altered(positions: range, bits: tuple[int, ...]) -> list[bytes]:
        out = []
        for i in positions:
            for bit in bits:
                b = bytearray(f1.body)
                b[i] ^= bit
                out.append(bytes(b))
        return out

    # the reason is whatever the receive pipeline decides first (PROTOCOL.md §2.1, §2.6, §14):
    # magic/version -> foreign; type 0x31 -> plaintext (DATA_PLAIN to a secured node), 0xb0 ->
    # malformed; flags -> malformed; key_epoch 0 -> malformed, another epoch -> epoch; a changed
    # counter -> auth (or replay, if it now names a counter R1 already saw)
    groups = {
        "magic..key_epoch": (
            altered(range(6), (0x01, 0x80)),
            {"foreign": 4, "plaintext": 1, "malformed": 4, "epoch": 3},
        ),
        "counter": (altered(range(6, 12), (0x01, 0x80)), None),
        "ciphertext and tag": (altered(range(12, len(f1.body)), (0x01, 0x80)), None),
    }
    for group, (bodies, reasons) in groups.items():
        before = status(r1)
        for n, body in enumerate(bodies):
            spoof.send(BROADCAST if n % 2 else r, body)
            if n % 16 == 15:
                time.sleep(0.01)  # under the node's 32-frame radio queue: no drop by overload
        want = before.rx + len(bodies)
        wait_until(lambda w=want: status(r1).rx >= w, 5, f"altered {group}")
        after = status(r1)
        changed = delta(after, before)
        assert sum(changed.values()) == len(bodies), (group, changed)
        if group == "counter":
            assert set(changed) <= {"auth", "replay"} and changed.get("auth", 0) >= 8, changed
        elif group == "ciphertext and tag":
            assert changed == {"auth": len(bodies)}, changed
        else:
            assert changed == reasons, changed
        assert after.delivered == before.delivered, group
    assert "tamper-me" not in recv_texts(r1)
    # the intact frame still goes through exactly once: no altered copy moved R1's window
    before = status(r1)
    mark = r1.mark()
    spoof.send(BROADCAST, f1.body)
    r1.wait_for("]: tamper-me", 5, start=mark)
    spoof.send(r, f1.body)
    wait_until(lambda: status(r1).rx >= before.rx + 2, 5, "the intact frame and its copy")
    after = status(r1)
    assert delta(after, before) == {"replay": 1} and after.delivered == before.delivered + 1
    assert recv_texts(r1, mark) == ["tamper-me"]
    spoof.close()
    bench.wait_left(INITIATOR)

    # 100 later frames from the real sender (rebooted: its counter jumps to a new block)
    ini = bench.node("initiator", INITIATOR)
    ini.wait_for("Devices security completed", 10)
    mark = r1.mark()
    for i in range(100):
        ini.write(b"later-%d\n" % i)
        if i % 16 == 15:
            time.sleep(0.02)
    wait_until(lambda: len(recv_texts(r1, mark)) >= 100, 10, "100 later frames at R1")
    assert recv_texts(r1, mark) == [f"later-{i}" for i in range(100)]
    last = data_frames(bench, INITIATOR)[-1]
    assert last.counter > f0.counter + 100

    bench.stop(ini)
    spoof = bench.station(INITIATOR)
    before = status(r1)
    spoof.send(BROADCAST, f0.body)
    spoof.send(r, f0.body)
    spoof.send(BROADCAST, last.body)
    wait_until(lambda: status(r1).rx >= before.rx + 3, 5, "the replays after 100 frames")
    after = status(r1)
    assert delta(after, before) == {"replay": 3}, (before, after)
    assert after.delivered == before.delivered
    texts = recv_texts(r1)
    assert texts.count("replay-me") == 1 and texts.count("tamper-me") == 1
    assert texts.count("later-99") == 1

    # the receiver reboots: its windows are gone, and no recorded frame can answer its challenge
    r1 = bench.reboot(r1)
    r1.wait_for("ready, mac")
    before = status(r1)
    assert before.secured and before.epoch == 1
    for body in (f0.body, last.body, f0.body, last.body):
        spoof.send(BROADCAST, body)
        time.sleep(0.05)
    wait_until(lambda: status(r1).rx >= before.rx + 4, 5, "the replays after the reboot")
    time.sleep(0.3)  # the sync attempts R1 starts towards the spoofed MAC get no answer
    after = status(r1)
    changed = delta(after, before)
    assert set(changed) <= {"replay", "unsynced"} and sum(changed.values()) == 4, changed
    assert after.delivered == 0 and recv_texts(r1) == [], r1.output()


# ------------------------------------------------------------------------------ 2. plaintext


def test_plaintext_data_claiming_a_member_is_not_delivered(bench: V2Bench) -> None:
    """DATA_PLAIN (``CF 02 31 00`` + payload, PROTOCOL.md §10) from a member's MAC, broadcast and
    unicast: secured nodes never deliver it (no ``espnow_recv`` line of either form) and count
    each copy as a plaintext drop."""
    ini, (r1, r2) = secured_network(bench, R1, R2)
    bench.stop(r2)
    spoof = bench.station(R2)
    before = {n.mac: status(n) for n in (ini, r1)}
    marks = {n.mac: n.mark() for n in (ini, r1)}
    body = bytes([0xCF, 0x02, 0x31, 0x00]) + b"PLAIN-FROM-MEMBER"
    for dst in (BROADCAST, r1.mac_bytes, ini.mac_bytes, BROADCAST):
        spoof.send(dst, body)
    for n, copies in ((ini, 3), (r1, 3)):
        wait_until(lambda n=n, c=copies: status(n).rx >= before[n.mac].rx + c, 5, n.mac)
        after = status(n)
        assert delta(after, before[n.mac]) == {"plaintext": copies}, (n.mac, after)
        assert after.delivered == before[n.mac].delivered
        assert after.secured and after.epoch == 1
        assert not any("PLAIN-FROM-MEMBER" in ln for ln in n.since(marks[n.mac]) if "recv" in ln)
    # both still exchange authentic data
    mark = r1.mark()
    send_line(ini, "still-secured")
    r1.wait_for("]: still-secured", 5, start=mark)


# --------------------------------------------------------------------- 3. lost confirmation


def test_lost_key_confirmation_is_retried_and_success_reported_once(bench: V2Bench) -> None:
    """The first CTRL_ACK (the responder's confirmation that it installed the key) of each
    responder is lost on its way to the initiator: the initiator resends the identical CTRL, the
    responder answers again, both end secured, and the initiator reports each success once."""
    lost: set[bytes] = set()

    def lose_first_ack(rx: Rx) -> bool:
        if rx.data[:3] != bytes([0xCF, 0x02, T_CTRL_ACK]) or rx.src in lost:
            return False
        lost.add(rx.src)
        return True

    proxy = bench.proxy(lose_first_ack)
    rs = [bench.node("responder", mac) for mac in (R1, R2)]
    for r in rs:
        r.wait_for("ready")
    ini = bench.node("initiator", INITIATOR, air=proxy.path)
    done = ini.wait_for("Devices security completed", 15)
    assert done.endswith("successed_num: 2, unfinished_num: 0"), ini.output()
    assert sorted(lost) == sorted(r.mac_bytes for r in rs)
    frames = bench.frames()
    for r in rs:
        assert count_lines(r, "app_main: Get APP key") == 1, r.output()
        assert count_lines(ini, f"app_main: {r.mac} secured") == 1, ini.output()
        ctrls = [f.body for f in frames if f.dst == r.mac_bytes and f.type == T_CTRL]
        acks = [f for f in frames if f.src == r.mac_bytes and f.type == T_CTRL_ACK]
        assert len(ctrls) >= 2 and len(set(ctrls)) == 1, "the CTRL KEY was not resent as is"
        assert len(acks) >= 2 and len({a.counter for a in acks}) == len(acks), acks
    assert count_lines(ini, "Devices security completed") == 1
    time.sleep(0.5)  # nothing more comes later: no second report, no failure
    assert count_lines(ini, "Devices security completed") == 1
    assert "failed" not in ini.output()
    for r in rs:
        st = status(r)
        assert st.secured and st.epoch == 1 and count_lines(r, "Get APP key") == 1
    mark = rs[0].mark()
    send_line(ini, "after-retry")
    rs[0].wait_for("]: after-retry", 5, start=mark)


@pytest.mark.parametrize(
    "bench",
    [("--loss", "0.3", "--seed", s) for s in ("1", "2", "3")],
    indirect=True,
    ids=["seed1", "seed2", "seed3"],
)
def test_thirty_percent_loss_every_responder_secured_once(bench: V2Bench) -> None:
    """30 % loss on every delivery: every responder ends secured with one ``Get APP key``, the
    initiator logs one ``<mac> secured`` per responder, and its summaries add up to them all.
    A responder the lossy scan missed (each of its 5 answers lost: ~3 % per responder) or whose
    handshake ran out of attempts is picked up by ``/add``, as an operator would."""
    rs = [bench.node("responder", mac) for mac in (R1, R2, R3)]
    for r in rs:
        r.wait_for("ready")
    ini = bench.node("initiator", INITIATOR)
    mark = 0
    for _ in range(4):
        ini.wait_for("Devices security completed", 25, start=mark)
        if all(count_lines(r, "app_main: Get APP key") for r in rs):
            break
        mark = ini.mark()
        ini.write(b"/add 1000\n")
        ini.wait_for("/add: scanning", 5, start=mark)
    for r in rs:
        r.wait_for("app_main: Get APP key", 5)
    time.sleep(0.5)  # late duplicates would show up now
    total = sum(
        int(ln.split("successed_num: ")[1].split(",")[0])
        for ln in ini.lines
        if "Devices security completed" in ln
    )
    assert total == 3, ini.output()
    for r in rs:
        assert count_lines(r, "app_main: Get APP key") == 1, r.output()
        assert count_lines(ini, f"app_main: {r.mac} secured") == 1, ini.output()
        assert status(r).epoch == 1


# ------------------------------------------------------------------------------ 4. wrong PoP


def rogue_attempt(st: Station, r: bytes, pop: bytes, rng: random.Random) -> HsErr | None:
    """One handshake as an initiator with ``pop``: HS1, then HS3 if HS2 came. Returns the HS_ERR
    that ended it (None if the responder sent HS4)."""
    e_priv = rng.randbytes(32)
    sid = rng.randrange(1, 1 << 32)
    hs1 = Hs1(sid, 1, x25519_public(e_priv)).encode()

    def answer(rx: Rx) -> bool:
        return rx.src == r and rx.data[2] in (T_HS2, T_HS4, T_HS_ERR) and rx.data[4:8] == hs1[4:8]

    st.send(r, hs1)
    hs2 = st.expect(answer).data
    if hs2[2] == T_HS_ERR:
        return HsErr.decode(hs2)
    keys = HandshakeKeys.derive(dh(e_priv, Hs2.decode(hs2).e_r), pop, st.mac, r, hs1, hs2)
    st.send(r, Hs3(sid, keys.conf_i).encode())
    end = st.expect(answer).data
    return HsErr.decode(end) if end[2] == T_HS_ERR else None


def stored(b: V2Bench, mac: str) -> list[str]:
    d = b.store_of(mac)
    return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def test_wrong_pop_fails_cleanly_stores_nothing_and_is_slowed_down(bench: V2Bench) -> None:
    """The C initiator with another PoP: both sides log the failure, neither stores a key. Then
    a rogue initiator keeps guessing: after each wrong PoP its next HS1 gets HS_ERR BUSY for the
    per-MAC backoff (1 s, then 2 s, PROTOCOL.md §11.2), and once the responder's five guess
    tokens are spent (§11.3) a guess from a fresh MAC is refused BUSY as well."""
    r1 = bench.node("responder", R1, pop="not-the-pop")
    r1.wait_for("ready")
    ini = bench.node("initiator", INITIATOR)
    done = ini.wait_for("Devices security completed", 15)
    assert done.endswith("successed_num: 0, unfinished_num: 1"), ini.output()
    ini.wait_for(f"app_main: handshake with {R1} failed: PoP mismatch", 1)
    r1.wait_for(f"app_main: handshake with {INITIATOR} failed: PoP mismatch", 1)
    assert count_lines(r1, "app_main: handshake with") == 1, r1.output()
    assert count_lines(ini, "app_main: handshake with") == 1, ini.output()
    assert "Get APP key" not in r1.output() and f"app_main: {R1} secured" not in ini.output()
    assert [n for n in stored(bench, R1) if "v2_ctr" not in n] == []
    assert [n for n in stored(bench, INITIATOR) if "v2_dev" in n] == []
    assert not status(r1).secured

    rng = random.Random(4)
    rogue = bench.station(ATTACKER)
    r = r1.mac_bytes
    err = rogue_attempt(rogue, r, b"guess-1", rng)
    assert err is not None and err.code == HsErrCode.POP_MISMATCH, err
    busy = rogue_attempt(rogue, r, b"guess-2", rng)
    assert busy is not None and busy.code == HsErrCode.BUSY and 0 < busy.retry_after_ms <= 1000
    time.sleep(busy.retry_after_ms / 1000 + 0.05)
    err = rogue_attempt(rogue, r, b"guess-2", rng)
    assert err is not None and err.code == HsErrCode.POP_MISMATCH, err
    busy = rogue_attempt(rogue, r, b"guess-3", rng)
    assert busy is not None and busy.code == HsErrCode.BUSY
    assert 1000 < busy.retry_after_ms <= 2000, busy
    # tokens spent so far: the C initiator's guess and two of the rogue's; two more MACs...
    for n in (1, 2):
        other = bench.station(f"02:00:00:00:00:b{n}")
        err = rogue_attempt(other, r, b"guess-b%d" % n, rng)
        assert err is not None and err.code == HsErrCode.POP_MISMATCH, err
    # ...and the bucket is empty: a sixth guess, from a MAC never seen, is refused
    fresh = bench.station("02:00:00:00:00:b9")
    busy = rogue_attempt(fresh, r, b"guess-c", rng)
    assert busy is not None and busy.code == HsErrCode.BUSY and 0 < busy.retry_after_ms <= 10000
    assert count_lines(r1, "app_main: handshake with") == 5, r1.output()
    assert "Get APP key" not in r1.output()
    assert [n for n in stored(bench, R1) if "v2_ctr" not in n] == []
    assert not status(r1).secured


# ------------------------------------------------------------------------------ 5. forged control


def test_control_frames_with_a_bad_or_missing_mac_are_ignored(bench: V2Bench) -> None:
    """CTRL frames (KEY = re-key, UNPROVISION = remove, RESET) that claim the bound initiator's
    MAC but carry a wrong tag, no tag, a flipped byte of a real CTRL, or come from a stranger's
    MAC: dropped and counted, no answer, the key record untouched; the responder stays secured
    under epoch 1 and still exchanges data both ways with the initiator."""
    ini, (r1,) = secured_network(bench, R1)
    r = r1.mac_bytes
    (real,) = [f.body for f in bench.frames() if f.dst == r and f.type == T_CTRL]
    record = bench.store_of(R1) / "espnow_sec.v2_resp"
    saved = record.read_bytes()
    bench.stop(ini)
    spoof = bench.station(INITIATOR)
    stranger = bench.station(ATTACKER)
    rng = random.Random(5)
    hdr = bytes([0xCF, 0x02, T_CTRL, 0x00, 0, 0]) + (1 << 40).to_bytes(6, "big")
    bad_tag = [hdr + rng.randbytes(n + 16) for n in (38, 1, 3)]  # KEY, UNPROVISION, RESET
    no_tag = [hdr + rng.randbytes(n) for n in (38, 1, 3)]
    flipped = []
    for i in (6, 11, 12, 13, 30, len(real) - 16, len(real) - 1):
        b = bytearray(real)
        b[i] ^= 0x01 if i != 6 else 0x80  # byte 6: the counter's top bit (a higher counter)
        flipped.append(bytes(b))
    epoch_set = bytearray(real)
    epoch_set[5] = 1  # key_epoch 1 on a pairwise frame
    before = status(r1)
    for body in bad_tag + no_tag + flipped + [bytes(epoch_set)]:
        spoof.send(r, body)
    for body in bad_tag:
        stranger.send(r, body)
    sent = len(bad_tag) * 2 + len(no_tag) + len(flipped) + 1
    wait_until(lambda: status(r1).rx >= before.rx + sent, 5, "the forged CTRL frames")
    time.sleep(0.2)
    after = status(r1)
    changed = delta(after, before)
    assert sum(changed.values()) == sent, changed
    assert changed.get("auth", 0) >= len(bad_tag) + 5, changed
    assert changed.get("malformed", 0) >= len(no_tag) + 1, changed
    assert changed.get("state", 0) == len(bad_tag), changed  # not from the bound initiator
    answered = [rx for st in (spoof, stranger) for rx in st.drain() if rx.data[2] == T_CTRL_ACK]
    assert answered == [], "the responder answered a forged CTRL"
    assert (after.secured, after.epoch, after.staged, after.previous) == (True, 1, 0, 0), after
    assert record.read_bytes() == saved
    assert count_lines(r1, "app_main: un-provisioned") == 0
    assert count_lines(r1, "app_main: key epoch") == 0
    assert count_lines(r1, "app_main: Get APP key") == 1
    # the genuine CTRL KEY recorded on the air, replayed: it carries the last accepted counter,
    # so it is answered again with a fresh CTRL_ACK and changes nothing (§5.3 "c == ctl_floor")
    (first_ack,) = [f for f in bench.frames() if f.src == r and f.type == T_CTRL_ACK]
    before = status(r1)
    spoof.send(r, real)
    ack = spoof.expect(lambda rx: rx.data[2] == T_CTRL_ACK)
    assert int.from_bytes(ack.data[6:12], "big") > first_ack.counter
    assert delta(status(r1), before) == {"duplicate": 1}
    assert record.read_bytes() == saved
    assert count_lines(r1, "app_main: Get APP key") == 1
    spoof.close()
    bench.wait_left(INITIATOR)

    ini = bench.node("initiator", INITIATOR)
    ini.wait_for("Devices security completed", 10)
    assert deliver(ini, [r1], "ctrl-forgeries-ignored") == 1  # R1 still has its window
    assert deliver(r1, [ini], "responder-still-talks") <= 2  # the rebooted initiator syncs R1


# ------------------------------------------------------------------------------ 6. reboots


def test_sender_rebooted_50_times_never_reuses_a_nonce(bench: V2Bench) -> None:
    """A responder rebooted 50 times (every other time by SIGKILL, a power cut), sending one
    line per boot: every secured frame it put on the air (DATA, SYNC, CTRL_ACK) has its own
    counter, so no (key, nonce) pair repeats, its DATA counters increase across the reboots, and
    the initiator, which never rebooted, delivers every line exactly once."""
    ini, (r1,) = secured_network(bench, R1)
    mark = ini.mark()
    boots = 50
    for k in range(boots):
        send_line(r1, f"boot-{k}")
        ini.wait_for(f"]: boot-{k}", 5, start=mark)
        r1 = bench.reboot(r1, kill=k % 2 == 1)
        r1.wait_for("ready, mac")
        assert "secured" in r1.lines[-1] or status(r1).secured
    send_line(r1, f"boot-{boots}")
    ini.wait_for(f"]: boot-{boots}", 5, start=mark)
    assert recv_texts(ini, mark) == [f"boot-{k}" for k in range(boots + 1)]

    sent = [f for f in bench.frames() if f.src == r1.mac_bytes and f.is_v2 and f.type in SECURED]
    pairs = [((f.type in (T_CTRL, T_CTRL_ACK), f.epoch), (f.counter, f.type)) for f in sent]
    assert len(set(pairs)) == len(pairs), "a (key, nonce) pair was used twice"
    counters = [f.counter for f in sent]
    assert len(set(counters)) == len(counters), "a frame counter was used twice"
    data = [f.counter for f in sent if f.type == T_DATA]
    assert len(data) == boots + 1 and data == sorted(data) and len(set(data)) == len(data)
    # each boot starts at the block boundary past everything the previous boot may have used
    # (CONFIG_ESPNOW_SEC_COUNTER_BLOCK 1024, PROTOCOL.md §7.3)
    assert all(b >= (a // 1024 + 1) * 1024 for a, b in zip(data, data[1:], strict=False)), data


# ------------------------------------------------------------------------------ 7. re-key


def test_rekey_moves_every_member_and_old_epoch_frames_pass_only_in_grace(bench: V2Bench) -> None:
    """``/rekey`` with R2 off the air: R1 moves to epoch 2 (R2 is a straggler). Within the grace
    (30 s, CONFIG_ESPNOW_SEC_EPOCH_GRACE_S) R1 still accepts a *new* epoch-1 frame from R2 (R2
    rebooted, still on epoch 1) but a recorded epoch-1 frame replayed is a replay. The initiator
    then hands R2 the new key (straggler catch-up), and every member talks under epoch 2.
    (After the grace: test_old_epoch_refused_after_a_short_grace, with a short grace.)"""
    ini, (r1, r2) = secured_network(bench, R1, R2)
    deliver(r2, [r1, ini], "before-rekey")  # R1 and the initiator hold a window for R2
    (old,) = [f for f in data_frames(bench, R2) if f.epoch == 1][-1:]
    bench.stop(r2)

    mark_i, mark_1 = ini.mark(), r1.mark()
    ini.write(b"/rekey\n")
    ini.wait_for("app_main: /rekey: started", 2, start=mark_i)
    r1.wait_for("app_main: key epoch 2 active", 15, start=mark_1)
    done = ini.wait_for("app_main: rekey done:", 15, start=mark_i)
    assert done.endswith("rekey done: epoch 2, acknowledged: 1, stragglers: 1"), done
    st1 = status(r1)
    assert (st1.epoch, st1.staged, st1.previous) == (2, 0, 1), st1
    assert status(ini).epoch == 2

    spoof = bench.station(R2)  # a recorded epoch-1 frame of R2, replayed within the grace
    before = status(r1)
    spoof.send(BROADCAST, old.body)
    wait_until(lambda: status(r1).rx > before.rx, 5, "the replayed epoch-1 frame")
    assert delta(status(r1), before) == {"replay": 1}
    spoof.close()
    bench.wait_left(R2)

    r2 = bench.node("responder", R2)  # still holds epoch 1 only
    r2.wait_for("ready, mac")
    mark_1 = r1.mark()
    send_line(r2, "old-epoch-in-grace")
    r1.wait_for("]: old-epoch-in-grace", 5, start=mark_1)
    (f,) = [f for f in data_frames(bench, R2) if f.body != old.body][-1:]
    assert f.epoch == 1, "R2 sent under the new epoch: the test did not test the grace"
    r2.wait_for("app_main: key epoch 2 active", 10)  # the initiator caught the straggler up
    assert deliver(ini, [r1, r2], "under-epoch-2") == 1
    assert deliver(r2, [r1, ini], "r2-under-epoch-2") <= 2
    later = [x for x in bench.frames() if x.type == T_DATA and x.t > f.t]
    assert len(later) >= 2 and {x.epoch for x in later} == {2}, later
    for n in (ini, r1, r2):
        assert status(n).epoch == 2
    assert (
        count_lines(r1, "app_main: key epoch") == 1 and count_lines(r2, "app_main: key epoch") == 1
    )


def test_old_epoch_refused_after_a_short_grace(bench: V2Bench) -> None:
    """The C initiator's grace is compiled in (30 s); a responder takes the grace its initiator
    sends in KEY (PROTOCOL.md §5.1, §9.4). So the Python reference initiator, configured with a
    3 s grace, provisions and re-keys a C responder: a fresh epoch-1 frame is delivered right
    after the switch to epoch 2, the same kind of frame after the grace is an EPOCH drop."""
    grace_s = 3
    r1 = bench.node("responder", R1)
    r1.wait_for("ready")
    py = bench.py_initiator(INITIATOR, epoch_grace_s=grace_s, scan_duration_ms=400)
    py.provision()
    r1.wait_for("app_main: Get APP key", 10)
    mark = r1.mark()
    py.send_data(b"py-epoch-1")
    r1.wait_for("]: py-epoch-1", 5, start=mark)
    e1 = py.machine.epochs.current
    assert e1 is not None and e1.epoch == 1

    py.rekey()
    r1.wait_for("app_main: key epoch 2 active", 10, start=mark)
    switched = time.monotonic()
    st = status(r1)
    assert (st.epoch, st.previous) == (2, 1), st
    mark = r1.mark()
    py.send_raw(BROADCAST, py.seal(e1.key, T_DATA, 1, BROADCAST, b"epoch-1-in-grace"))
    r1.wait_for("]: epoch-1-in-grace", 2, start=mark)
    assert time.monotonic() - switched < grace_s

    time.sleep(max(0.0, switched + grace_s + 0.3 - time.monotonic()))
    before = status(r1)
    assert before.previous == 0, before  # the previous key is wiped when the grace ends
    py.send_raw(BROADCAST, py.seal(e1.key, T_DATA, 1, BROADCAST, b"epoch-1-after-grace"))
    wait_until(lambda: status(r1).rx > before.rx, 5, "the epoch-1 frame after the grace")
    assert delta(status(r1), before) == {"epoch": 1}
    assert "epoch-1-after-grace" not in "\n".join(r1.lines)
    mark = r1.mark()
    py.send_data(b"py-epoch-2")
    r1.wait_for("]: py-epoch-2", 5, start=mark)
    assert py.error is None


# ------------------------------------------------------------------------------ 8. remove


def test_removed_device_cannot_read_the_new_epoch(bench: V2Bench) -> None:
    """``/remove R2``: R2 erases its keys, R1 moves to epoch 2. Lines sent afterwards reach R1
    and the initiator, never R2 - not even an R2 that ignored the request and kept its epoch-1
    keys (its store restored from a copy taken before the removal): it drops them (epoch)."""
    ini, (r1, r2) = secured_network(bench, R1, R2)
    kept = bench.dir / "r2-keys-kept"
    shutil.copytree(bench.store_of(R2), kept)

    mark_i, mark_1, mark_2 = ini.mark(), r1.mark(), r2.mark()
    ini.write(f"/remove {R2}\n".encode())
    ini.wait_for(f"app_main: /remove: removing {R2}", 2, start=mark_i)
    r2.wait_for(f"app_main: un-provisioned by {INITIATOR}: keys erased", 10, start=mark_2)
    ini.wait_for(f"app_main: device {R2} removed", 10, start=mark_i)
    done = ini.wait_for("app_main: rekey done:", 15, start=mark_i)
    assert done.endswith("rekey done: epoch 2, acknowledged: 1, stragglers: 0"), done
    r1.wait_for("app_main: key epoch 2 active", 5, start=mark_1)
    assert [n for n in stored(bench, R2) if "v2_ctr" not in n] == []
    assert not status(r2).secured

    mark_2 = r2.mark()
    deliver(ini, [r1], "after-removal")
    deliver(r1, [ini], "r1-after-removal")
    time.sleep(0.2)
    assert recv_texts(r2, mark_2) == [], r2.output()

    # R2 kept its keys anyway: it is still on epoch 1 and reads nothing of epoch 2
    bench.stop(r2)
    shutil.rmtree(bench.store_of(R2))
    shutil.copytree(kept, bench.store_of(R2))
    r2 = bench.node("responder", R2)
    r2.wait_for("ready, mac")
    st = status(r2)
    assert st.secured and st.epoch == 1, st
    for sender, other in ((ini, r1), (r1, ini)):
        before = status(r2)
        mark = other.mark()
        send_line(sender, f"secret-from-{sender.mac}")
        other.wait_for(f"]: secret-from-{sender.mac}", 5, start=mark)
        wait_until(lambda b=before: status(r2).rx > b.rx, 5, "R2 to hear the epoch-2 line")
        after = status(r2)
        assert delta(after, before) == {"epoch": 1}, (before, after)
        assert after.delivered == before.delivered
    assert recv_texts(r2) == [], r2.output()
    assert count_lines(r2, "app_main: key epoch") == 0


# ------------------------------------------------------------------------------ 9. add


def test_add_gives_a_newcomer_the_current_key_without_rekeying(bench: V2Bench) -> None:
    """A responder started after the network is secured is provisioned by ``/add`` with the
    current key (epoch 1): the members get no CTRL at all, log no ``key epoch`` line and keep
    epoch 1, and everybody exchanges data with the newcomer."""
    ini, (r1, r2) = secured_network(bench, R1, R2)
    marks = {n.mac: n.mark() for n in (ini, r1, r2)}
    ctrl_before = len([f for f in bench.frames() if f.type == T_CTRL])
    r3 = bench.node("responder", R3)
    r3.wait_for("ready")
    ini.write(b"/add 500\n")
    ini.wait_for("app_main: /add: scanning 500 ms for new devices", 2, start=marks[ini.mac])
    done = ini.wait_for("Devices security completed", 10, start=marks[ini.mac])
    assert done.endswith("successed_num: 1, unfinished_num: 0"), ini.output()
    r3.wait_for("app_main: Get APP key", 5)
    assert count_lines(ini, f"app_main: {R3} secured") == 1
    ctrls = [f for f in bench.frames() if f.type == T_CTRL][ctrl_before:]
    assert {f.dst for f in ctrls} == {r3.mac_bytes}, "a member was sent a CTRL during /add"
    for n in (ini, r1, r2, r3):
        st = status(n)
        assert st.secured and (st.epoch, st.staged, st.previous) == (1, 0, 0), (n.mac, st)
    for n in (r1, r2):
        assert count_lines(n, "app_main: key epoch", marks[n.mac]) == 0
        assert count_lines(n, "Get APP key", marks[n.mac]) == 0
    assert count_lines(ini, "app_main: rekey", marks[ini.mac]) == 0

    assert deliver(ini, [r3], "welcome") == 1  # the KEY exchange synced R3 to the initiator
    deliver(r3, [ini, r1, r2], "hello-from-r3")
    deliver(r1, [r3], "hello-from-r1")
    assert {f.epoch for f in data_frames(bench, R3)} == {1}

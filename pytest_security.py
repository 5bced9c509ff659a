"""ESP-NOW security: multi-DUT tests with pytest-embedded, on host DUTs or on real boards.

The same tests run unchanged in two places.

Host (no boards; every DUT is the host build's ``espnow_node.elf``, a ``linux`` target app, on the
simulated air)::

    make build        # build/host/<config>/{espnow_node.elf,config/sdkconfig.json}
    pytest pytest_security.py --embedded-services idf --target linux

Boards (one flashed board per DUT; build each configuration first, ESP-IDF's folder naming)::

    for c in responder initiator responder_badpop; do
      idf.py -B build_esp32_$c -D SDKCONFIG=build_esp32_$c/sdkconfig \\
             -D SDKCONFIG_DEFAULTS="sdkconfig.defaults;sdkconfig.ci.$c" set-target esp32 build
    done
    pytest pytest_security.py --embedded-services esp,idf --target esp32 \\
           --port '/dev/ttyUSB0|/dev/ttyUSB1' --erase-nvs y

How DUTs get their firmware: each test is parametrized as
``@pytest.mark.parametrize('count, build_dir', [(2, 'responder|initiator')], indirect=True)``, where
each ``build_dir`` entry is a *configuration name*, i.e. an ``sdkconfig.ci.<name>`` file at the top
of the project (layered on ``sdkconfig.defaults``). conftest.py maps a name to a folder:

* host (``--target linux``, or no ``esp`` service): ``build/host/<name>``;
* boards: ``build_<target>_<name>``, else ``build_<name>`` (relative to the project);
* ``--build-dir`` on the command line wins: a template such as
  ``--build-dir 'build_{target}_{config}'``
  (``{config}``, ``{target}`` are filled in per DUT), or one folder per DUT, ``'dir0|dir1'``, in the
  order of the test's configurations (responder(s) first, initiator last); tests with another DUT
  count are then skipped.

The initiator provisions once, at boot, after a scan (``CONFIG_ESPNOW_SEC_SCAN_DURATION_MS``), so
responders must be up before its scan ends: every test lists its responders first and the
initiator last, and pytest-embedded starts (or flashes) DUTs in that order.

On the host a fixture (``espnow_bench``, conftest.py) starts one air per test and hands its
socket to the nodes in ``ESPNOW_AIR``; every node gets a pid-derived MAC and keeps its key store in
``./espnow_store/<mac>`` under the test's own folder, so each test starts with empty stores (and
the host-only checks below can look into them). A node process that exits fails the test at once
with its exit status. On boards the fixture does nothing; the NVS of the boards should be erased
(``--erase-nvs y``) so a responder does not start with a key from an earlier test.

Cases:

1. ``test_secured_pair``: initiator + responder; the responder gets the app key, and a line typed
   into either side is logged decrypted by the other.
2. ``test_two_responders``: initiator + 2 responders; both get the key; a broadcast from any node
   is decrypted by the two others.
3. ``test_wrong_pop``: a responder built with another PoP: ``unfinished_num: 1``, it never logs
   ``Get APP key``, decrypts nothing and (host) stores no key.
4. ``test_restarted_responder_keeps_key``: a secured responder restarted (host: a new process with
   the same MAC and store; board: a hard reset) boots ``secured`` and still exchanges messages.
5. ``test_max_payload``: exactly the largest payload is delivered; one byte more gives a clear
   error on the sender and nothing goes on air.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import espnow_harness
import pytest
from espnow_harness import (
    COMPLETED_RE,
    GOT_KEY_RE,
    KEY_SENT_RE,
    SEND_FAILED_RE,
    WAIT_NUM_RE,
    Boot,
    EspnowBench,
    StoredKey,
    config_role,
    expect_absent,
    expect_boot,
    expect_decrypted,
    handshake_failed_re,
    max_payload,
    send_re,
)

if not espnow_harness.PYTEST_EMBEDDED:
    pytest.skip(
        "needs the pytest-embedded plugin (run without -p no:pytest_embedded)",
        allow_module_level=True,
    )

# ESP-NOW capable chips, plus the host build.
pytestmark = [
    pytest.mark.host_test,
    pytest.mark.linux,
    pytest.mark.esp32,
    pytest.mark.esp32s2,
    pytest.mark.esp32s3,
    pytest.mark.esp32c2,
    pytest.mark.esp32c3,
    pytest.mark.esp32c5,
    pytest.mark.esp32c6,
    pytest.mark.esp32c61,
]

BOOT_TIMEOUT = 30  # boards: flashing is done before the DUT object exists; this is boot only
PROVISION_TIMEOUT = 60  # scan (1 s by default) plus handshakes with retries
MSG_TIMEOUT = 10
QUIET_S = 2.0  # how long "nothing happens" is watched


def _msg(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def _check_roles(duts: list[Any], roles: list[str]) -> None:
    """The build behind each DUT must be the role the test expects there (clear message if not)."""
    for i, (d, role) in enumerate(zip(duts, roles, strict=True)):
        built = config_role(d.app)
        if built is not None and built != role:
            pytest.fail(
                f"DUT {i} runs the {built} build but this test needs the {role} there "
                f"({d.app.binary_path}); give build dirs in the order of the test's configurations",
                pytrace=False,
            )


def _boot_all(bench: EspnowBench, duts: list[Any], roles: list[str]) -> list[Boot]:
    _check_roles(duts, roles)
    boots = [expect_boot(d, role, BOOT_TIMEOUT) for d, role in zip(duts, roles, strict=True)]
    channels = {b.channel for b in boots}
    assert len(channels) == 1, (
        f"nodes are on different channels: {[(b.role, b.channel) for b in boots]}"
    )
    macs = [b.mac for b in boots]
    assert len(set(macs)) == len(macs), f"two nodes share a MAC: {macs}"
    if bench.host:  # each test starts with empty key stores
        for b in boots:
            if b.role == "responder":
                assert not b.secured, f"{b.role} {b.mac} booted secured, but its store is new"
    return boots


def _expect_provisioned(init: Any, found: int, succeeded: int, unfinished: int) -> bytes:
    """Wait for the initiator's provisioning summary; returns its log up to the summary."""
    log = b""
    m = init.expect(WAIT_NUM_RE, timeout=PROVISION_TIMEOUT)
    log += bytes(init.pexpect_proc.before) + m.group(0)
    assert int(m.group(1)) == found, (
        f"initiator found {int(m.group(1))} responders, expected {found}"
    )
    m = init.expect(KEY_SENT_RE, timeout=PROVISION_TIMEOUT)
    log += bytes(init.pexpect_proc.before) + m.group(0)
    m = init.expect(COMPLETED_RE, timeout=PROVISION_TIMEOUT)
    log += bytes(init.pexpect_proc.before) + m.group(0)
    got = (int(m.group(1)), int(m.group(2)))
    assert got == (succeeded, unfinished), (
        f"initiator: successed_num {got[0]}, unfinished_num {got[1]}; "
        f"expected {succeeded}, {unfinished}"
    )
    return log


def _send(sender: Any, text: str) -> int:
    """Type one line into ``sender``; returns the sender's message count."""
    sender.write(text)
    m = sender.expect(send_re(text), timeout=MSG_TIMEOUT)
    return int(m.group(1))


def _exchange(sender: Any, sender_mac: str, receivers: list[Any], tag: str) -> None:
    text = _msg(tag)
    _send(sender, text)
    for r in receivers:
        expect_decrypted(r, text, sender_mac, MSG_TIMEOUT)


def _expect_key_stored(bench: EspnowBench, boot: Boot, initiator: Boot) -> StoredKey:
    """Host: the responder stored the app key it got from this initiator."""
    rec = bench.key_record(boot.mac)
    assert rec is not None, (
        f'{boot.role} {boot.mac} logged "Get APP key" but stored no key record in '
        f"{bench.store_dir(boot.mac)} (has {sorted(bench.store_records(boot.mac))})"
    )
    assert rec.provisioner == initiator.mac, (
        f"{boot.mac} stored a key from {rec.provisioner}, expected the initiator {initiator.mac}"
    )
    own = bench.key_record(initiator.mac)  # the initiator keeps its own app key
    if own is not None:
        assert rec.key == own.key, f"{boot.mac} stored another key than the initiator's"
    return rec


# -------------------------------------------------------------------------------------------------
@pytest.mark.wifi_two_dut
@pytest.mark.parametrize("count, build_dir", [(2, "responder|initiator")], indirect=True)
def test_secured_pair(dut: list[Any], espnow_bench: EspnowBench) -> None:
    resp, init = dut
    r, i = _boot_all(espnow_bench, [resp, init], ["responder", "initiator"])

    _expect_provisioned(init, found=1, succeeded=1, unfinished=0)
    resp.expect(GOT_KEY_RE, timeout=PROVISION_TIMEOUT)
    if espnow_bench.host:
        _expect_key_stored(espnow_bench, r, i)

    _exchange(init, i.mac, [resp], "from-initiator")
    _exchange(resp, r.mac, [init], "from-responder")


@pytest.mark.wifi_three_dut
@pytest.mark.parametrize("count, build_dir", [(3, "responder|responder|initiator")], indirect=True)
def test_two_responders(dut: list[Any], espnow_bench: EspnowBench) -> None:
    r0, r1, init = dut
    b0, b1, bi = _boot_all(espnow_bench, [r0, r1, init], ["responder", "responder", "initiator"])

    _expect_provisioned(init, found=2, succeeded=2, unfinished=0)
    r0.expect(GOT_KEY_RE, timeout=PROVISION_TIMEOUT)
    r1.expect(GOT_KEY_RE, timeout=PROVISION_TIMEOUT)
    if espnow_bench.host:
        k0 = _expect_key_stored(espnow_bench, b0, bi)
        k1 = _expect_key_stored(espnow_bench, b1, bi)
        assert k0.key == k1.key, "the two responders stored different app keys"

    _exchange(init, bi.mac, [r0, r1], "from-initiator")
    _exchange(r0, b0.mac, [init, r1], "from-responder-0")
    _exchange(r1, b1.mac, [init, r0], "from-responder-1")


@pytest.mark.wifi_two_dut
@pytest.mark.parametrize("count, build_dir", [(2, "responder_badpop|initiator")], indirect=True)
def test_wrong_pop(dut: list[Any], espnow_bench: EspnowBench) -> None:
    resp, init = dut
    pops = [d.app.sdkconfig.get("APP_ESPNOW_SESSION_POP") for d in (resp, init)]
    if None not in pops and pops[0] == pops[1]:
        pytest.skip(
            f"the responder runs a build with the initiator's PoP ({pops[0]!r}); "
            f"this case needs the sdkconfig.ci.responder_badpop build"
        )
    r, i = _boot_all(espnow_bench, [resp, init], ["responder", "initiator"])

    init_log = _expect_provisioned(init, found=1, succeeded=0, unfinished=1)
    # The initiator says which device failed and why (before its summary line).
    assert re.search(handshake_failed_re(r.mac).encode(), init_log), (
        f'the initiator did not log "handshake with {r.mac} failed: <reason>" before its summary'
    )
    expect_absent(resp, GOT_KEY_RE, QUIET_S, "a responder with the wrong PoP must not get the key")

    text = _msg("from-initiator")
    _send(init, text)
    expect_absent(
        resp,
        re.escape(text),
        QUIET_S,
        "a responder without the key must not log the initiator's message",
    )
    if espnow_bench.host:
        rec = espnow_bench.key_record(r.mac)
        assert rec is None, (
            f"a responder that failed the handshake stored a key record from {rec.provisioner} "
            f"in {espnow_bench.store_dir(r.mac)}"
        )


@pytest.mark.wifi_two_dut
@pytest.mark.parametrize("count, build_dir", [(2, "responder|initiator")], indirect=True)
def test_restarted_responder_keeps_key(dut: list[Any], espnow_bench: EspnowBench) -> None:
    resp, init = dut
    r, i = _boot_all(espnow_bench, [resp, init], ["responder", "initiator"])
    _expect_provisioned(init, found=1, succeeded=1, unfinished=0)
    resp.expect(GOT_KEY_RE, timeout=PROVISION_TIMEOUT)
    _exchange(init, i.mac, [resp], "before-restart")
    stored = _expect_key_stored(espnow_bench, r, i) if espnow_bench.host else None

    resp = espnow_bench.restart(resp, r.mac)
    r2 = expect_boot(resp, "responder", BOOT_TIMEOUT)
    assert r2.mac == r.mac, f"the restarted responder has MAC {r2.mac}, before {r.mac}"
    assert r2.secured, "the restarted responder did not boot secured from its stored key"
    if espnow_bench.host:
        assert espnow_bench.key_record(r.mac) == stored, "the key record changed across the restart"

    expect_absent(resp, GOT_KEY_RE, 0.5, "the initiator provisions only at boot")
    _exchange(init, i.mac, [resp], "after-restart")
    _exchange(resp, r.mac, [init], "from-restarted")


@pytest.mark.wifi_two_dut
@pytest.mark.parametrize("count, build_dir", [(2, "responder|initiator")], indirect=True)
def test_max_payload(dut: list[Any], espnow_bench: EspnowBench) -> None:
    resp, init = dut
    r, i = _boot_all(espnow_bench, [resp, init], ["responder", "initiator"])
    _expect_provisioned(init, found=1, succeeded=1, unfinished=0)
    resp.expect(GOT_KEY_RE, timeout=PROVISION_TIMEOUT)
    limit = max_payload(init.app)

    # Exactly the limit: sent and decrypted whole.
    head = _msg("max")
    text = (head + "-" + "abcdefghijklmnopqrstuvwxyz0123456789" * 8)[:limit]
    assert len(text.encode()) == limit
    _send(init, text)
    expect_decrypted(resp, text, i.mac, MSG_TIMEOUT)

    # One byte over: a clear error on the sender, nothing on air.
    sent_before = len(espnow_bench.frames_from(i.mac)) if espnow_bench.host else 0
    over = text[:-1] + "XY"
    init.write(over)
    m = init.expect(SEND_FAILED_RE, timeout=MSG_TIMEOUT)
    assert (int(m.group(1)), int(m.group(2))) == (limit + 1, limit), m.group(0)
    assert b"espnow_send, count: " not in bytes(init.pexpect_proc.before), (
        "the initiator logged an espnow_send line for the over-long message"
    )

    # A short marker sent afterwards is the next thing on air and the next thing received.
    marker = _msg("after-too-long")
    init.write(marker)
    init.expect(send_re(marker), timeout=MSG_TIMEOUT)
    assert b"espnow_send, count: " not in bytes(init.pexpect_proc.before), (
        "the over-long message produced an espnow_send line"
    )
    expect_decrypted(resp, marker, i.mac, MSG_TIMEOUT)
    if espnow_bench.host:  # the air saw exactly one frame from the initiator: the marker
        frames = espnow_bench.frames_from(i.mac)[sent_before:]
        assert len(frames) == 1, (
            f"the initiator sent {len(frames)} frames (bodies {frames}), expected 1"
        )
    between = bytes(resp.pexpect_proc.before)
    assert b"espnow_recv" not in between, (
        "the responder received something between the max-size message and the marker: "
        f"{between[-300:]!r}"
    )

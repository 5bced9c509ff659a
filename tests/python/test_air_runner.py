"""The runner's pure parts: the node log contract, the node plan, input routing, the demo checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from espnow_sec.runner import logs
from espnow_sec.runner.demo import (
    INITIATOR_MESSAGE,
    RESPONDER_MESSAGE,
    Action,
    Demo,
    Finish,
    Note,
    SendLine,
    describe_exit,
)
from espnow_sec.runner.plan import (
    INITIATOR_MAC,
    NodeSpec,
    bad_pop,
    node_env,
    plan_nodes,
    responder_mac,
    route_input,
)

# --- log lines ---

R1 = "02:00:00:00:01:01"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (
            "I (12) app_main: ESP-NOW responder ready, mac 02:00:00:00:01:0A, channel 6, "
            "not secured",
            logs.Boot("responder", "02:00:00:00:01:0a", 6, False),
        ),
        (
            "I (1) app_main: ESP-NOW initiator ready, mac 02:00:00:00:00:01, channel 1, secured",
            logs.Boot("initiator", INITIATOR_MAC, 1, True),
        ),
        ("W (5) app_main: espnow wait security num: 3", logs.WaitSecurity(3)),
        (
            "I (9) app_main: App key is sent to the device to complete, Spend time: 812ms, "
            "Scan time: 2506ms",
            logs.KeySent(812, 2506),
        ),
        (
            "I (9) app_main: Devices security completed, successed_num: 2, unfinished_num: 1",
            logs.SecurityCompleted(2, 1),
        ),
        ("I (9) app_main: Get APP key", logs.GotAppKey()),
        (
            f"W (9) app_main: handshake with {R1} failed: PoP mismatch: verifier differs",
            logs.HandshakeFailed(R1, "PoP mismatch: verifier differs"),
        ),
        (
            "I (9) app_main: espnow_send, count: 4, size: 23, data: Message from initiator.",
            logs.Sent(4, 23, "Message from initiator."),
        ),
        (
            "E (9) app_main: espnow_send failed: 300 bytes > 250",
            logs.SendFailed("300 bytes > 250"),
        ),
        (
            f"I (9) app_main: espnow_recv, 2 [{R1}][1][-57][23]: a: b [c]",
            logs.Received(True, "a: b [c]", 2, R1, 1, -57, 23),
        ),
        (
            f"W (9) app_main: espnow_recv plaintext (not authenticated), 1 [{R1}][1][-57][2]: hi",
            logs.Received(False, "hi", 1, R1, 1, -57, 2),
        ),
        (
            f"I (9) app_main: espnow_recv, <7> [{R1}][1][-57][23]: Message from initiator.",
            logs.Received(True, "Message from initiator.", 7, R1, 1, -57, 23),
        ),
        (
            f"W (9) app_main: espnow_recv plaintext (not authenticated), <0> [{R1}][1][-5][1]: x",
            logs.Received(False, "x", 0, R1, 1, -5, 1),
        ),
        ("\x1b[0;32mI (9) app_main: Get APP key\x1b[0m", logs.GotAppKey()),
    ],
)
def test_contract_lines_parse(line: str, event: logs.Event) -> None:
    assert logs.parse(line) == event


@pytest.mark.parametrize(
    "line",
    [
        "",
        "random banner",
        "I (9) other_tag: Get APP key",
        "I (9) app_main: something else",
        "I (9) app_main: espnow_recv, 2 [not-a-mac][1][-57][23]: x",
    ],
)
def test_other_lines_are_not_events(line: str) -> None:
    assert logs.parse(line) is None


def test_parse_line_splits_esp_idf_format() -> None:
    assert logs.parse_line("W (123) wifi: scan done\r\n") == logs.LogLine(
        "W", "123", "wifi", "scan done"
    )
    assert logs.parse_line("==1==ERROR: AddressSanitizer") is None


# --- plan and input ---


def test_plan_gives_deterministic_macs_and_bad_pops() -> None:
    init, resps = plan_nodes(3, pop="p", channel=6, bad_pop_responders=frozenset({2}))
    assert init == NodeSpec("initiator", "initiator", INITIATOR_MAC, "p", 6)
    assert [r.name for r in resps] == ["responder-1", "responder-2", "responder-3"]
    assert [r.mac for r in resps] == [responder_mac(i) for i in (1, 2, 3)]
    assert resps[0].mac == "02:00:00:00:01:01" and responder_mac(200) == "02:00:00:00:01:c8"
    assert [r.pop for r in resps] == ["p", bad_pop("p"), "p"] and bad_pop("p") != "p"


@pytest.mark.parametrize(
    ("n", "bad", "match"), [(0, set(), "between 1"), (256, set(), "between 1"), (3, {4}, "1..3")]
)
def test_plan_refuses_nonsense(n: int, bad: set[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plan_nodes(n, bad_pop_responders=frozenset(bad))


def test_node_env_follows_docs_air_md(tmp_path: Path) -> None:
    _, resps = plan_nodes(1, pop="x", channel=3)
    env = node_env(resps[0], tmp_path / "air.sock", tmp_path / "store")
    assert env == {
        "ESPNOW_AIR": str(tmp_path / "air.sock"),
        "ESPNOW_MAC": "02:00:00:00:01:01",
        "ESPNOW_ROLE": "responder",
        "ESPNOW_POP": "x",
        "ESPNOW_CHANNEL": "3",
        "ESPNOW_STORE_DIR": str(tmp_path / "store" / "responder-1"),
    }


NAMES = ["initiator", "responder-1", "responder-2"]


@pytest.mark.parametrize(
    ("line", "routed"),
    [
        ("hello", ("initiator", "hello")),
        ("responder-2: hi there\n", ("responder-2", "hi there")),
        ("r1: x", ("responder-1", "x")),
        ("i: y", ("initiator", "y")),
        ("note: not a node", ("initiator", "note: not a node")),
        ("responder-9: no such node", ("initiator", "responder-9: no such node")),
        ("responder-1:tight", ("responder-1", "tight")),
    ],
)
def test_route_input(line: str, routed: tuple[str, str]) -> None:
    assert route_input(line, NAMES) == routed


# --- the demo machine ---

INIT, RESPS = plan_nodes(3)


def boot(spec: NodeSpec) -> str:
    return f"I (1) app_main: ESP-NOW {spec.role} ready, mac {spec.mac}, channel 1, not secured"


def recv(sender: NodeSpec, text: str, encrypted: bool = True) -> str:
    fields = f"1 [{sender.mac}][1][-50][{len(text)}]: {text}"
    if encrypted:
        return f"I (2) app_main: espnow_recv, {fields}"
    return f"W (2) app_main: espnow_recv plaintext (not authenticated), {fields}"


COMPLETED = "I (3) app_main: Devices security completed, successed_num: {}, unfinished_num: {}"
GOT_KEY = "I (3) app_main: Get APP key"


class Driver:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.sent: list[SendLine] = []
        self.notes: list[str] = []

    def feed(self, node: str, line: str, now: float = 1.0) -> list[Action]:
        actions = self.demo.on_line(node, line, now)
        self._record(actions)
        return actions

    def tick(self, now: float) -> list[Action]:
        actions = self.demo.on_tick(now)
        self._record(actions)
        return actions

    def _record(self, actions: list[Action]) -> None:
        self.sent += [a for a in actions if isinstance(a, SendLine)]
        self.notes += [a.text for a in actions if isinstance(a, Note)]

    def secure(self, good: list[NodeSpec], counts: tuple[int, int]) -> None:
        for spec in [*RESPS, INIT]:
            self.feed(spec.name, boot(spec))
        for spec in good:
            self.feed(spec.name, GOT_KEY)
        self.feed("initiator", COMPLETED.format(*counts))


def make(bad: frozenset[str] = frozenset(), resend: float | None = None) -> Driver:
    return Driver(Demo(INIT, RESPS, bad_pop=bad, now=0.0, timeout=30.0, resend_after=resend))


def test_demo_happy_path() -> None:
    d = make()
    d.secure(RESPS, (3, 0))
    assert d.sent == [SendLine("initiator", INITIATOR_MESSAGE)]
    for r in RESPS:
        d.feed(r.name, recv(INIT, INITIATOR_MESSAGE))
    assert d.sent[-1] == SendLine("responder-1", RESPONDER_MESSAGE)
    for name in ("initiator", "responder-2"):
        d.feed(name, recv(RESPS[0], RESPONDER_MESSAGE))
    assert d.demo.finished is None
    d.feed("responder-3", recv(RESPS[0], RESPONDER_MESSAGE))
    assert d.demo.finished == Finish(
        True,
        "demo: ok: 3/3 responders secured, 2 messages delivered decrypted to every other node "
        "(successed_num: 3, unfinished_num: 0)",
    )
    assert d.feed("initiator", GOT_KEY) == []  # finished: ignores the rest


def test_demo_waits_for_every_app_key_even_after_completed() -> None:
    d = make()
    d.secure(RESPS[:2], (3, 0))
    assert d.sent == []
    d.feed("responder-3", GOT_KEY)
    assert d.sent == [SendLine("initiator", INITIATOR_MESSAGE)]


def test_plaintext_does_not_count_and_shows_in_the_timeout_reason() -> None:
    d = make()
    d.secure(RESPS, (3, 0))
    d.feed("responder-1", recv(INIT, INITIATOR_MESSAGE, encrypted=False))
    d.feed("responder-2", recv(INIT, INITIATOR_MESSAGE))
    d.feed("responder-3", recv(INIT, INITIATOR_MESSAGE))
    assert len(d.sent) == 1
    [finish] = d.tick(31.0)
    assert isinstance(finish, Finish) and not finish.ok
    assert "responder-1 (logged it only as plaintext)" in finish.summary
    assert finish.summary.startswith("demo: FAILED: timed out after 30 s")


def test_wrong_sender_mac_fails() -> None:
    d = make()
    d.secure(RESPS, (3, 0))
    d.feed("responder-1", recv(RESPS[1], INITIATOR_MESSAGE))
    assert d.demo.finished is not None and "expected sender initiator" in d.demo.finished.summary


def test_bad_pop_path_expects_refusal_and_excludes_that_node() -> None:
    d = make(bad=frozenset({"responder-1"}))
    d.secure(RESPS[1:], (2, 1))
    assert d.sent == []  # still waiting for responder-1 to say why it failed
    d.feed("responder-1", f"W (4) app_main: handshake with {INITIATOR_MAC} failed: bad PoP")
    assert d.sent == [SendLine("initiator", INITIATOR_MESSAGE)]
    for name in ("responder-2", "responder-3"):
        d.feed(name, recv(INIT, INITIATOR_MESSAGE))
    assert d.sent[-1] == SendLine("responder-2", RESPONDER_MESSAGE)  # first secured responder
    for name in ("initiator", "responder-3"):
        d.feed(name, recv(RESPS[1], RESPONDER_MESSAGE))
    assert d.demo.finished is not None and d.demo.finished.ok
    assert "responder-1 (wrong PoP) refused as expected: bad PoP" in d.demo.finished.summary
    assert "(successed_num: 2, unfinished_num: 1)" in d.demo.finished.summary


def test_bad_pop_node_getting_the_key_fails() -> None:
    d = make(bad=frozenset({"responder-2"}))
    d.feed("responder-2", GOT_KEY)
    assert d.demo.finished is not None and "wrong PoP but logged 'Get APP key'" in (
        d.demo.finished.summary
    )


def test_wrong_counts_fail_at_once() -> None:
    d = make()
    d.secure(RESPS, (2, 1))
    assert d.demo.finished is not None
    assert "successed_num: 2, unfinished_num: 1; expected successed_num: 3" in (
        d.demo.finished.summary
    )


def test_unexpected_exit_fails_at_once() -> None:
    d = make()
    [finish] = d.demo.on_exit("responder-2", -11)
    assert finish == Finish(
        False, "demo: FAILED: responder-2 exited unexpectedly with signal SIGSEGV"
    )
    assert describe_exit(2) == "status 2"


def test_boot_with_other_mac_fails() -> None:
    d = make()
    d.feed("responder-1", boot(RESPS[1]))
    assert d.demo.finished is not None and "ESPNOW_ROLE/ESPNOW_MAC ignored" in (
        d.demo.finished.summary
    )


def test_timeout_names_nodes_that_did_not_boot() -> None:
    d = make()
    d.feed("responder-1", boot(RESPS[0]))
    [finish] = d.tick(30.0)
    assert isinstance(finish, Finish)
    assert finish.summary.endswith("ready, mac ...') of responder-2, responder-3")
    d = make()
    for spec in RESPS:
        d.feed(spec.name, boot(spec))
    [finish] = d.tick(30.0)
    assert isinstance(finish, Finish) and finish.summary.endswith("of initiator")


def test_timeout_names_what_is_missing() -> None:
    d = make()
    for spec in [*RESPS, INIT]:
        d.feed(spec.name, boot(spec))
    d.feed("responder-1", GOT_KEY)
    [finish] = d.tick(30.0)
    assert isinstance(finish, Finish)
    assert "initiator 'Devices security completed'" in finish.summary
    assert "responder-2 'Get APP key'" in finish.summary
    assert "responder-1 'Get APP key'" not in finish.summary


def test_send_failure_of_the_sender_fails() -> None:
    d = make()
    d.secure(RESPS, (3, 0))
    d.feed("initiator", "E (5) app_main: espnow_send failed: too long")
    assert d.demo.finished is not None and "could not send" in d.demo.finished.summary


def test_resend_only_with_loss_and_bounded() -> None:
    quiet = make()
    quiet.secure(RESPS, (3, 0))
    quiet.tick(10.0)
    assert len(quiet.sent) == 1  # no loss configured: no resends

    lossy = make(resend=2.0)
    lossy.secure(RESPS, (3, 0))
    lossy.tick(3.5)
    assert len(lossy.sent) == 2 and "not yet received by responder-1" in lossy.notes[-1]
    for t in range(3, 29):
        lossy.tick(float(t))
    assert len(lossy.sent) == lossy.demo.max_sends
    for r in RESPS:
        lossy.feed(r.name, recv(INIT, INITIATOR_MESSAGE), 29.0)
    assert lossy.sent[-1].text == RESPONDER_MESSAGE


def test_responders_secured_by_an_earlier_run_count_as_secured() -> None:
    d = make()
    for spec in RESPS:
        d.feed(
            spec.name,
            boot(spec).replace("not secured", "secured") if spec is RESPS[0] else boot(spec),
        )
    d.feed("initiator", boot(INIT))
    for spec in RESPS[1:]:
        d.feed(spec.name, GOT_KEY)
    d.feed("initiator", COMPLETED.format(2, 0))  # the initiator skipped responder-1
    assert d.sent == [SendLine("initiator", INITIATOR_MESSAGE)]
    for r in RESPS:
        d.feed(r.name, recv(INIT, INITIATOR_MESSAGE))
    for name in ("initiator", "responder-2", "responder-3"):
        d.feed(name, recv(RESPS[0], RESPONDER_MESSAGE))
    assert d.demo.finished is not None and d.demo.finished.ok
    assert "3/3 responders secured (1 already" in d.demo.finished.summary


def test_wrong_pop_responder_with_an_old_key_fails_clearly() -> None:
    d = make(bad=frozenset({"responder-2"}))
    d.feed("responder-2", boot(RESPS[1]).replace("not secured", "secured"))
    assert d.demo.finished is not None and "fresh --store-dir" in d.demo.finished.summary

"""The demo's story and checks, as a state machine over node log lines and time. Pure.

The driver (cli.py) feeds it every line a node prints, the time, and node exits; it answers with
actions: a line to type into a node's UART, a progress note, or the final verdict.

Story: the initiator secures every responder (``Devices security completed, successed_num: N,
unfinished_num: M``, each good responder ``Get APP key``, each wrong-PoP responder logs why its
handshake failed); then the initiator types ``Message from initiator.`` and the first secured
responder ``Message from responder.``; every other secured node must log each one decrypted.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from espnow_sec.runner import logs
from espnow_sec.runner.plan import NodeSpec

INITIATOR_MESSAGE = "Message from initiator."
RESPONDER_MESSAGE = "Message from responder."


@dataclass(frozen=True)
class SendLine:
    node: str
    text: str


@dataclass(frozen=True)
class Note:
    text: str


@dataclass(frozen=True)
class Finish:
    ok: bool
    summary: str  # the whole line, starting with "demo: "


Action = SendLine | Note | Finish


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"signal {signal.Signals(-status).name}"
        except ValueError:
            return f"signal {-status}"
    return f"status {status}"


@dataclass
class _Message:
    sender: NodeSpec
    text: str
    expected: set[str]
    received: set[str] = field(default_factory=set)
    plaintext: set[str] = field(default_factory=set)
    sends: int = 0
    last_send: float = 0.0


class Demo:
    """Drives and checks one demo run. ``now`` is any monotonic clock, in seconds."""

    def __init__(
        self,
        initiator: NodeSpec,
        responders: list[NodeSpec],
        *,
        bad_pop: frozenset[str] = frozenset(),
        now: float,
        timeout: float,
        resend_after: float | None = None,
        max_sends: int = 6,
    ) -> None:
        self.initiator = initiator
        self.responders = responders
        self.specs = {s.name: s for s in [initiator, *responders]}
        self.bad = set(bad_pop)
        self.good = [r.name for r in responders if r.name not in self.bad]
        self.start = now
        self.timeout = timeout
        self.deadline = now + timeout
        self.resend_after = resend_after
        self.max_sends = max_sends
        self.finished: Finish | None = None
        self.phase = "secure"
        self.completed: logs.SecurityCompleted | None = None
        self.got_key: set[str] = set()
        self.failures: dict[str, str] = {}  # node -> reason of its own "handshake ... failed"
        self.booted: set[str] = set()
        self.already: set[str] = set()  # good responders that booted with a key (reused store)
        self.messages: list[_Message] = []
        self._current = 0
        secured_nodes = [initiator.name, *self.good]
        senders = [initiator] + [self.specs[n] for n in self.good[:1]]
        texts = [INITIATOR_MESSAGE, RESPONDER_MESSAGE]
        for sender, text in zip(senders, texts, strict=False):
            expected = {n for n in secured_nodes if n != sender.name}
            self.messages.append(_Message(sender, text, expected))

    # --- inputs ---

    def on_line(self, node: str, line: str, now: float) -> list[Action]:
        if self.finished is not None:
            return []
        event = logs.parse(line)
        if event is None:
            return self.on_tick(now)
        actions = self._event(node, event, now)
        return actions if self.finished is not None else actions + self.on_tick(now)

    def on_exit(self, node: str, status: int) -> list[Action]:
        if self.finished is not None:
            return []
        return self._fail(f"{node} exited unexpectedly with {describe_exit(status)}")

    def on_tick(self, now: float) -> list[Action]:
        if self.finished is not None:
            return []
        if now >= self.deadline:
            return self._fail(f"timed out after {self.timeout:g} s waiting for {self._pending()}")
        if self.phase == "messages" and self.resend_after is not None:
            msg = self.messages[self._current]
            if now - msg.last_send >= self.resend_after and msg.sends < self.max_sends:
                missing = ", ".join(sorted(msg.expected - msg.received))
                note = Note(f"resending {msg.text!r} (not yet received by {missing})")
                return [note, *self._send(msg, now)]
        return []

    # --- the story ---

    def _event(self, node: str, event: logs.Event, now: float) -> list[Action]:
        spec = self.specs.get(node)
        if isinstance(event, logs.Boot) and spec is not None:
            self.booted.add(node)
            if event.mac != spec.mac or event.role != spec.role:
                return self._fail(
                    f"{node} booted as {event.role} {event.mac}, but was started as "
                    f"{spec.role} {spec.mac} (ESPNOW_ROLE/ESPNOW_MAC ignored?)"
                )
            if event.secured and spec.role == "responder":
                if node in self.bad:
                    return self._fail(
                        f"{node} (wrong PoP) already holds a key from an earlier run: "
                        "use a fresh --store-dir for the wrong-PoP check"
                    )
                self.already.add(node)
                self.got_key.add(node)
                return [Note(f"{node} is already secured (key store of an earlier run)")]
            return []
        if isinstance(event, logs.HandshakeFailed):
            self.failures.setdefault(node, event.reason)
            note = Note(f"{node}: handshake with {event.peer} failed: {event.reason}")
            return [note, *self._maybe_secured(now)]
        if isinstance(event, logs.GotAppKey):
            if node in self.bad:
                return self._fail(f"{node} has a wrong PoP but logged 'Get APP key'")
            self.got_key.add(node)
            return self._maybe_secured(now)
        if isinstance(event, logs.SecurityCompleted) and node == self.initiator.name:
            if self.completed is None:
                self.completed = event
                # Responders secured in an earlier run may be skipped (upstream skips those its
                # own initiator configured) or secured again: both are fine.
                low, high = len(self.good) - len(self.already), len(self.good)
                if not low <= event.successed <= high or event.unfinished != len(self.bad):
                    want = str(high) if low == high else f"{low}..{high}"
                    return self._fail(
                        f"initiator reported successed_num: {event.successed}, unfinished_num: "
                        f"{event.unfinished}; expected successed_num: {want}, "
                        f"unfinished_num: {len(self.bad)}"
                    )
            return self._maybe_secured(now)
        if isinstance(event, logs.SendFailed) and self.phase == "messages":
            msg = self.messages[self._current]
            if node == msg.sender.name:
                return self._fail(f"{node} could not send {msg.text!r}: {event.reason}")
            return []
        if isinstance(event, logs.Received) and self.phase == "messages":
            return self._received(node, event, now)
        return []

    def _security_done(self) -> bool:
        return (
            self.completed is not None
            and set(self.good) <= self.got_key
            and self.bad <= set(self.failures)
        )

    def _maybe_secured(self, now: float) -> list[Action]:
        if self.phase != "secure" or not self._security_done():
            return []
        self.phase = "messages"
        secured = f"{len(self.good)}/{len(self.responders)} responders secured"
        return [Note(secured), *self._start_message(now)]

    def _start_message(self, now: float) -> list[Action]:
        if self._current >= len(self.messages):
            return self._succeed()
        msg = self.messages[self._current]
        if not msg.expected:
            self._current += 1
            return self._start_message(now)
        return self._send(msg, now)

    def _send(self, msg: _Message, now: float) -> list[Action]:
        msg.sends += 1
        msg.last_send = now
        return [SendLine(msg.sender.name, msg.text)]

    def _received(self, node: str, event: logs.Received, now: float) -> list[Action]:
        msg = self.messages[self._current]
        if event.text != msg.text or node not in msg.expected:
            return []
        if not event.encrypted:
            msg.plaintext.add(node)
            return [Note(f"{node} logged {msg.text!r} as plaintext: does not count")]
        if event.mac != msg.sender.mac:
            return self._fail(
                f"{node} logged {msg.text!r} from {event.mac}, expected sender "
                f"{msg.sender.name} {msg.sender.mac}"
            )
        msg.received.add(node)
        if msg.received >= msg.expected:
            self._current += 1
            return self._start_message(now)
        return []

    # --- verdicts ---

    def _pending(self) -> str:
        if self.phase == "secure":
            silent = [r.name for r in self.responders if r.name not in self.booted]
            if not silent and self.initiator.name not in self.booted:
                silent = [self.initiator.name]
            if silent:  # the initiator starts only once every responder booted
                return "the boot line ('ESP-NOW <role> ready, mac ...') of " + ", ".join(silent)
            wants = []
            if self.completed is None:
                wants.append("initiator 'Devices security completed'")
            wants += [f"{n} 'Get APP key'" for n in self.good if n not in self.got_key]
            wants += [
                f"{n} (wrong PoP) 'handshake with ... failed'"
                for n in sorted(self.bad)
                if n not in self.failures
            ]
            return "; ".join(wants)
        msg = self.messages[self._current]
        missing = []
        for n in sorted(msg.expected - msg.received):
            missing.append(f"{n} (logged it only as plaintext)" if n in msg.plaintext else n)
        return (
            f"{msg.text!r} from {msg.sender.name} to be logged decrypted (espnow_recv) by: "
            + ", ".join(missing)
            + f" (sent {msg.sends}x)"
        )

    def _fail(self, reason: str) -> list[Action]:
        self.finished = Finish(False, f"demo: FAILED: {reason}")
        return [self.finished]

    def _succeed(self) -> list[Action]:
        assert self.completed is not None
        parts = [f"ok: {len(self.good)}/{len(self.responders)} responders secured"]
        if self.already:
            parts[0] += f" ({len(self.already)} already, from an earlier run's key store)"
        for n in sorted(self.bad):
            parts.append(f"{n} (wrong PoP) refused as expected: {self.failures[n]}")
        resends = sum(m.sends - 1 for m in self.messages if m.sends)
        delivered = len([m for m in self.messages if m.expected])
        every = "every other secured node" if self.bad else "every other node"
        parts.append(
            f"{delivered} messages delivered decrypted to {every}"
            + (f" ({resends} resends)" if resends else "")
        )
        counts = (
            f"(successed_num: {self.completed.successed}, "
            f"unfinished_num: {self.completed.unfinished})"
        )
        self.finished = Finish(True, "demo: " + ", ".join(parts) + " " + counts)
        return [self.finished]

"""The host node's log lines (tag ``app_main``), parsed in one place.

The runner, its demo and the end-to-end tests all read node output through ``parse``. Lines are
ESP-IDF formatted, ``I (1234) app_main: text``; ANSI colours, if a build enables them, are
stripped. Lines that are not part of the contract parse to ``None`` (or ``LogLine``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG = "app_main"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINE = re.compile(r"^(?P<level>[EWIDV]) \((?P<time>[^)]*)\) (?P<tag>[^:]+): (?P<text>.*)$")
_MAC = r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}"


@dataclass(frozen=True)
class LogLine:
    """Any ESP-IDF formatted line."""

    level: str
    time: str
    tag: str
    text: str


@dataclass(frozen=True)
class Boot:
    role: str
    mac: str
    channel: int
    secured: bool


@dataclass(frozen=True)
class WaitSecurity:
    num: int


@dataclass(frozen=True)
class KeySent:
    spend_ms: int
    scan_ms: int


@dataclass(frozen=True)
class SecurityCompleted:
    successed: int
    unfinished: int


@dataclass(frozen=True)
class GotAppKey:
    pass


@dataclass(frozen=True)
class HandshakeFailed:
    peer: str
    reason: str


@dataclass(frozen=True)
class Sent:
    count: int
    size: int
    data: str


@dataclass(frozen=True)
class SendFailed:
    reason: str


@dataclass(frozen=True)
class Received:
    """``espnow_recv``: decrypted (``encrypted``) or the plaintext warning form."""

    encrypted: bool
    text: str
    count: int | None = None
    mac: str | None = None
    channel: int | None = None
    rssi: int | None = None
    size: int | None = None


Event = (
    Boot | WaitSecurity | KeySent | SecurityCompleted | GotAppKey | HandshakeFailed | Sent
    | SendFailed | Received
)  # fmt: skip

_EVENTS: list[tuple[str, re.Pattern[str]]] = [
    (
        "boot",
        re.compile(
            rf"^ESP-NOW (?P<role>initiator|responder) ready, mac (?P<mac>{_MAC}), "
            r"channel (?P<channel>\d+), (?P<secured>secured|not secured)$"
        ),
    ),
    ("wait", re.compile(r"^espnow wait security num: (?P<num>\d+)$")),
    (
        "keysent",
        re.compile(
            r"^App key is sent to the device to complete, Spend time: (?P<spend>\d+)ms, "
            r"Scan time: (?P<scan>\d+)ms$"
        ),
    ),
    (
        "completed",
        re.compile(
            r"^Devices security completed, successed_num: (?P<ok>\d+), "
            r"unfinished_num: (?P<unfinished>\d+)$"
        ),
    ),
    ("gotkey", re.compile(r"^Get APP key$")),
    ("hsfail", re.compile(rf"^handshake with (?P<peer>{_MAC}) failed: (?P<reason>.*)$")),
    (
        "sent",
        re.compile(
            r"^espnow_send, count: (?P<count>\d+), size: (?P<size>\d+), data: (?P<data>.*)$"
        ),
    ),
    ("sendfail", re.compile(r"^espnow_send failed: (?P<reason>.*)$")),
    ("recv", re.compile(r"^espnow_recv, (?P<rest><?\d+>? \[.*)$")),
    ("plain", re.compile(r"^espnow_recv plaintext \(not authenticated\),? ?(?P<rest>.*)$")),
]


def strip_ansi(line: str) -> str:
    return _ANSI.sub("", line)


def parse_line(line: str) -> LogLine | None:
    """Split an ESP-IDF log line; None for anything else (banners, sanitizer output, ...)."""
    m = _LINE.match(strip_ansi(line).rstrip("\r\n"))
    if m is None:
        return None
    return LogLine(m["level"], m["time"], m["tag"].strip(), m["text"])


_RECV_FIELDS = re.compile(
    rf"^<?(?P<count>\d+)>? \[(?P<mac>{_MAC})\]\[(?P<channel>\d+)\]"
    r"\[(?P<rssi>-?\d+)\]\[(?P<size>\d+)\]: (?P<text>.*)$"
)


def _received(encrypted: bool, fields: str) -> Received:
    """``N [mac][channel][rssi][size]: text``; the count may be printed in angle brackets
    (``<N>``, as upstream's example does); the plaintext form may say less."""
    m = _RECV_FIELDS.match(fields)
    if m is None:
        return Received(encrypted, fields.split(": ", 1)[-1])
    return Received(
        encrypted,
        m["text"],
        int(m["count"]),
        m["mac"].lower(),
        int(m["channel"]),
        int(m["rssi"]),
        int(m["size"]),
    )


def parse(line: str) -> Event | None:
    """The contract event a node line carries, or None."""
    log = parse_line(line)
    if log is None or log.tag != TAG:
        return None
    for kind, pattern in _EVENTS:
        m = pattern.match(log.text)
        if m is None:
            continue
        if kind == "boot":
            return Boot(m["role"], m["mac"].lower(), int(m["channel"]), m["secured"] == "secured")
        if kind == "wait":
            return WaitSecurity(int(m["num"]))
        if kind == "keysent":
            return KeySent(int(m["spend"]), int(m["scan"]))
        if kind == "completed":
            return SecurityCompleted(int(m["ok"]), int(m["unfinished"]))
        if kind == "gotkey":
            return GotAppKey()
        if kind == "hsfail":
            return HandshakeFailed(m["peer"].lower(), m["reason"])
        if kind == "sent":
            return Sent(int(m["count"]), int(m["size"]), m["data"])
        if kind == "sendfail":
            return SendFailed(m["reason"])
        if kind == "recv":
            received = _received(True, m["rest"])
            return received if received.mac is not None else None
        if kind == "plain":
            return _received(False, m["rest"])
    return None

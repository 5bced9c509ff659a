"""Who the runner starts and how: names, MACs, roles, environments; where typed lines go. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INITIATOR = "initiator"
INITIATOR_MAC = "02:00:00:00:00:01"
MAX_RESPONDERS = 255
DEFAULT_POP = "espnow_pop"
DEFAULT_CHANNEL = 1


@dataclass(frozen=True)
class NodeSpec:
    name: str
    role: str  # "initiator" or "responder"
    mac: str
    pop: str
    channel: int

    @property
    def mac_hex(self) -> str:
        return self.mac.replace(":", "")


def responder_name(index: int) -> str:
    return f"responder-{index}"


def responder_mac(index: int) -> str:
    return f"02:00:00:00:01:{index:02x}"


def bad_pop(pop: str) -> str:
    """A PoP that differs from ``pop``."""
    return f"wrong-{pop}"


def plan_nodes(
    responders: int,
    *,
    pop: str = DEFAULT_POP,
    channel: int = DEFAULT_CHANNEL,
    bad_pop_responders: frozenset[int] = frozenset(),
) -> tuple[NodeSpec, list[NodeSpec]]:
    """The initiator and ``responders`` responders (1-based; those in ``bad_pop_responders``
    get a PoP that differs from the initiator's)."""
    if not 1 <= responders <= MAX_RESPONDERS:
        raise ValueError(f"--responders must be between 1 and {MAX_RESPONDERS}, got {responders}")
    for k in bad_pop_responders:
        if not 1 <= k <= responders:
            raise ValueError(
                f"--bad-pop-responder {k} does not exist: responders are numbered 1..{responders}"
            )
    initiator = NodeSpec(INITIATOR, "initiator", INITIATOR_MAC, pop, channel)
    resps = [
        NodeSpec(
            responder_name(i),
            "responder",
            responder_mac(i),
            bad_pop(pop) if i in bad_pop_responders else pop,
            channel,
        )
        for i in range(1, responders + 1)
    ]
    return initiator, resps


def node_env(spec: NodeSpec, air_socket: Path, store_root: Path) -> dict[str, str]:
    """The ESPNOW_* variables of docs/air.md for one node; its key store is ``store_root/name``."""
    return {
        "ESPNOW_AIR": str(air_socket),
        "ESPNOW_MAC": spec.mac,
        "ESPNOW_ROLE": spec.role,
        "ESPNOW_POP": spec.pop,
        "ESPNOW_CHANNEL": str(spec.channel),
        "ESPNOW_STORE_DIR": str(store_root / spec.name),
    }


def route_input(line: str, names: list[str]) -> tuple[str, str]:
    """``<node>: text`` goes to that node, anything else to the initiator.

    ``rN`` is short for ``responder-N`` and ``i`` for ``initiator``. A prefix that is no node's
    name is part of the text.
    """
    text = line.rstrip("\r\n")
    head, sep, rest = text.partition(":")
    if sep:
        name = head.strip()
        if name == "i":
            name = INITIATOR
        elif name[:1] == "r" and name[1:].isdigit():
            name = responder_name(int(name[1:]))
        if name in names:
            return name, rest[1:] if rest.startswith(" ") else rest
    return INITIATOR, text

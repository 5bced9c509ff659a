"""A tiny in-process network of v2 machines with virtual time (tests, scenario vectors).

Frames sent in one step are delivered in order; ``drop`` decides per frame whether the air
loses it (e.g. "the first CTRL_ACK"). Broadcast reaches every node but the sender.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .constants import BROADCAST_MAC
from .events import Event, Outgoing
from .node import V2Node

Drop = Callable[[bytes, bytes, bytes], bool]  # (src, dst, frame) -> lose it


@dataclass
class Air:
    nodes: dict[bytes, V2Node] = field(default_factory=dict)
    now: int = 0
    drop: Drop | None = None
    log: list[tuple[int, bytes, bytes, bytes, bool]] = field(default_factory=list)
    events: dict[bytes, list[Event]] = field(default_factory=dict)

    def add(self, node: V2Node) -> V2Node:
        self.nodes[node.mac] = node
        self.events.setdefault(node.mac, [])
        return node

    def send(self, src: bytes, outs: list[Outgoing]) -> None:
        queue = [(src, o) for o in outs]
        while queue:
            s, o = queue.pop(0)
            lost = self.drop is not None and self.drop(s, o.dst, o.frame)
            self.log.append((self.now, s, o.dst, o.frame, lost))
            if lost:
                continue
            targets = [m for m in self.nodes if m != s] if o.dst == BROADCAST_MAC else [o.dst]
            for t in targets:
                node = self.nodes.get(t)
                if node is not None:
                    queue += [(t, r) for r in node.on_frame(s, o.dst, o.frame, self.now)]
            self._collect()

    def _collect(self) -> None:
        for mac, node in self.nodes.items():
            self.events[mac] += node.take_events()

    def run(self, until: int, step: int = 5) -> None:
        while self.now < until:
            self.now = min(self.now + step, until)
            for mac, node in list(self.nodes.items()):
                self.send(mac, node.tick(self.now))
        self._collect()

    def inject(self, src: bytes, dst: bytes, frame: bytes) -> None:
        self.send(src, [Outgoing(dst, frame)])

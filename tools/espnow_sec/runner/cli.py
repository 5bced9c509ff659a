"""``espnow-sec-net``: start an air and host nodes; ``run`` interactively or play the ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType, TracebackType

from espnow_sec.runner import logs
from espnow_sec.runner.demo import Demo, Finish, Note, SendLine, describe_exit
from espnow_sec.runner.plan import (
    DEFAULT_CHANNEL,
    DEFAULT_POP,
    MAX_RESPONDERS,
    NodeSpec,
    node_env,
    plan_nodes,
    route_input,
)
from espnow_sec.runner.procs import Child, Event, Output, Typed, is_executable, read_stdin, stop_all

PROG = "espnow-sec-net"
AIR = "air"
DEFAULT_NODE_BIN = Path("build/host/default/espnow_node.elf")
AIR_START_TIMEOUT_S = 10.0
BOOT_TIMEOUT_S = 15.0
RESEND_AFTER_S = 2.0


class NetError(Exception):
    """The network could not be set up; the message says what to do."""


class UsageError(NetError):
    """A command-line value that cannot work (exit 2, nothing started)."""


def repo_root() -> Path:
    here = Path(__file__).resolve().parents[3]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def say(text: str) -> None:
    print(text, flush=True)


class Net:
    """One air and its nodes. A context manager: leaving it always stops every child."""

    def __init__(
        self,
        node_bin: Path,
        *,
        store_root: Path | None,
        air_args: list[str],
        protocol: str | None = None,
    ) -> None:
        self.node_bin = node_bin
        self.protocol = protocol
        self.workdir = Path(tempfile.mkdtemp(prefix="espnow-net-"))
        self.socket = self.workdir / "air.sock"
        self.store_root = store_root if store_root is not None else self.workdir / "store"
        self.air_args = air_args
        self.events: queue.Queue[Event] = queue.Queue()
        self.children: dict[str, Child] = {}
        self.stopping = False

    def __enter__(self) -> Net:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- children ---

    def start_air(self) -> None:
        argv = [sys.executable, "-m", "espnow_sec.air", "--socket", str(self.socket)]
        self.children[AIR] = Child(AIR, argv + self.air_args, self.events, cwd=self.workdir)
        deadline = time.monotonic() + AIR_START_TIMEOUT_S
        while time.monotonic() < deadline:
            event = self.next_event(0.1)
            if isinstance(event, Output) and event.name == AIR:
                if event.line is None:
                    raise NetError(f"the air exited at start with {self._status(AIR)}")
                if event.line.startswith("air: listening on"):
                    return
        raise NetError(f"the air printed no 'air: listening on' within {AIR_START_TIMEOUT_S:g} s")

    def start_node(self, spec: NodeSpec) -> None:
        env = dict(os.environ)
        env.update(node_env(spec, self.socket, self.store_root))
        if self.protocol is not None:
            env["ESPNOW_PROTOCOL"] = self.protocol
        try:
            (self.store_root / spec.name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--store-dir: cannot create {self.store_root / spec.name}: {exc.strerror or exc}"
            ) from None
        self.children[spec.name] = Child(
            spec.name, [str(self.node_bin)], self.events, env=env, cwd=self.workdir
        )

    def type_into(self, name: str, text: str) -> bool:
        child = self.children.get(name)
        if child is None or not child.running():
            say(f"[runner] {name} is not running; line not sent")
            return False
        try:
            child.write_line(text)
        except OSError as exc:
            say(f"[runner] cannot type into {name}: {exc}")
            return False
        return True

    def _status(self, name: str) -> str:
        status = self.children[name].exit_status()
        return "an unknown status (still running?)" if status is None else describe_exit(status)

    def exit_status(self, name: str) -> int:
        status = self.children[name].exit_status()
        return -signal.SIGKILL if status is None else status

    # --- events ---

    def next_event(self, timeout: float | None) -> Event | None:
        """The next event, or None after ``timeout``; prints every child line with its name."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(event, Output) and event.line is not None:
            say(event.line if event.name == AIR else f"[{event.name}] {event.line}")
        return event

    def wait_booted(self, names: list[str], timeout: float) -> None:
        """Until each of ``names`` printed its boot line; NetError if one exits or is silent."""
        waiting = set(names)
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NetError(
                    f"no boot line ('ESP-NOW <role> ready, mac ...') within {timeout:g} s from: "
                    + ", ".join(sorted(waiting))
                )
            event = self.next_event(min(left, 0.2))
            if not isinstance(event, Output):
                continue
            if event.line is None:
                raise NetError(f"{event.name} exited at start with {self._status(event.name)}")
            if isinstance(logs.parse(event.line), logs.Boot):
                waiting.discard(event.name)

    def stop(self) -> None:
        """Stop nodes, then the air; print what they said on the way out; clean up."""
        if self.stopping:
            return
        self.stopping = True
        # A second Ctrl-C must not cut the clean-up short and leave orphans behind.
        saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._stop_children()
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_children(self) -> None:
        nodes = [c for n, c in self.children.items() if n != AIR]
        stop_all(nodes)
        if AIR in self.children:
            stop_all([self.children[AIR]])
        for child in self.children.values():
            child.join_reader(1.0)
        while self.next_event(0) is not None:
            pass


# --- modes ---


def _air_args(args: argparse.Namespace) -> list[str]:
    out = ["--loss", str(args.loss), "--seed", str(args.seed)]
    out += ["--latency-ms", str(args.latency_ms), "--log-level", args.air_log_level]
    if args.pcap:
        out += ["--pcap", str(Path(args.pcap).resolve())]
    return out


def _node_bin(args: argparse.Namespace) -> Path:
    root = repo_root()
    path = Path(args.node_bin) if args.node_bin else root / DEFAULT_NODE_BIN
    if not is_executable(path):
        what = "is not executable" if path.exists() else "not found"
        raise UsageError(
            f"node binary {what}: {path}\n"
            f"  build the host node first: run `make build` in {root}"
            " (or pass --node-bin PATH)"
        )
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise UsageError(f"node binary cannot be read: {path}: {exc.strerror or exc}") from None
    if magic != b"\x7fELF" and not magic.startswith(b"#!"):
        raise UsageError(
            f"node binary is not a program (neither ELF nor a #! script): {path}; "
            "pass the host node, e.g. build/host/default/espnow_node.elf"
        )
    return path


def _plan(args: argparse.Namespace) -> tuple[NodeSpec, list[NodeSpec]]:
    bad = frozenset(getattr(args, "bad_pop_responder", None) or [])
    try:
        return plan_nodes(
            args.responders, pop=args.pop, channel=args.channel, bad_pop_responders=bad
        )
    except ValueError as exc:
        raise NetError(str(exc)) from None


def _store_root(args: argparse.Namespace) -> Path | None:
    if not args.store_dir:
        return None
    root = Path(args.store_dir).resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"--store-dir {args.store_dir} is not a folder: give a folder for the key stores"
        )
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"--store-dir {args.store_dir}: cannot create or write it (check {existing})"
        )
    return root


def cmd_run(args: argparse.Namespace) -> int:
    initiator, responders = _plan(args)
    node_bin = _node_bin(args)
    names = [initiator.name] + [r.name for r in responders]
    with Net(
        node_bin, store_root=_store_root(args), air_args=_air_args(args), protocol=args.protocol
    ) as net:
        net.start_air()
        for spec in responders:
            net.start_node(spec)
        net.wait_booted([r.name for r in responders], BOOT_TIMEOUT_S)
        net.start_node(initiator)
        net.wait_booted([initiator.name], BOOT_TIMEOUT_S)
        say(
            f"[runner] ready: type `<node>: text` ({', '.join(names)}; rN for responder-N) "
            "or just `text` for the initiator; Ctrl-D or Ctrl-C stops"
        )
        read_stdin(net.events, sys.stdin)
        while True:
            event = net.next_event(0.5)
            if isinstance(event, Typed):
                if event.line is None:
                    say("[runner] end of input: stopping")
                    return 0
                if event.line.strip():
                    net.type_into(*route_input(event.line, names))
            elif isinstance(event, Output) and event.line is None:
                status = describe_exit(net.exit_status(event.name))
                say(f"[runner] {event.name} exited with {status}")
                if event.name == AIR:
                    say("[runner] the air is gone: stopping")
                    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    initiator, responders = _plan(args)
    node_bin = _node_bin(args)
    bad = frozenset(r.name for r in responders if r.pop != initiator.pop)
    with Net(
        node_bin, store_root=_store_root(args), air_args=_air_args(args), protocol=args.protocol
    ) as net:
        net.start_air()
        demo = Demo(
            initiator,
            responders,
            bad_pop=bad,
            now=time.monotonic(),
            timeout=args.timeout,
            # A message that has not arrived after RESEND_AFTER_S is typed again (lost frames);
            # the summary counts such resends.
            resend_after=RESEND_AFTER_S,
        )
        for spec in responders:
            net.start_node(spec)
        initiator_started = False
        while demo.finished is None:
            event = net.next_event(0.1)
            now = time.monotonic()
            if isinstance(event, Output) and event.line is None:
                actions = demo.on_exit(event.name, net.exit_status(event.name))
            elif isinstance(event, Output) and event.line is not None and event.name != AIR:
                actions = demo.on_line(event.name, event.line, now)
            else:
                actions = demo.on_tick(now)
            if not initiator_started and all(r.name in demo.booted for r in responders):
                initiator_started = True
                net.start_node(initiator)
            for action in actions:
                if isinstance(action, Note):
                    say(f"[demo] {action.text}")
                elif isinstance(action, SendLine):
                    say(f"[demo] typing {action.text!r} into {action.node}")
                    if not net.type_into(action.node, action.text):
                        demo.finished = Finish(
                            False, f"demo: FAILED: could not type into {action.node}"
                        )
        net.stop()
        say(demo.finished.summary)
        return 0 if demo.finished.ok else 1


# --- command line ---


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _responder_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 1 <= value <= MAX_RESPONDERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_RESPONDERS}, got {value}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Start a simulated air and host ESP-NOW nodes (1 initiator + N responders).",
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--node-bin", help=f"host node executable (default: <repo>/{DEFAULT_NODE_BIN})"
    )
    common.add_argument("--pop", default=DEFAULT_POP, help="Proof of Possession of every node")
    common.add_argument(
        "--protocol",
        choices=["compat", "v2"],
        help="wire protocol of every node (ESPNOW_PROTOCOL; default: the build's configuration)",
    )
    common.add_argument("--channel", type=int, default=DEFAULT_CHANNEL, help="Wi-Fi channel")
    common.add_argument(
        "--store-dir", help="key stores go to DIR/<node name> (default: a fresh temp dir per run)"
    )
    common.add_argument("--loss", type=_probability, default=0.0, help="air loss probability")
    common.add_argument("--seed", type=int, default=1, help="air RNG seed (loss, RSSI)")
    common.add_argument("--latency-ms", type=float, default=0.0, help="air delivery latency")
    common.add_argument("--pcap", help="write everything on air to this pcap file")
    common.add_argument(
        "--air-log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )

    run = sub.add_parser(
        "run",
        parents=[common],
        help="interactive: type `<node>: text` to send from a node",
        description="Type `<node>: text` (or `text` for the initiator) to send it from that node's "
        "UART; Ctrl-D or Ctrl-C stops everything.",
    )
    run.add_argument("--responders", type=_responder_count, default=3, help="number of responders")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="scripted: secure everyone, exchange two messages, exit 0 on success",
    )
    demo.add_argument("--responders", type=_responder_count, default=3, help="number of responders")
    demo.add_argument(
        "--bad-pop-responder",
        type=int,
        action="append",
        metavar="K",
        help="give responder K a wrong PoP: it must be refused (repeatable)",
    )
    demo.add_argument("--timeout", type=_positive, default=60.0, help="give up after SEC seconds")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Explicit, so that SIGINT works even where a shell started us with it ignored (``cmd &``).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return int(args.func(args))
    except NetError as exc:
        prefix = "demo: FAILED: " if args.mode == "demo" else f"{PROG}: "
        print(f"{prefix}{exc}", file=sys.stderr if args.mode != "demo" else sys.stdout, flush=True)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            if args.mode == "demo":
                say("demo: FAILED: interrupted")
            else:
                say("[runner] interrupted: stopped")
        return 130 if args.mode == "demo" else 0

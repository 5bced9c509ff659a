"""Child processes of the runner: start, read their lines, type into their stdin, stop them.

Every child's stdout (stderr merged) is read by one thread that posts ``Output`` events to a
shared queue; the runner's main thread is the only one that prints or decides anything.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STOP_GRACE_S = 3.0


@dataclass(frozen=True)
class Output:
    """A line a child printed, or ``line=None`` when its stdout closed (it exited)."""

    name: str
    line: str | None
    when: float


@dataclass(frozen=True)
class Typed:
    """A line typed on the runner's stdin, or ``line=None`` at EOF (Ctrl-D)."""

    line: str | None


Event = Output | Typed


class Child:
    """One child process, in its own session so a terminal's Ctrl-C reaches only the runner."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        events: queue.Queue[Event],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            bufsize=0,
        )
        self._reader = threading.Thread(
            target=_pump, args=(name, self.proc.stdout, events), name=f"read-{name}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def write_line(self, text: str) -> None:
        """Type one line into the child's stdin (its UART); OSError if it is gone."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def exit_status(self, timeout: float = 2.0) -> int | None:
        """The exit status once stdout closed (a child may close it just before exiting)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout)
        return None

    def join_reader(self, timeout: float) -> None:
        self._reader.join(timeout)


def _pump(name: str, stream: IO[bytes] | None, events: queue.Queue[Event]) -> None:
    assert stream is not None
    try:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            events.put(Output(name, text, time.monotonic()))
    except (OSError, ValueError):
        pass  # closed under us during shutdown
    events.put(Output(name, None, time.monotonic()))


def read_stdin(events: queue.Queue[Event], stream: IO[str]) -> threading.Thread:
    """Post each line of ``stream`` as ``Typed``; daemon thread, ends at EOF."""

    def run() -> None:
        try:
            for line in iter(stream.readline, ""):
                events.put(Typed(line.rstrip("\r\n")))
        except (OSError, ValueError):
            pass
        events.put(Typed(None))

    thread = threading.Thread(target=run, name="read-stdin", daemon=True)
    thread.start()
    return thread


def stop_all(children: Sequence[Child], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM every child still running, then SIGKILL those left after ``grace`` seconds."""
    alive = [c for c in children if c.running()]
    for child in alive:
        with contextlib.suppress(ProcessLookupError):
            child.proc.terminate()
    deadline = time.monotonic() + grace
    for child in alive:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(max(0.0, deadline - time.monotonic()))
    for child in alive:
        if child.running():
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            child.proc.wait()
    for child in children:
        if child.proc.stdin is not None:
            with contextlib.suppress(OSError):
                child.proc.stdin.close()


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)

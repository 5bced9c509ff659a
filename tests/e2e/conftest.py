"""End-to-end fixtures: the node binaries to test and a way to run ``espnow-sec-net``.

``node_bin`` runs every test twice: with the real host build (``ESPNOW_E2E_NODE_BIN`` or
build/host/compat/espnow_node.elf, the compat protocol; skipped, saying how to build it, only
when it is missing) and with ``fake_node.py``, a toy node that keeps the runner and the air
covered without the C build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from espnow_sec.runner import logs

REPO = Path(__file__).resolve().parents[2]
# ESPNOW_E2E_NODE_BIN points these tests at another build of the node (e.g. a sanitizer build).
HOST_NODE = Path(
    os.environ.get("ESPNOW_E2E_NODE_BIN") or REPO / "build" / "host" / "compat" / "espnow_node.elf"
)
FAKE_NODE = Path(__file__).with_name("fake_node.py")


@pytest.fixture(params=["host-build", "fake-node"])
def node_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == "host-build":
        if not HOST_NODE.is_file():
            pytest.skip(f"host node binary {HOST_NODE} is missing: run `make build` first")
        return HOST_NODE
    wrapper = tmp_path_factory.mktemp("fake") / "fake_node"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_NODE}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@dataclass
class NetRun:
    returncode: int
    lines: list[str]

    @property
    def summary(self) -> str:
        demo = [line for line in self.lines if line.startswith("demo:")]
        assert len(demo) == 1, f"expected one 'demo:' line, got {demo}\n{self.output}"
        return demo[0]

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def node_lines(self, node: str) -> list[str]:
        prefix = f"[{node}] "
        return [line[len(prefix) :] for line in self.lines if line.startswith(prefix)]

    def events(self, node: str) -> list[logs.Event]:
        return [e for e in map(logs.parse, self.node_lines(node)) if e is not None]


def run_net(args: list[str], timeout: float = 30.0) -> NetRun:
    """``espnow-sec-net ARGS``; on timeout SIGTERM it (it stops its children) and fail."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "espnow_sec.runner", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"espnow-sec-net {' '.join(args)} ran over {timeout} s:\n{out}")
    return NetRun(proc.returncode, out.splitlines())


RunNet = Callable[..., NetRun]


@pytest.fixture
def net() -> RunNet:
    """``net(args, timeout=30.0)`` runs ``espnow-sec-net ARGS`` to its end."""
    return run_net

"""Helpers for pytest_security.py: log-line patterns, the simulated air, the DUT exit watchdog.

Imported by the top-level conftest.py (which puts this folder on sys.path) and by
pytest_security.py. Nothing here is a test; the file name keeps pytest from collecting it.

Host runs (every DUT is a ``linux`` target app, see ../../docs/air.md):

* one air process per test, its socket handed to the nodes through ``ESPNOW_AIR``; its log and
  a capture of every frame (``air.log``, ``air.pcap``) stay in the test's ``tmp_path``;
* every node runs with the test's own working directory, so its default key store
  ``./espnow_store/<mac without colons>`` is fresh per test and can be inspected;
* ``TMPDIR`` (and ``tempfile.tempdir``, which pytest-embedded's ``LinuxSerial`` uses for its raw
  output file) point into the test's ``tmp_path``, so nothing leaks into the system temp dir;
* every ``expect`` on a DUT runs in short slices; between slices every node process of the test
  (and the air) is polled, and one that exited fails the test at once with its exit status.

Board runs (``--embedded-services esp,idf``): none of the above happens; the helpers only read
the serial output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import pytest
from espnow_sec.protocol import keystore as reference_keystore
from espnow_sec.protocol.errors import StoreCorrupt

# ---------------------------------------------------------------------------------------------
# Log lines (ESP-IDF format, tag app_main). Patterns are str regexes; pytest-embedded matches
# them as bytes, so groups come back as bytes.
# ---------------------------------------------------------------------------------------------
MAC_RE = r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}"
TAG = r"app_main: "

BOOT_RE = (
    TAG + r"ESP-NOW (initiator|responder) ready, mac (" + MAC_RE + r"), channel (\d+), "
    r"(secured|not secured)"
)
WAIT_NUM_RE = TAG + r"espnow wait security num: (\d+)"
KEY_SENT_RE = (
    TAG + r"App key is sent to the device to complete, Spend time: (\d+)ms, Scan time: (\d+)ms"
)
COMPLETED_RE = TAG + r"Devices security completed, successed_num: (\d+), unfinished_num: (\d+)"
GOT_KEY_RE = TAG + r"Get APP key"
SEND_FAILED_RE = TAG + r"espnow_send failed: (\d+) bytes, max payload is (\d+) \(([A-Za-z0-9_]+)\)"
ANY_SEND_RE = TAG + r"espnow_send, count: "
ANY_RECV_RE = TAG + r"espnow_recv"

# Set by conftest.py: False when pytest runs with `-p no:pytest_embedded`.
PYTEST_EMBEDDED = True

# Largest app payload per wire protocol (components/espnow_security/include/espnow_sec.h).
MAX_PAYLOAD = {"ESPNOW_SEC_PROTOCOL_COMPAT": 218}

SLICE_S = 0.25  # how often a waiting expect checks that every process of the test still runs


def handshake_failed_re(mac: str) -> str:
    return TAG + r"handshake with " + re.escape(mac) + r" failed: (.+?)\r?\n"


def send_re(text: str) -> str:
    """The sender's line for one stdin line: ``espnow_send, count: C, size: S, data: <text>``."""
    size = len(text.encode())
    return (
        TAG
        + r"espnow_send, count: (\d+), size: "
        + str(size)
        + r", data: "
        + re.escape(text)
        + r"\r?\n"
    )


def recv_re(text: str, src_mac: str | None = None) -> str:
    """A decrypted data frame: ``espnow_recv, <count> [mac][channel][rssi][size]: <text>``."""
    mac = re.escape(src_mac) if src_mac else MAC_RE
    size = len(text.encode())
    return (
        TAG
        + r"espnow_recv, <?(\d+)>? \[("
        + mac
        + r")\]\[(\d+)\]\[(-?\d+)\]\["
        + str(size)
        + r"\]: "
        + re.escape(text)
        + r"\r?\n"
    )


def plaintext_recv_re(text: str) -> str:
    """A frame logged as unauthenticated plaintext (must never happen on a secured network)."""
    return TAG + r"espnow_recv plaintext \(not authenticated\)[^\n]*" + re.escape(text)


def _s(b: bytes | str) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else b


@dataclass
class Boot:
    role: str
    mac: str
    channel: int
    secured: bool


def expect_boot(dut: Any, role: str, timeout: float = 30) -> Boot:
    """Wait for a node's boot line and check its role."""
    m = dut.expect(BOOT_RE, timeout=timeout)
    boot = Boot(
        _s(m.group(1)), _s(m.group(2)).lower(), int(m.group(3)), _s(m.group(4)) == "secured"
    )
    assert boot.role == role, (
        f"expected a {role} here but the node booted as {boot.role}: the DUT order of the test is "
        f"wrong (build dirs are given in the order of the test's configurations)"
    )
    return boot


def expect_decrypted(dut: Any, text: str, src_mac: str, timeout: float = 10) -> Any:
    """Wait until ``dut`` logs ``text`` from ``src_mac`` as a decrypted frame (not as plaintext)."""
    m = dut.expect([recv_re(text, src_mac), plaintext_recv_re(text)], timeout=timeout)
    line = _s(m.group(0))
    assert "plaintext" not in line, (
        f"message was received as unauthenticated plaintext: {line.strip()}"
    )
    return m


def expect_absent(dut: Any, pattern: str, seconds: float, what: str) -> None:
    """Assert that ``pattern`` does not appear in ``dut``'s output for ``seconds``.

    The output read meanwhile stays in the buffer for later expects.
    """
    try:
        m = dut.expect(pattern, timeout=seconds)
    except pexpect.TIMEOUT:
        return
    raise AssertionError(f"{what}, but the node logged: {_s(m.group(0)).strip()}")


def config_role(app: Any) -> str | None:
    cfg = getattr(app, "sdkconfig", None) or {}
    if cfg.get("APP_ESPNOW_SEC_INITIATOR"):
        return "initiator"
    if cfg.get("APP_ESPNOW_SEC_RESPONDER"):
        return "responder"
    return None


def max_payload(app: Any) -> int:
    cfg = getattr(app, "sdkconfig", None) or {}
    protocols = [k for k in cfg if k.startswith("ESPNOW_SEC_PROTOCOL_") and cfg[k] is True]
    if not protocols:  # only one protocol exists so far
        protocols = ["ESPNOW_SEC_PROTOCOL_COMPAT"]
    for p in protocols:
        if p in MAX_PAYLOAD:
            return MAX_PAYLOAD[p]
    pytest.fail(f"no known max payload for protocol {protocols}: extend MAX_PAYLOAD in {__file__}")


# ---------------------------------------------------------------------------------------------
# Build dirs: configuration name -> folder
# ---------------------------------------------------------------------------------------------
def build_dir_candidates(config: str, host: bool, target: str | None) -> list[str]:
    if host:
        return [f"build/host/{config}"]
    tgt = target or "esp32"
    return [f"build_{tgt}_{config}", f"build_{config}"]


def resolve_build_dir(
    config: str,
    app_path: str,
    host: bool,
    target: str | None,
    cli: str | None,
    index: int,
    count: int,
) -> str:
    """Map one DUT's configuration name (an ``sdkconfig.ci.<name>``) to its build folder.

    ``cli`` is ``--build-dir`` as given on the command line (None if not given): a template with
    ``{config}`` (and optionally ``{target}``), or one folder per DUT separated by ``|``.
    """
    if cli:
        if "{config}" in cli:
            return cli.format(config=config, target=target or "esp32")
        dirs = cli.split("|")
        if len(dirs) != count:
            pytest.skip(
                f"this test needs {count} DUTs but --build-dir gives {len(dirs)} folder(s); "
                f'use --build-dir "build_{{target}}_{{config}}" to map configurations to folders'
            )
        return dirs[index]
    root = Path(app_path)
    if (root / config).is_dir() or Path(config).is_absolute():
        return config  # already a folder
    candidates = build_dir_candidates(config, host, target)
    for c in candidates:
        if (root / c).is_dir():
            return str((root / c).resolve())
    if host:
        pytest.fail(
            f"host build of configuration {config!r} not found: {root / candidates[0]} "
            f"(run `make build`; configurations come from sdkconfig.ci.<name>)",
            pytrace=False,
        )
    pytest.fail(
        f"no build of configuration {config!r} for {target or 'esp32'}: tried "
        + ", ".join(str(root / c) for c in candidates)
        + f". Build it with: idf.py -B {candidates[0]} -D SDKCONFIG={candidates[0]}/sdkconfig "
        f'-D SDKCONFIG_DEFAULTS="sdkconfig.defaults;sdkconfig.ci.{config}" '
        f"set-target {target or 'esp32'} build",
        pytrace=False,
    )


# ---------------------------------------------------------------------------------------------
# The bench: air, environment, watchdog, restarts
# ---------------------------------------------------------------------------------------------
NODE_ENV = (
    "ESPNOW_LOG_LEVEL",
    "ESPNOW_AIR",
    "ESPNOW_MAC",
    "ESPNOW_ROLE",
    "ESPNOW_POP",
    "ESPNOW_CHANNEL",
    "ESPNOW_STORE_DIR",
)


def describe_status(rc: int) -> str:
    if rc < 0:
        try:
            return f"{rc} (killed by {signal.Signals(-rc).name})"
        except ValueError:
            return f"{rc} (killed by signal {-rc})"
    return str(rc)


def tail(path: str | os.PathLike[str] | None, lines: int = 15) -> str:
    if not path:
        return "(no log)"
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


KEY_RECORD_NAME = "app_key"  # components/espnow_security/core/keystore.h


@dataclass(frozen=True)
class StoredKey:
    """A node's decoded ``app_key`` record (decoded by the Python reference, docs/keystore.md)."""

    key: bytes
    provisioner: str

    @classmethod
    def decode(cls, name: str, data: bytes) -> StoredKey:
        try:
            rec = reference_keystore.KeyRecord.decode(data)
        except StoreCorrupt as e:
            raise AssertionError(f"key record {name}: {e}") from e
        return cls(rec.app_key, ":".join(f"{b:02x}" for b in rec.provisioner_mac))


@dataclass
class Watched:
    name: str
    proc: subprocess.Popen[bytes]
    log: str | None
    stopping: bool = False


@dataclass
class EspnowBench:
    """What a test needs besides its DUTs. ``host`` is False on boards: then it does nothing."""

    host: bool
    configs: list[str] = field(default_factory=list)
    node_dir: Path | None = None
    air_socket: str | None = None
    pcap: Path | None = None
    _air: subprocess.Popen[bytes] | None = None
    _air_log: Path | None = None
    _sock_dir: str | None = None
    _watched: list[Watched] = field(default_factory=list)
    _names: dict[int, str] = field(default_factory=dict)

    # -- set-up / tear-down ------------------------------------------------------------------
    def start(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Start the air and prepare the environment every node process of this test inherits."""
        for name in NODE_ENV:  # a developer's shell must not change what the tests run
            monkeypatch.delenv(name, raising=False)
        # Unix socket paths are limited to 107 bytes: keep the socket in a short folder.
        self._sock_dir = tempfile.mkdtemp(prefix="espnow-air-")
        self.air_socket = os.path.join(self._sock_dir, "air.sock")
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        monkeypatch.setenv("TMPDIR", str(tmp))
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        self.node_dir = tmp_path / "nodes"
        self.node_dir.mkdir()
        monkeypatch.chdir(self.node_dir)  # nodes keep their stores in ./espnow_store/<mac>

        self._air_log = tmp_path / "air.log"
        self.pcap = tmp_path / "air.pcap"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self._air_log, "wb") as log:
            self._air = subprocess.Popen(
                [
                    *_air_command(),
                    "--socket",
                    self.air_socket,
                    "--pcap",
                    str(self.pcap),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self._watched.append(Watched("air", self._air, str(self._air_log)))
        deadline = time.monotonic() + 15
        while True:
            self.check()
            if "air: listening on" in self._air_log.read_text(errors="replace") and os.path.exists(
                self.air_socket
            ):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f'the air did not report "air: listening on" in 15 s:\n{tail(self._air_log)}'
                )
            time.sleep(0.05)
        monkeypatch.setenv("ESPNOW_AIR", self.air_socket)

    def close(self) -> None:
        for w in self._watched:
            w.stopping = True
        from pytest_embedded.dut_factory import DutFactory

        DutFactory.close()  # restarted nodes, before the air goes away
        if self._air is not None:
            self._air.terminate()
            try:
                self._air.wait(5)
            except subprocess.TimeoutExpired:
                self._air.kill()
                self._air.wait()
        if self._sock_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)

    # -- DUTs ----------------------------------------------------------------------------------
    def adopt(self, duts: Sequence[Any]) -> None:
        """Name the test's DUTs and, on the host, guard their expects against dead processes."""
        for i, d in enumerate(duts):
            cfg = self.configs[i] if i < len(self.configs) else "?"
            self._adopt_one(d, f"DUT {i} ({cfg})")

    def _adopt_one(self, d: Any, name: str) -> None:
        self._names[id(d)] = name
        proc = getattr(d, "serial", None)
        if not self.host or not isinstance(proc, subprocess.Popen):
            return
        self._watched.append(Watched(name, proc, getattr(proc, "_logfile", None)))
        pp = d.pexpect_proc
        pp.expect = self._sliced(pp.expect, pp)
        pp.expect_exact = self._sliced(pp.expect_exact, pp)

    def name(self, d: Any) -> str:
        return self._names.get(id(d), "DUT")

    def check(self) -> None:
        """Fail the test if any process of it exited that was not stopped on purpose."""
        for w in self._watched:
            rc = w.proc.poll()
            if rc is not None and not w.stopping:
                w.stopping = True  # report once
                pytest.fail(
                    f"{w.name} exited with status {describe_status(rc)}\n"
                    f"--- last lines of its output ({w.log}) ---\n{tail(w.log)}"
                )

    def _sliced(self, orig: Callable[..., Any], pp: Any) -> Callable[..., Any]:
        def expect(pattern: Any, timeout: float | None = -1, **kwargs: Any) -> Any:
            if timeout == -1:
                timeout = pp.timeout
            pats = pattern if isinstance(pattern, list | tuple) else [pattern]
            if any(p in (pexpect.TIMEOUT, pexpect.EOF) for p in pats):
                return orig(pattern, timeout=timeout, **kwargs)
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                self.check()
                step = (
                    SLICE_S
                    if deadline is None
                    else max(0.0, min(SLICE_S, deadline - time.monotonic()))
                )
                try:
                    return orig(pattern, timeout=step, **kwargs)
                except pexpect.TIMEOUT:
                    if deadline is not None and time.monotonic() >= deadline:
                        self.check()  # an exit explains the timeout better than the timeout
                        raise

        return expect

    def stop(self, d: Any, timeout: float = 10) -> int:
        """Stop a host node with SIGTERM, as a user would; returns its exit status."""
        proc = d.serial
        for w in self._watched:
            if w.proc is proc:
                w.stopping = True
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{self.name(d)} did not stop within {timeout} s of SIGTERM")
        assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
            f"{self.name(d)} ended with status {describe_status(rc)} on SIGTERM:\n"
            f"{tail(proc._logfile)}"
        )
        return rc

    def restart(self, d: Any, mac: str) -> Any:
        """Restart a node. Host: a new process with the same MAC and store. Board: a hard reset."""
        if not self.host:
            d.hard_reset()
            return d
        from pytest_embedded.dut_factory import DutFactory

        self.stop(d)
        with _env(ESPNOW_MAC=mac):
            new = DutFactory.create(
                embedded_services="idf", app_path=d.app.app_path, build_dir=d.app.binary_path
            )
        self._adopt_one(new, f"{self.name(d)}, restarted")
        return new

    # -- key store (host only) -------------------------------------------------------------
    def store_dir(self, mac: str) -> Path:
        """The node's default store folder: ./espnow_store/<mac without colons> in its cwd."""
        assert self.node_dir is not None
        root = self.node_dir / "espnow_store"
        want = mac.replace(":", "").lower()
        if root.is_dir():
            for p in root.iterdir():
                if p.name.lower() == want:
                    return p
        return root / want

    def store_records(self, mac: str) -> dict[str, bytes]:
        """The node's records: files ``<namespace>.<name>`` (temporaries start with a dot)."""
        d = self.store_dir(mac)
        if not d.is_dir():
            return {}
        return {
            p.name: p.read_bytes()
            for p in sorted(d.iterdir())
            if p.is_file() and not p.name.startswith(".")
        }

    def key_record(self, mac: str) -> StoredKey | None:
        """The node's stored app key record, decoded (None if it has none)."""
        for name, data in self.store_records(mac).items():
            if name.endswith("." + KEY_RECORD_NAME):
                return StoredKey.decode(name, data)
        return None

    # -- what went on air (host only) -----------------------------------------------------
    def frames_from(self, mac: str) -> list[int]:
        """Body lengths of the ESP-NOW frames ``mac`` sent so far, from the air's pcap.

        The air writes every delivered frame as an 802.11 action frame (linktype 105): a 24-byte
        header (transmitter at offset 10), 8 bytes of action header, then the vendor element
        (7 bytes) around the body. Frames the air refuses (empty, > 250 bytes) are not in it.
        """
        assert self.pcap is not None
        data = self.pcap.read_bytes()
        src = bytes.fromhex(mac.replace(":", ""))
        out, off = [], 24
        while off + 16 <= len(data):
            incl = int.from_bytes(data[off + 8 : off + 12], "little")
            frame = data[off + 16 : off + 16 + incl]
            off += 16 + incl
            if len(frame) == incl and frame[10:16] == src:
                out.append(incl - 39)
        return out

    def watched_exits(self) -> Iterator[str]:
        for w in self._watched:
            rc = w.proc.poll()
            if rc is not None and not w.stopping:
                yield f"{w.name} exited with status {describe_status(rc)}\n{tail(w.log)}"


def _air_command() -> list[str]:
    script = Path(sys.executable).with_name("espnow-sec-air")
    if script.exists():
        return [str(script)]
    found = shutil.which("espnow-sec-air")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from espnow_sec.air.server import main; sys.exit(main())",
    ]


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

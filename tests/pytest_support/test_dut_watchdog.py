"""The DUT harness of pytest_security.py fails a test at once when a node process dies.

pytest-embedded's linux DUT reads its process's output from a file, so a dead process looks like
silence and ``expect`` would wait for its full timeout. These tests run pytest_security.py on
stand-in nodes (shell scripts as ``espnow_node.elf``) that exit or crash, and check that the test
fails within seconds, naming the DUT and its exit status.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip(
    "pytest_embedded_idf", reason="pip install pytest-embedded-idf (pyproject [dev])"
)


def _fake_build(root: Path, config: str, script: str, role: str) -> None:
    d = root / config
    (d / "config").mkdir(parents=True)
    sdkconfig = {
        "IDF_TARGET": "linux",
        "APP_BUILD_TYPE_ELF_ONLY": True,
        "APP_ESPNOW_SEC_INITIATOR": role == "initiator",
        "APP_ESPNOW_SEC_RESPONDER": role == "responder",
    }
    (d / "config" / "sdkconfig.json").write_text(json.dumps(sdkconfig))
    elf = d / "espnow_node.elf"
    elf.write_text("#!/bin/sh\n" + script)
    elf.chmod(elf.stat().st_mode | stat.S_IXUSR)


def _run(root: Path) -> tuple[int, str, float]:
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "pytest_security.py", "-k", "test_secured_pair",
            "--embedded-services", "idf", "--build-dir", f"{root}/{{config}}",
            "-p", "no:cacheprovider", "--root-logdir", str(root / "logs"),
        ],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def _boot_line(role: str) -> str:
    line = f"I (1) app_main: ESP-NOW {role} ready, mac 02:00:00:00:00:01, channel 1, not secured"
    return f'echo "{line}"\n'


@pytest.mark.parametrize(
    ("initiator_script", "expected"),
    [
        (_boot_line("initiator") + "exit 3\n", "DUT 1 (initiator) exited with status 3"),
        (
            _boot_line("initiator") + "kill -SEGV $$\n",
            "DUT 1 (initiator) exited with status -11 (killed by SIGSEGV)",
        ),
        ('[ -S "$ESPNOW_AIR" ] || exit 9\nexit 4\n', "DUT 1 (initiator) exited with status 4"),
    ],
    ids=["exit-status", "crash", "sees-the-air"],
)
def test_dead_dut_fails_the_test_at_once(
    tmp_path: Path, initiator_script: str, expected: str
) -> None:
    # The responder stays alive (as a node would) and stays silent; the test waits on it first.
    _fake_build(tmp_path, "responder", "exec sleep 60\n", "responder")
    _fake_build(tmp_path, "initiator", initiator_script, "initiator")
    rc, out, elapsed = _run(tmp_path)
    assert rc == 1, out
    assert expected in out, out
    assert elapsed < 20, (
        f"took {elapsed:.1f} s: the dead DUT was not noticed before the expect timeout"
    )

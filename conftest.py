"""Project-wide pytest configuration.

Serves two kinds of tests in one session:

* the pytest-embedded multi-DUT tests in ``pytest_security.py`` (host DUTs on the simulated air,
  or real boards; see that file's docstring), and
* the plain pytest suites under ``tests/`` that use no DUT. pytest-embedded's plugin is loaded in
  every run and adds autouse fixtures (``count``, ``parametrize_fixtures``, ``close_factory_duts``,
  a multiprocessing manager); they start no DUT process and touch nothing of these tests. Nothing
  here is autouse, and the ``build_dir`` override below behaves exactly like pytest-embedded's own
  fixture unless a test parametrizes ``build_dir``.

What this file adds for ``pytest_security.py``:

* ``--embedded-services`` defaults to ``idf`` (host DUTs; ``esp,idf`` if ``--target`` names a
  chip), so a bare ``pytest`` runs everything;
* ``build_dir``: DUTs are parametrized with *configuration names* (``sdkconfig.ci.<name>``),
  mapped to ``build/host/<name>`` on the host and ``build_<target>_<name>`` or ``build_<name>``
  on boards; an explicit ``--build-dir`` wins (see ``resolve_build_dir``);
* ``espnow_bench``: starts the air for host DUTs and prepares their environment;
* ``dut``: pytest-embedded's ``dut``, created after the air is up, with its expects guarded so that
  a node process that exits fails the test at once with its exit status;
* tests that need more boards than ``--port`` gives are skipped on boards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests" / "pytest_support"))

import espnow_harness  # noqa: E402
from espnow_harness import EspnowBench, resolve_build_dir  # noqa: E402


def _embedded(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("pytest_embedded")


def _host_run(config: pytest.Config) -> bool:
    """True when the DUTs are host processes (linux target), False for boards."""
    target = config.getoption("target", None)
    if target:
        return target == "linux"
    services = config.getoption("embedded_services", None) or ""
    return "esp" not in [s.strip() for s in services.replace("|", ",").split(",")]


def pytest_configure(config: pytest.Config) -> None:
    espnow_harness.PYTEST_EMBEDDED = _embedded(config)
    if _embedded(config) and not getattr(config.option, "embedded_services", None):
        target = getattr(config.option, "target", None)
        config.option.embedded_services = "idf" if target in (None, "linux") else "esp,idf"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _embedded(config) or _host_run(config):
        return
    ports = config.getoption("port", None)
    if not ports:
        return
    n_ports = len(ports.split("|"))
    for item in items:
        if "dut" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        count = int(callspec.params.get("count", 1)) if callspec else 1
        if count > 1 and n_ports != count:
            item.add_marker(
                pytest.mark.skip(reason=f"needs {count} boards, --port gives {n_ports}")
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    res = yield
    # A node that died after the test's last expect still fails the test.
    bench = getattr(item, "funcargs", {}).get("espnow_bench")
    if isinstance(bench, EspnowBench):
        exits = list(bench.watched_exits())
        if exits:
            pytest.fail("\n".join(exits), pytrace=False)
    return res


@pytest.fixture
def build_dir(request: pytest.FixtureRequest, count: None, app_path: Any) -> Any:  # noqa: ARG001
    """pytest-embedded's ``build_dir``, with configuration names resolved to build folders."""
    from pytest_embedded import plugin
    from pytest_embedded.utils import to_list

    n = plugin._COUNT
    cli = request.config.getoption("build_dir", None)
    param = getattr(request, "param", None)
    if not param:
        return plugin.parse_multi_dut_args(n, cli or "build")
    configs = str(param).split("|")
    if len(configs) == 1:
        configs *= n
    if len(configs) != n:
        raise ValueError(f"build_dir {param!r} names {len(configs)} configurations for {n} DUTs")
    app_paths = to_list(app_path)
    if len(app_paths) == 1:
        app_paths *= n
    target = request.config.getoption("target", None)
    host = _host_run(request.config)
    dirs = tuple(
        resolve_build_dir(c, str(app_paths[i]), host, target, cli, i, n)
        for i, c in enumerate(configs)
    )
    return dirs if n > 1 else dirs[0]


@pytest.fixture
def espnow_bench(
    request: pytest.FixtureRequest, app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EspnowBench]:
    """The simulated air and node environment (host DUTs); a no-op on boards."""
    from pytest_embedded.utils import to_list

    apps = to_list(app)
    targets = {getattr(a, "target", None) for a in apps}
    host = targets == {"linux"}
    if "linux" in targets and not host:
        pytest.fail(
            f"cannot mix host and board DUTs in one test (targets {sorted(map(str, targets))})"
        )
    callspec = getattr(request.node, "callspec", None)
    param = callspec.params.get("build_dir") if callspec else None
    bench = EspnowBench(host=host, configs=str(param).split("|") if param else [])
    try:
        if host:
            bench.start(tmp_path, monkeypatch)
        yield bench
    finally:
        bench.close()


@pytest.fixture
def dut(espnow_bench: EspnowBench, dut: Any) -> Any:
    """pytest-embedded's ``dut`` (a list when count > 1), started after the air is up."""
    from pytest_embedded.utils import to_list

    duts = to_list(dut)
    if any(getattr(d, "serial", None) is None for d in duts):
        pytest.fail(
            "these DUTs have neither a serial port nor a process behind them: run with "
            "--embedded-services idf (host build) or --embedded-services esp,idf (boards)",
            pytrace=False,
        )
    espnow_bench.adopt(duts)
    return dut

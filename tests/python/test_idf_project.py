"""The ESP-IDF side of the project, checked without ESP-IDF, a toolchain or boards.

* Every Kconfig file passes ESP-IDF's ``kconfcheck`` (style and syntax).
* ``kconfgen`` parses the real Kconfig files the way ``idf.py`` does: a root Kconfig with
  ``mainmenu`` that sources every component's ``Kconfig.projbuild`` at the top level and every
  component's ``Kconfig`` inside "Component config" (ESP-IDF ``Kconfig``,
  ``tools/cmake/kconfig.cmake``, ``tools/kconfig_new/prepare_kconfig_files.py``). Only component
  folders are scanned, so the app menu must reach ESP-IDF through ``main/Kconfig.projbuild``.
* ``compote`` (idf-component-manager) lints the component manifest and packs the component
  offline; the archive holds what a registry user needs and no tests.

Nothing here needs the host C build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPONENT = REPO / "components" / "espnow_security"
COMPONENT_NAME = "espnow_security"

# Chips with a Wi-Fi radio, hence ESP-NOW (README "On boards").
WIFI_TARGETS = {
    "esp32",
    "esp32s2",
    "esp32s3",
    "esp32c2",
    "esp32c3",
    "esp32c5",
    "esp32c6",
    "esp32c61",
}

# Folders that hold no project sources.
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "managed_components",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
}

TIMEOUT_S = 120


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def _explain(proc: subprocess.CompletedProcess) -> str:
    return (
        f"command: {' '.join(proc.args)}\nrc={proc.returncode}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")
        )
        for name in sorted(filenames):
            yield Path(dirpath) / name


# --------------------------------------------------------------------------------------------
# kconfcheck
# --------------------------------------------------------------------------------------------


def _kconfig_files() -> list[Path]:
    # kconfcheck accepts exactly the files whose name contains "Kconfig" (and sdkconfig.rename).
    return [
        p
        for p in _walk(REPO)
        if ("Kconfig" in p.name or p.name.startswith("sdkconfig.rename"))
        and not p.name.endswith((".new", ".in", ".json"))
    ]


def test_kconfig_files_exist_where_esp_idf_reads_them() -> None:
    assert (COMPONENT / "Kconfig").is_file(), (
        "the component menu must be components/espnow_security/Kconfig"
    )
    assert (REPO / "main" / "Kconfig.projbuild").is_file(), (
        "ESP-IDF reads Kconfig.projbuild only from component folders; main/Kconfig.projbuild must "
        'exist and pull in the app menu (e.g. rsource "../Kconfig.projbuild")'
    )


@pytest.mark.parametrize("path", _kconfig_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_kconfcheck_clean(path: Path, tmp_path: Path) -> None:
    pytest.importorskip("kconfcheck", reason="pip install esp-idf-kconfig (pyproject [dev])")
    # kconfcheck writes <file>.new with suggested fixes; run it on a copy so the tree stays clean.
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    proc = _run([sys.executable, "-m", "kconfcheck", str(copy)], cwd=tmp_path)
    assert proc.returncode == 0, f"{path.relative_to(REPO)} fails kconfcheck:\n{_explain(proc)}"
    assert not (tmp_path / f"{path.name}.new").exists(), f"kconfcheck suggested fixes for {path}"


# --------------------------------------------------------------------------------------------
# kconfgen as ESP-IDF runs it
# --------------------------------------------------------------------------------------------

# Mirrors the structure of ESP-IDF's root Kconfig: the projbuild menus at the top level, the
# component menus under "Component config". The symbols ESP-IDF itself defines are not needed by
# our files; IDF_TARGET is declared so a "$(IDF_TARGET)" reference would still expand.
ROOT_KCONFIG = """\
mainmenu "Espressif IoT Development Framework Configuration"

    config IDF_TARGET
        string
        default "$IDF_TARGET"

    source "$COMPONENT_KCONFIGS_PROJBUILD_SOURCE_FILE"

    menu "Component config"
        source "$COMPONENT_KCONFIGS_SOURCE_FILE"
    endmenu
"""


def _project_components() -> list[Path]:
    """Component folders ESP-IDF finds in this project: main/ and every components/<name>/."""
    found = [REPO / "main"]
    comps = REPO / "components"
    if comps.is_dir():
        # ESP-IDF registers every sub-folder of components/ that has a CMakeLists.txt.
        found += sorted(
            p
            for p in comps.iterdir()
            if p.is_dir() and ((p / "CMakeLists.txt").exists() or (p / "Kconfig").exists())
        )
    return [p for p in found if p.is_dir()]


def _component_kconfigs() -> tuple[list[Path], list[Path]]:
    """Like __kconfig_component_init: the *top level* of each component folder, names compared
    case-insensitively, so a Kconfig.projbuild anywhere else (the project root) is never read."""
    kconfigs: list[Path] = []
    projbuilds: list[Path] = []
    for comp in _project_components():
        for f in sorted(comp.iterdir()):
            if not f.is_file():
                continue
            if f.name.lower() == "kconfig":
                kconfigs.append(f)
            elif f.name.lower() == "kconfig.projbuild":
                projbuilds.append(f)
    return kconfigs, projbuilds


def _kconfgen(tmp: Path, defaults: list[Path]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pytest.importorskip("kconfgen", reason="pip install esp-idf-kconfig (pyproject [dev])")
    kconfigs, projbuilds = _component_kconfigs()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "Kconfig").write_text(ROOT_KCONFIG)
    # What prepare_kconfig_files.py writes: one `source "<path>"` line per file.
    (tmp / "kconfigs.in").write_text("\n".join(f'source "{p}"' for p in kconfigs))
    (tmp / "kconfigs_projbuild.in").write_text("\n".join(f'source "{p}"' for p in projbuilds))
    cmd = [
        sys.executable,
        "-m",
        "kconfgen",
        "--kconfig",
        str(tmp / "Kconfig"),
        "--env",
        "IDF_TARGET=esp32",
        "--env",
        f"COMPONENT_KCONFIGS_SOURCE_FILE={tmp / 'kconfigs.in'}",
        "--env",
        f"COMPONENT_KCONFIGS_PROJBUILD_SOURCE_FILE={tmp / 'kconfigs_projbuild.in'}",
        "--config",
        str(tmp / "sdkconfig"),
    ]
    for d in defaults:
        cmd += ["--defaults", str(d)]
    cmd += [
        "--output",
        "json",
        str(tmp / "sdkconfig.json"),
        "--output",
        "json_menus",
        str(tmp / "menus.json"),
        "--output",
        "header",
        str(tmp / "sdkconfig.h"),
    ]
    proc = _run(cmd, cwd=tmp)
    assert proc.returncode == 0, (
        f"kconfgen failed on the project's Kconfig files:\n{_explain(proc)}"
    )
    values = json.loads((tmp / "sdkconfig.json").read_text())
    menus = json.loads((tmp / "menus.json").read_text())
    return values, menus


def _find(nodes: list[dict[str, Any]], pred) -> dict[str, Any] | None:
    for n in nodes:
        if pred(n):
            return n
        hit = _find(n.get("children") or [], pred)
        if hit is not None:
            return hit
    return None


def _top_menu_of(menus: list[dict[str, Any]], pred) -> dict[str, Any] | None:
    """The top-level entry under which a node matching `pred` sits."""
    for top in menus:
        if pred(top) or _find(top.get("children") or [], pred) is not None:
            return top
    return None


def _by_title(title: str):
    return lambda n: (n.get("title") or "").strip() == title


def _by_title_start(prefix: str):
    return lambda n: (n.get("title") or "").strip().lower().startswith(prefix.lower())


@pytest.fixture(scope="module")
def kconfig_default(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list]:
    """Kconfig defaults only: the values a fresh `idf.py menuconfig` shows."""
    return _kconfgen(tmp_path_factory.mktemp("kconfgen_plain"), [])


def test_component_menu_under_component_config(kconfig_default) -> None:
    _, menus = kconfig_default
    top = _top_menu_of(menus, _by_title("ESP-NOW Security"))
    assert top is not None, 'menu "ESP-NOW Security" not found in the ESP-IDF menu tree'
    assert (top.get("title") or "") == "Component config", (
        f'"ESP-NOW Security" must sit under "Component config" (it is under {top.get("title")!r})'
    )


def test_app_menu_at_top_level_via_main(kconfig_default) -> None:
    values, menus = kconfig_default
    mode = _find(menus, _by_title("ESP-NOW Mode"))
    assert mode is not None, (
        'choice "ESP-NOW Mode" is not in the menu tree: main/Kconfig.projbuild must pull in the '
        "app menu (ESP-IDF never reads the project root's Kconfig.projbuild)"
    )
    top = _top_menu_of(menus, _by_title("ESP-NOW Mode"))
    assert top is not None and top.get("title") != "Component config", (
        "the app menu must be a top-level menu (from a Kconfig.projbuild), "
        "not under Component config"
    )
    assert not any(k.startswith("ESPNOW_SEC_") for k in _names_under(top)), (
        "CONFIG_ESPNOW_SEC_* belong to the component menu, not the app menu"
    )


def _names_under(node: dict[str, Any]) -> list[str]:
    out = [node.get("name") or ""]
    for c in node.get("children") or []:
        out += _names_under(c)
    return out


def _role_of(node: dict[str, Any]) -> str:
    """'Initiator Mode' -> 'initiator'."""
    words = (node.get("title") or "").strip().lower().split()
    return words[0] if words else ""


def _choice_selection(values: dict[str, Any], choice: dict[str, Any]) -> str | None:
    picked = [
        c.get("name") for c in choice.get("children") or [] if values.get(c.get("name")) is True
    ]
    assert len(picked) <= 1, f"choice {choice.get('name')} has several selections: {picked}"
    return picked[0] if picked else None


def test_documented_app_defaults(kconfig_default) -> None:
    values, menus = kconfig_default
    mode = _find(menus, _by_title("ESP-NOW Mode"))
    assert mode is not None and mode.get("type") == "choice"
    roles = {_role_of(c): c.get("name") for c in mode.get("children") or []}
    assert {"initiator", "responder"} <= set(roles), f"ESP-NOW Mode offers {sorted(roles)}"
    assert _choice_selection(values, mode) == roles["initiator"], (
        "ESP-NOW Mode must default to Initiator"
    )

    pop = _find(menus, _by_title_start("Proof of Possession"))
    assert pop is not None and pop.get("type") == "string", 'string "Proof of Possession" missing'
    assert values[pop["name"]] == "espnow_pop", 'Proof of Possession must default to "espnow_pop"'

    app = _top_menu_of(menus, _by_title("ESP-NOW Mode")) or {}
    channel = _find(
        [app], lambda n: n.get("type") == "int" and "channel" in (n.get("title") or "").lower()
    )
    assert channel is not None, "the app menu needs a Wi-Fi channel option"
    assert 1 <= values[channel["name"]] <= 14

    uart = [n for n in _names_under(app) if "UART" in n]
    assert uart, "the app menu needs UART settings (port, baud rate)"


def test_documented_component_defaults(kconfig_default) -> None:
    values, _ = kconfig_default
    assert values.get("ESPNOW_SEC_PROTOCOL_V2") is True, "wire protocol must default to v2"
    assert values.get("ESPNOW_SEC_NVS_NAMESPACE") == "espnow_sec"
    # NVS namespaces are at most 15 characters (NVS_NS_NAME_MAX_SIZE - 1).
    assert 0 < len(values["ESPNOW_SEC_NVS_NAMESPACE"]) <= 15
    assert values.get("ESPNOW_SEC_LOG_SECRETS") is False, "secret logging must be off by default"
    for name in (
        "ESPNOW_SEC_MAX_RESPONDERS",
        "ESPNOW_SEC_MAX_HANDSHAKES",
        "ESPNOW_SEC_RESPONDER_SESSIONS",
        "ESPNOW_SEC_SCAN_DURATION_MS",
        "ESPNOW_SEC_RETRY_MAX",
        "ESPNOW_SEC_RETRY_BASE_MS",
        "ESPNOW_SEC_RETRY_CAP_MS",
        "ESPNOW_SEC_DEDUPE_SIZE",
    ):
        assert isinstance(values.get(name), int), f"CONFIG_{name} missing"
    assert values["ESPNOW_SEC_RETRY_BASE_MS"] <= values["ESPNOW_SEC_RETRY_CAP_MS"]


def _ci_configs() -> list[Path]:
    return sorted(REPO.glob("sdkconfig.ci.*"))


def test_sdkconfig_defaults_apply(tmp_path: Path) -> None:
    defaults = REPO / "sdkconfig.defaults"
    if not defaults.is_file():
        pytest.skip("no sdkconfig.defaults yet")
    values, menus = _kconfgen(tmp_path, [defaults])
    mode = _find(menus, _by_title("ESP-NOW Mode"))
    assert mode is not None
    assert _choice_selection(values, mode) is not None


@pytest.mark.parametrize("ci", _ci_configs(), ids=lambda p: p.name)
def test_ci_configs_select_a_role(ci: Path, tmp_path: Path) -> None:
    layers = [p for p in (REPO / "sdkconfig.defaults", ci) if p.is_file()]
    values, menus = _kconfgen(tmp_path, layers)
    mode = _find(menus, _by_title("ESP-NOW Mode"))
    assert mode is not None
    picked = _choice_selection(values, mode)
    roles = {c.get("name"): _role_of(c) for c in mode.get("children") or []}
    for role in ("initiator", "responder"):
        if role in ci.name:
            assert picked is not None and roles[picked] == role, f"{ci.name} must select {role}"


# --------------------------------------------------------------------------------------------
# idf-component-manager
# --------------------------------------------------------------------------------------------


def _compote() -> str:
    exe = Path(sys.executable).with_name("compote")
    if exe.exists():
        return str(exe)
    found = shutil.which("compote")
    if not found:
        pytest.skip("compote not installed: pip install idf-component-manager (pyproject [dev])")
    return found


def _offline_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HOME"] = str(tmp / "home")  # the manager's cache goes here, not into the user's home
    env["IDF_COMPONENT_CACHE_PATH"] = str(tmp / "cache")
    env.pop("IDF_COMPONENT_REGISTRY_URL", None)
    env.pop("IDF_COMPONENT_STORAGE_URL", None)
    return env


def _manifest() -> dict[str, Any]:
    # ruamel.yaml comes with idf-component-manager (PyYAML may not be installed).
    ruamel_yaml = pytest.importorskip("ruamel.yaml", reason="pip install idf-component-manager")
    return ruamel_yaml.YAML(typ="safe", pure=True).load(
        (COMPONENT / "idf_component.yml").read_text()
    )


def test_manifest_content() -> None:
    m = _manifest()
    assert m["version"] == "0.1.0"
    assert m.get("description") and m.get("url") and m.get("license") == "Apache-2.0"
    assert set(m["targets"]) == WIFI_TARGETS, "targets must be exactly the chips with Wi-Fi"
    deps = m["dependencies"]
    idf = deps["idf"] if isinstance(deps["idf"], str) else deps["idf"]["version"]
    assert idf.replace(" ", "") == ">=5.1,<7.0"
    # mbedtls (PSA), protobuf-c, nvs_flash, esp_wifi ... ship with ESP-IDF: no registry dependency.
    assert set(deps) == {"idf"}, f"unexpected registry dependencies: {sorted(set(deps) - {'idf'})}"


def test_compote_manifest_lint(tmp_path: Path) -> None:
    proc = _run(
        [_compote(), "manifest", "lint", str(COMPONENT / "idf_component.yml")],
        cwd=COMPONENT,
        env=_offline_env(tmp_path),
    )
    assert proc.returncode == 0, f"compote manifest lint failed:\n{_explain(proc)}"


def test_compote_component_pack(tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    proc = _run(
        [_compote(), "component", "pack", "--name", COMPONENT_NAME, "--dest-dir", str(dest)],
        cwd=COMPONENT,
        env=_offline_env(tmp_path),
    )
    assert proc.returncode == 0, f"compote component pack failed:\n{_explain(proc)}"
    version = _manifest()["version"]
    archive = dest / f"{COMPONENT_NAME}_{version}.tgz"
    assert archive.is_file(), (
        f"no archive at {archive}; dest has {sorted(p.name for p in dest.iterdir())}"
    )
    with tarfile.open(archive) as tar:
        names = {n[2:] if n.startswith("./") else n for n in tar.getnames()}
    for required in ("CMakeLists.txt", "Kconfig", "idf_component.yml", "include/espnow_sec.h"):
        if required == "CMakeLists.txt" and not (COMPONENT / required).exists():
            pytest.fail("components/espnow_security/CMakeLists.txt is missing: it cannot be packed")
        assert required in names, f"{required} missing from {archive.name}: {sorted(names)}"
    test_dirs = {"test", "tests", "test_apps", "fuzz"}
    leaked = sorted(n for n in names if test_dirs & set(Path(n).parts))
    assert not leaked, f"tests must not ship in the component archive: {leaked}"
    assert not any(n.endswith((".o", ".a", ".elf", ".pyc")) for n in names), "build products packed"

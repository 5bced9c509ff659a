"""``espnow-sec-keygen``: handshake calculator, test vectors, app keys, PoPs, frame decoder.

Subcommands (issue 3):

  sec1     --client-priv HEX --device-priv HEX --pop TEXT --device-random HEX [--app-key HEX]
           one security1 handshake as JSON (keys, verifiers, every frame)
  vectors  [--protocol compat|v2] [--seed N] --out FILE
                                       write a deterministic vector file (default compat)
  check    FILE                        recompute a vector file (compat or v2, from its
                                       "protocol" field); report the first mismatch
  appkey   [--nvs-csv FILE] ...        a fresh 32-byte app key, optionally as an NVS CSV
  pop      [--bits N] | --estimate TEXT   generate a PoP, or estimate one's strength
  decode   [--key HEX] FRAME_HEX       show a frame field by field, decrypt it if possible
           (v2 frames, CF 02 ..., are recognised; --key is then k_grp or k_ctl, 16 bytes,
           or --group-secret HEX --epoch N, with --src/--dst MACs for the nonce and AAD)

Exit status: 0 success; 1 a check found a mismatch or a frame failed authentication;
2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, popstrength
from .decode import decode_frame
from .decode_v2 import decode_v2
from .protocol import keystore
from .protocol.errors import ProtocolError
from .protocol.v2 import keyschedule
from .vectors import compute, generate_v2
from .vectors.check import VectorFileError, check, protocol_of
from .vectors.generate import CHANNEL, CLIENT_MAC, DEFAULT_MAGICS, DEVICE_MAC, build, dumps

PROG = "espnow-sec-keygen"
DEFAULT_APP_KEY = bytes(range(32)).hex()
DEFAULT_NAMESPACE = "espnow_sec"  # CONFIG_ESPNOW_SEC_NVS_NAMESPACE default


class CliError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)")


# -- input parsing -------------------------------------------------------------------------------
def parse_hex(what: str, text: str, length: int | None = None) -> bytes:
    """Hex with optional spaces, colons or dashes; ``length`` in bytes if fixed."""
    cleaned = re.sub(r"[\s:\-]", "", text)
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if not re.fullmatch(r"[0-9a-fA-F]*", cleaned):
        bad = next(c for c in cleaned if c not in "0123456789abcdefABCDEF")
        raise CliError(f"{what}: {bad!r} is not a hex digit")
    if len(cleaned) % 2:
        raise CliError(f"{what}: odd number of hex digits ({len(cleaned)})")
    value = bytes.fromhex(cleaned)
    if length is not None and len(value) != length:
        raise CliError(f"{what} must be {length} bytes ({2 * length} hex digits), got {len(value)}")
    return value


def parse_mac(what: str, text: str) -> bytes:
    return parse_hex(what, text, 6)


# -- subcommands ---------------------------------------------------------------------------------
def cmd_sec1(args: argparse.Namespace) -> int:
    inputs: dict[str, Any] = {
        "client_priv": parse_hex("--client-priv", args.client_priv, 32).hex(),
        "device_priv": parse_hex("--device-priv", args.device_priv, 32).hex(),
        "pop": compute.text_input(args.pop),
        "device_random": parse_hex("--device-random", args.device_random, 16).hex(),
        "app_key": parse_hex("--app-key", args.app_key, 32).hex(),
        "client_mac": parse_mac("--client-mac", args.client_mac).hex(),
        "device_mac": parse_mac("--device-mac", args.device_mac).hex(),
        "channel": CHANNEL,
        "magics": dict(DEFAULT_MAGICS),
    }
    try:
        result = compute.compute_handshake(inputs)
    except ProtocolError as exc:
        raise CliError(f"handshake rejected ({exc.reason}): {exc}") from exc
    print(json.dumps(result, indent=2))
    return 0


def cmd_vectors(args: argparse.Namespace) -> int:
    if args.seed < 0 or args.seed >= 1 << 64:
        raise CliError(f"--seed must be between 0 and 2**64-1, got {args.seed}")
    text = dumps(generate_v2.build(args.seed) if args.protocol == "v2" else build(args.seed))
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    _write(Path(args.out), text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    try:
        count, mismatch = check(doc)
    except VectorFileError as exc:
        raise CliError(f"{path}: not a vector file this tool reads: {exc}") from exc
    if mismatch is not None:
        print(f"FAIL {path}: {count} case(s) matched, then {mismatch}", file=sys.stderr)
        return 1
    print(f"OK {path}: {count} cases match the reference ({protocol_of(doc)})")
    return 0


def nvs_csv(record: bytes, namespace: str) -> str:
    """An esp-idf-nvs-partition-gen CSV holding the key-store record (docs/keystore.md)."""
    return (
        "key,type,encoding,value\n"
        f"{namespace},namespace,,\n"
        f"{keystore.RECORD_NAME},data,hex2bin,{record.hex()}\n"
    )


def cmd_appkey(args: argparse.Namespace) -> int:
    key = parse_hex("--key", args.key, 32) if args.key else secrets.token_bytes(32)
    provisioner = parse_mac("--provisioner-mac", args.provisioner_mac)
    if not 1 <= len(args.namespace) <= 15 or not args.namespace.isascii() or "," in args.namespace:
        raise CliError(
            f"--namespace {args.namespace!r}: NVS namespaces are 1-15 ASCII characters, no comma"
        )
    if args.nvs_csv:
        # The file first: a path that cannot be written must fail before the key is shown.
        record = keystore.KeyRecord(key, provisioner).encode()
        _write(Path(args.nvs_csv), nvs_csv(record, args.namespace), private=True)
    print(key.hex())
    if args.nvs_csv:
        print(
            f"wrote {args.nvs_csv}: namespace {args.namespace}, blob {keystore.RECORD_NAME!r} "
            f"({len(record)} bytes); build a partition with esp-idf-nvs-partition-gen "
            f"(docs/keystore.md). Keep the file secret and delete it when done.",
            file=sys.stderr,
        )
    return 0


def cmd_pop(args: argparse.Namespace) -> int:
    if args.estimate is not None:
        est = popstrength.estimate(args.estimate)
        print(f"strength: about {est.bits:.0f} bits ({est.verdict})")
        for w in est.warnings:
            print(f"warning: {w}", file=sys.stderr)
        return 0
    try:
        print(popstrength.generate(args.bits))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    key = None
    if args.key is not None:
        key = parse_hex("--key", args.key)
        if len(key) not in (16, 32):
            raise CliError(
                f"--key must be a 32-byte app key or a 16-byte CCM key, got {len(key)} bytes"
            )
    raw = parse_hex("FRAME_HEX", args.frame)
    if not raw:
        raise CliError("FRAME_HEX is empty")
    if raw[0] == 0xCF:
        return _decode_v2(args, raw, key)
    result = decode_frame(raw, key)
    if result.lines:
        print("\n".join(result.lines))
    if result.errors:  # truncated or damaged: what could be read is above, the reason on stderr
        raise CliError(f"FRAME_HEX: cannot decode the frame: {result.errors[0]}")
    return 1 if result.auth_failed else 0


def _decode_v2(args: argparse.Namespace, raw: bytes, key: bytes | None) -> int:
    if args.group_secret is not None:
        if args.epoch is None:
            raise CliError("--group-secret needs --epoch N (the key_epoch it belongs to)")
        key = keyschedule.k_grp(args.epoch, parse_hex("--group-secret", args.group_secret, 32))
    if key is not None and len(key) != 16:
        raise CliError(f"a v2 key is 16 bytes (k_grp or k_ctl), got {len(key)}")
    src = parse_mac("--src", args.src) if args.src else None
    dst = parse_mac("--dst", args.dst) if args.dst else None
    result = decode_v2(raw, key, src, dst)
    print("\n".join(result.lines))
    return 1 if result.auth_failed else 0


def _write(path: Path, text: str, private: bool = False) -> None:
    try:
        if path.parent and not path.parent.exists():
            raise CliError(f"{path}: directory {path.parent} does not exist")
        tmp = path.with_name(path.name + ".tmp")
        if private:  # a secret: readable by its owner only, from the first byte
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        else:
            tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror or exc}") from exc


# -- entry point ---------------------------------------------------------------------------------
def make_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG, description="espnow-security keys, PoPs, test vectors and frame decoder."
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("sec1", help="compute one security1 handshake (JSON)")
    s.add_argument(
        "--client-priv", required=True, metavar="HEX", help="client X25519 private key (32 bytes)"
    )
    s.add_argument(
        "--device-priv", required=True, metavar="HEX", help="device X25519 private key (32 bytes)"
    )
    s.add_argument(
        "--pop", required=True, metavar="TEXT", help="proof of possession (UTF-8; may be empty)"
    )
    s.add_argument(
        "--device-random", required=True, metavar="HEX", help="Resp0 device_random (16 bytes)"
    )
    s.add_argument(
        "--app-key",
        default=DEFAULT_APP_KEY,
        metavar="HEX",
        help="app key sent in KEY (32 bytes; default 00..1f, a test key)",
    )
    s.add_argument("--client-mac", default=CLIENT_MAC, metavar="MAC", help=f"default {CLIENT_MAC}")
    s.add_argument("--device-mac", default=DEVICE_MAC, metavar="MAC", help=f"default {DEVICE_MAC}")
    s.set_defaults(func=cmd_sec1)

    s = sub.add_parser("vectors", help="write a deterministic vector file (compat or v2)")
    s.add_argument("--protocol", choices=("compat", "v2"), default="compat", help="default compat")
    s.add_argument("--seed", type=int, default=1, help="seed of every generated input (default 1)")
    s.add_argument("--out", required=True, metavar="FILE", help="output file, or - for stdout")
    s.set_defaults(func=cmd_vectors)

    s = sub.add_parser("check", help="recompute a vector file and report the first mismatch")
    s.add_argument("file", metavar="FILE")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("appkey", help="print a fresh random 32-byte app key")
    s.add_argument(
        "--nvs-csv", metavar="FILE", help="also write it as an NVS CSV for the key store"
    )
    s.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"NVS namespace (CONFIG_ESPNOW_SEC_NVS_NAMESPACE, default {DEFAULT_NAMESPACE})",
    )
    s.add_argument(
        "--provisioner-mac",
        default="00:00:00:00:00:00",
        metavar="MAC",
        help="initiator MAC recorded with the key (default zeros: preloaded)",
    )
    s.add_argument("--key", metavar="HEX", help="use this key instead of a random one")
    s.set_defaults(func=cmd_appkey)

    s = sub.add_parser("pop", help="generate a high-entropy PoP or estimate a PoP's strength")
    s.add_argument("--bits", type=int, default=128, help="entropy of a generated PoP (default 128)")
    s.add_argument("--estimate", metavar="TEXT", help="estimate the strength of this PoP instead")
    s.set_defaults(func=cmd_pop)

    s = sub.add_parser("decode", help="show a frame field by field; decrypt data frames with --key")
    s.add_argument("--key", metavar="HEX", help="32-byte app key (or its 16-byte CCM half)")
    s.add_argument("--group-secret", metavar="HEX", help="v2: 32-byte group secret G_E")
    s.add_argument("--epoch", type=int, help="v2: the epoch of --group-secret")
    s.add_argument("--src", metavar="MAC", help="v2: radio source (needed to decrypt)")
    s.add_argument("--dst", metavar="MAC", help="v2: radio destination (needed to decrypt)")
    s.add_argument("frame", metavar="FRAME_HEX", help="the frame body, header included")
    s.set_defaults(func=cmd_decode)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return int(args.func(args))
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `keygen sec1 ... | head`: the reader left, nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the promise is "never a traceback"
        print(
            f"{PROG}: internal error ({type(exc).__name__}): {exc}; please report it",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())

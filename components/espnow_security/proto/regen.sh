#!/bin/sh
# Regenerate the committed protobuf-c sources from the .proto files in this folder.
#
#   regen.sh            write into ../proto-c (commit the result)
#   regen.sh OUTDIR     write into OUTDIR
#   regen.sh --check    regenerate into a temporary folder and fail (exit 1) if the
#                       committed ../proto-c differs: run by CTest (tests/c) so stale
#                       generated files cannot slip in.
#
# Needs protoc-c (Debian: protobuf-c-compiler; the committed files come from 1.4.1).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
committed="$here/../proto-c"
protos="espnow_sec_constants.proto espnow_sec_sec1.proto espnow_sec_session.proto"

if ! command -v protoc-c >/dev/null 2>&1; then
    echo "regen.sh: protoc-c not found; install protobuf-c-compiler (apt-get install protobuf-c-compiler)" >&2
    exit 2
fi

gen() {
    mkdir -p "$1"
    # Relative --proto_path keeps absolute paths out of the generated files.
    (cd "$here" && protoc-c --proto_path=. --c_out="$1" $protos)
}

case "${1:-}" in
--check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    gen "$tmp"
    if diff -r "$committed" "$tmp" >/dev/null; then
        echo "proto-c is up to date"
    else
        diff -ru "$committed" "$tmp" | head -40 >&2 || true
        echo "regen.sh: components/espnow_security/proto-c is stale: run components/espnow_security/proto/regen.sh and commit the result" >&2
        exit 1
    fi
    ;;
"")
    gen "$committed"
    ;;
*)
    gen "$1"
    ;;
esac

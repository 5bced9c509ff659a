# sources.cmake - the pure core, the PSA crypto module and the generated protobuf-c code.
#
# Included by this component's CMakeLists.txt (ESP-IDF and host builds) and by
# tests/c/CMakeLists.txt. Sets:
#   ESPNOW_SEC_CORE_SRCS                  .c files (absolute paths)
#   ESPNOW_SEC_CORE_PUBLIC_INCLUDE_DIRS   the public header folder
#   ESPNOW_SEC_CORE_PRIV_INCLUDE_DIRS     core/, crypto/, proto-c/ (private to the component)
#   ESPNOW_SEC_CORE_INCLUDE_DIRS          both
# Link needs: PSA Crypto (ESP-IDF: mbedtls; host: -lmbedcrypto) and protobuf-c
# (ESP-IDF: the protobuf-c component; host: -lprotobuf-c). esp_err.h comes from ESP-IDF
# or from port/linux/include on the host.

set(_espnow_sec_dir ${CMAKE_CURRENT_LIST_DIR})

set(ESPNOW_SEC_CORE_SRCS
    ${_espnow_sec_dir}/core/node.c
    ${_espnow_sec_dir}/core/frame.c
    ${_espnow_sec_dir}/core/hs_compat.c
    ${_espnow_sec_dir}/core/compat_initiator.c
    ${_espnow_sec_dir}/core/compat_responder.c
    ${_espnow_sec_dir}/core/datapath.c
    ${_espnow_sec_dir}/core/dedupe.c
    ${_espnow_sec_dir}/core/keystore.c
    ${_espnow_sec_dir}/core/keysched.c
    ${_espnow_sec_dir}/core/replay.c
    ${_espnow_sec_dir}/core/epoch.c
    ${_espnow_sec_dir}/core/v2_initiator.c
    ${_espnow_sec_dir}/core/v2_responder.c
    ${_espnow_sec_dir}/core/errors.c
    ${_espnow_sec_dir}/crypto/crypto_psa.c
    ${_espnow_sec_dir}/proto-c/espnow_sec_constants.pb-c.c
    ${_espnow_sec_dir}/proto-c/espnow_sec_sec1.pb-c.c
    ${_espnow_sec_dir}/proto-c/espnow_sec_session.pb-c.c
)

set(ESPNOW_SEC_CORE_PUBLIC_INCLUDE_DIRS
    ${_espnow_sec_dir}/include
)

set(ESPNOW_SEC_CORE_PRIV_INCLUDE_DIRS
    ${_espnow_sec_dir}/core
    ${_espnow_sec_dir}/crypto
    ${_espnow_sec_dir}/proto-c
)

set(ESPNOW_SEC_CORE_INCLUDE_DIRS
    ${ESPNOW_SEC_CORE_PUBLIC_INCLUDE_DIRS}
    ${ESPNOW_SEC_CORE_PRIV_INCLUDE_DIRS}
)

# The proto sources and the script that regenerates proto-c/ from them (tests/c checks
# that the committed files are fresh).
set(ESPNOW_SEC_PROTO_DIR ${_espnow_sec_dir}/proto)
set(ESPNOW_SEC_PROTO_REGEN ${_espnow_sec_dir}/proto/regen.sh)

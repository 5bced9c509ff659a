/*
 * node.h - the deterministic machine: frames and clock ticks in, frames and events out.
 *
 * One espnow_sec_node_t is one ESP-NOW station. Ports, tests, the simulator and
 * fuzzers all drive it through these functions only, always from one thread at
 * a time (the port serialises). The node owns every table; all are bounded
 * (espnow_sec_limits.h) and nothing is allocated after espnow_sec_node_init().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct espnow_sec_node espnow_sec_node_t;

typedef struct {
    espnow_sec_role_t role;
    uint8_t self_mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t channel;
    const char *pop; /**< copied into the node */
    espnow_sec_protocol_t protocol; /**< DEFAULT (0) = the Kconfig choice */
} espnow_sec_node_config_t;

/** Size of espnow_sec_node_t, for ports that place it statically or allocate it once. */
size_t espnow_sec_node_size(void);

/**
 * Initialise `node` (espnow_sec_node_size() bytes). Loads the stored app key, if any.
 * `env` must outlive the node. Returns ESP_ERR_ESPNOW_SEC_STORE_CORRUPT if a stored
 * record is damaged (it is not modified). A keyed node holds one PSA key (its data key)
 * until espnow_sec_node_deinit(): deinit a node before initialising it again.
 */
esp_err_t espnow_sec_node_init(espnow_sec_node_t *node, const espnow_sec_env_t *env,
                               const espnow_sec_node_config_t *cfg);

/** Destroy the node's PSA key and wipe every key and session in RAM. The stored key is kept. */
void espnow_sec_node_deinit(espnow_sec_node_t *node);

/**
 * One received ESP-NOW frame body. `len` is the real received length; nothing past
 * data[len) is read. `dst` is the MAC-layer destination (own MAC or broadcast).
 */
void espnow_sec_node_on_frame(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                              const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *data,
                              size_t len, int8_t rssi, uint8_t channel);

/** Result of an earlier env->send() to `dst` (ESP-NOW send callback). */
void espnow_sec_node_on_send_status(espnow_sec_node_t *node,
                                    const uint8_t dst[ESPNOW_SEC_ADDR_LEN], bool delivered);

/**
 * Let timers fire. Call at least every ESPNOW_SEC_TICK_MS, or when the deadline
 * returned by the previous call passes. Returns ms until the next deadline
 * (UINT32_MAX when idle).
 */
uint32_t espnow_sec_node_tick(espnow_sec_node_t *node);

/** Initiator: scan for `scan_ms`, then secure everyone found. See espnow_sec_provision(). */
esp_err_t espnow_sec_node_provision(espnow_sec_node_t *node, uint32_t scan_ms);

/** Send app data; see espnow_sec_send(). `dst` NULL = broadcast. */
esp_err_t espnow_sec_node_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data,
                               size_t len);

/** v2 initiator: see espnow_sec_rekey(), espnow_sec_add_devices(), espnow_sec_remove_device(). */
esp_err_t espnow_sec_node_rekey(espnow_sec_node_t *node);
esp_err_t espnow_sec_node_add_devices(espnow_sec_node_t *node, uint32_t scan_ms);
esp_err_t espnow_sec_node_remove_device(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN]);
/** See espnow_sec_get_status(). */
void espnow_sec_node_get_status(const espnow_sec_node_t *node, espnow_sec_status_t *out);

size_t espnow_sec_node_max_payload(const espnow_sec_node_t *node);
bool espnow_sec_node_is_secured(const espnow_sec_node_t *node);
esp_err_t espnow_sec_node_erase_key(espnow_sec_node_t *node);

/** Counters a test or a `status` command can read. */
typedef struct {
    uint32_t rx_frames;
    uint32_t rx_malformed;      /**< failed to parse (length, type, protobuf) */
    uint32_t rx_auth_fail;      /**< data frames whose tag did not verify */
    uint32_t rx_duplicate;      /**< dropped by the dedupe cache */
    uint32_t rx_plaintext;      /**< plaintext data frames received */
    uint32_t rx_plaintext_dropped; /**< plaintext data dropped because this node is secured */
    uint32_t rx_delivered;      /**< data frames handed to the app (either protocol) */
    uint32_t rx_foreign;        /**< not ours: other protocol version, wrong channel, ... */
    uint32_t tx_frames;
    uint32_t tx_retransmits;    /**< handshake messages sent again after a timeout */
    uint32_t hs_failed;
    uint32_t hs_secured;
    /* Added with the compat core: */
    uint32_t rx_unexpected;     /**< well-formed but not expected in this role/state (late duplicate, REST, ...) */
    uint32_t scan_overflow;     /**< scan answers ignored because the responder table was full */
    uint32_t tx_failed;         /**< send-status callbacks reporting "not delivered" */
    /* Handshake robustness (compat): */
    uint32_t hs_auth_fail;      /**< Cmd1 / Resp1 / KEY_RESP / Resp0 that failed its check; the session goes on */
    uint32_t hs_evicted;        /**< responder: half-open handshakes dropped to make room for a new one */
} espnow_sec_stats_t;

void espnow_sec_node_get_stats(const espnow_sec_node_t *node, espnow_sec_stats_t *out);

#ifdef __cplusplus
}
#endif

/*
 * espnow_sec.h - the one public header of the espnow_security component.
 *
 * An initiator scans for responders, runs a Proof-of-Possession authenticated
 * X25519 handshake with each and delivers the group (app) key encrypted under the
 * session key. From then on data frames are AES-CCM protected.
 *
 * Two wire protocols (CONFIG_ESPNOW_SEC_PROTOCOL, or espnow_sec_config_t.protocol):
 *   v2 (default, docs/PROTOCOL.md): key confirmation both ways, confirmed key delivery,
 *      authenticated headers, 8-byte tags, replay protection, key epochs (re-key, add,
 *      remove). espnow_sec_rekey(), espnow_sec_add_devices() and
 *      espnow_sec_remove_device() exist only under v2.
 *   compat: byte-compatible with Espressif esp-now 2.x security (protocomm security1).
 * A node speaks one protocol; frames of the other are ignored and counted.
 *
 * Threading: every function here may be called from any task/thread. Callbacks
 * run on the component's own task (ESP32) or thread (host); keep them short
 * and do not call espnow_sec_stop() from inside one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Base of this component's error codes (not part of ESP-IDF's generated table). */
#define ESP_ERR_ESPNOW_SEC_BASE 0xE100
/** The payload does not fit in one frame (espnow_sec_max_payload(): 218 compat, 230 v2). Send less. */
#define ESP_ERR_ESPNOW_SEC_TOO_LONG (ESP_ERR_ESPNOW_SEC_BASE + 1)
/** No app key yet: provision this node (initiator) or wait for "secured". */
#define ESP_ERR_ESPNOW_SEC_NO_KEY (ESP_ERR_ESPNOW_SEC_BASE + 2)
/** A frame failed authentication (wrong key, tampered, truncated). Counted, not fatal. */
#define ESP_ERR_ESPNOW_SEC_AUTH (ESP_ERR_ESPNOW_SEC_BASE + 3)
/** A frame could not be parsed (bad length, unknown type, bad protobuf). */
#define ESP_ERR_ESPNOW_SEC_MALFORMED (ESP_ERR_ESPNOW_SEC_BASE + 4)
/** The key store holds data that is not a valid key record; it was left untouched. */
#define ESP_ERR_ESPNOW_SEC_STORE_CORRUPT (ESP_ERR_ESPNOW_SEC_BASE + 5)
/** A bounded table (responders, sessions, dedupe) is full. Raise its Kconfig limit. */
#define ESP_ERR_ESPNOW_SEC_TABLE_FULL (ESP_ERR_ESPNOW_SEC_BASE + 6)
/** The radio refused the frame (ESP-NOW send error); retry later. */
#define ESP_ERR_ESPNOW_SEC_RADIO (ESP_ERR_ESPNOW_SEC_BASE + 7)
/** v2: the frame counter reservation could not be written to the key store (flash full or
    failing); nothing was sent. Check the store (NVS partition), then send again. */
#define ESP_ERR_ESPNOW_SEC_COUNTER (ESP_ERR_ESPNOW_SEC_BASE + 8)

#define ESPNOW_SEC_ADDR_LEN 6
#define ESPNOW_SEC_APP_KEY_LEN 32
/** Longest PoP espnow_sec_start() accepts, in bytes (docs/PROTOCOL.md: 0..64). */
#define ESPNOW_SEC_POP_MAX_LEN 64
/** Largest ESP-NOW v1 frame body (ESP_NOW_MAX_DATA_LEN). */
#define ESPNOW_SEC_FRAME_MAX 250
/** Largest app payload of an encrypted compat data frame: 250 - 20 (header) - 12 (tag+nonce). */
#define ESPNOW_SEC_MAX_PAYLOAD_COMPAT 218
/** Largest app payload under v2 in an ESP-NOW v1 frame: 250 - 12 (header) - 8 (tag). */
#define ESPNOW_SEC_MAX_PAYLOAD_V2 230
/** Largest app payload under v2 in a 1470-byte ESP-NOW v2 frame (not offered yet: the ports
    carry 250-byte frames). */
#define ESPNOW_SEC_MAX_PAYLOAD_V2_LONG 1450

/** Wire protocol of a node. */
typedef enum {
    ESPNOW_SEC_PROTOCOL_DEFAULT = 0, /**< the CONFIG_ESPNOW_SEC_PROTOCOL choice (v2 unless changed) */
    ESPNOW_SEC_PROTOCOL_COMPAT = 1,  /**< esp-now 2.x security, for deployed esp-now devices */
    ESPNOW_SEC_PROTOCOL_V2 = 2,      /**< docs/PROTOCOL.md */
} espnow_sec_protocol_t;

typedef enum {
    ESPNOW_SEC_ROLE_INITIATOR = 0,
    ESPNOW_SEC_ROLE_RESPONDER = 1,
} espnow_sec_role_t;

/** How a received frame was protected. Only ENCRYPTED frames are authentic. */
typedef enum {
    ESPNOW_SEC_RX_PLAINTEXT = 0, /**< sent in clear: anyone may have sent or altered it */
    ESPNOW_SEC_RX_ENCRYPTED = 1, /**< decrypted and its tag verified under the app key */
} espnow_sec_protection_t;

/** Why a handshake failed. */
typedef enum {
    ESPNOW_SEC_FAIL_NONE = 0,
    ESPNOW_SEC_FAIL_TIMEOUT,       /**< the peer stopped answering after every retry */
    ESPNOW_SEC_FAIL_POP_MISMATCH,  /**< the peer's verifier did not match: different PoP */
    ESPNOW_SEC_FAIL_BAD_KEY,       /**< public key of wrong length, all-zero or low order */
    ESPNOW_SEC_FAIL_MALFORMED,     /**< message that does not parse or is wrong for the state */
    ESPNOW_SEC_FAIL_KEY_ECHO,      /**< KEY_RESP did not echo the app key we sent */
    ESPNOW_SEC_FAIL_STORE,         /**< the received key could not be stored */
    ESPNOW_SEC_FAIL_CRYPTO,        /**< the crypto backend failed */
    /** Initiator: the peer answered SessionResp0 but never SessionResp1. A security1 device
        answers nothing when our verifier does not match, so this almost always means the two
        sides use different PoPs (the wire cannot say so explicitly). */
    ESPNOW_SEC_FAIL_NO_RESP1,
} espnow_sec_fail_reason_t;

typedef enum {
    /** Initiator: scan finished. data.scan */
    ESPNOW_SEC_EVENT_SCAN_DONE = 0,
    /** A peer is secured: initiator got a verified KEY_RESP; responder installed the key. data.peer */
    ESPNOW_SEC_EVENT_PEER_SECURED,
    /** A handshake with a peer failed. data.peer (reason set) */
    ESPNOW_SEC_EVENT_PEER_FAILED,
    /** Initiator: a provisioning run ended. data.done */
    ESPNOW_SEC_EVENT_PROVISION_DONE,
    /** v2: this node now sends under a new key epoch (initiator: the re-key rollout ended;
        responder: it activated the epoch). data.rekey */
    ESPNOW_SEC_EVENT_REKEY_DONE,
    /** v2 initiator: a device was removed (reason FAIL_NONE: it acknowledged and erased its
        keys; FAIL_TIMEOUT: it did not answer, it is cut off by the re-key anyway). data.peer */
    ESPNOW_SEC_EVENT_DEVICE_REMOVED,
    /** v2 responder: its initiator un-provisioned it; keys erased. data.peer (the initiator) */
    ESPNOW_SEC_EVENT_UNPROVISIONED,
} espnow_sec_event_id_t;

typedef struct {
    espnow_sec_event_id_t id;
    union {
        struct {
            uint32_t found;      /**< responders that answered and are not yet ours */
            uint32_t scan_ms;    /**< how long the scan took */
        } scan;
        struct {
            uint8_t mac[ESPNOW_SEC_ADDR_LEN];
            espnow_sec_fail_reason_t reason; /**< FAIL_NONE for PEER_SECURED */
        } peer;
        struct {
            uint32_t succeeded;
            uint32_t unfinished;
            uint32_t spend_ms;   /**< from the start of the scan to the end of the run */
            uint32_t scan_ms;
        } done;
        struct {
            uint16_t epoch;      /**< the epoch now used to send */
            uint32_t acked;      /**< initiator: devices that acknowledged the new key */
            uint32_t stragglers; /**< initiator: devices that did not (they get it when heard) */
        } rekey;
    } data;
} espnow_sec_event_t;

typedef struct {
    uint8_t src[ESPNOW_SEC_ADDR_LEN]; /**< originator (header src_addr); authentic only if ENCRYPTED,
                                           and even then only "some holder of the app key" */
    uint8_t dst[ESPNOW_SEC_ADDR_LEN];
    uint8_t channel;
    int8_t rssi;
    bool broadcast;
    espnow_sec_protection_t protection;
} espnow_sec_rx_info_t;

/** Data frame received. `data` is valid only during the call. */
typedef void (*espnow_sec_recv_cb_t)(const espnow_sec_rx_info_t *info, const uint8_t *data,
                                     size_t len, void *user_ctx);
/** Security event. `event` is valid only during the call. */
typedef void (*espnow_sec_event_cb_t)(const espnow_sec_event_t *event, void *user_ctx);

typedef struct {
    espnow_sec_role_t role;
    const char *pop;         /**< Proof of Possession; copied; at most ESPNOW_SEC_POP_MAX_LEN bytes.
                                  "" disables PoP: the handshake is then unauthenticated (a WARN) */
    uint8_t channel;         /**< Wi-Fi channel both sides use (1..14) */
    espnow_sec_recv_cb_t on_recv;
    espnow_sec_event_cb_t on_event;
    void *user_ctx;
    espnow_sec_protocol_t protocol; /**< 0 (DEFAULT) = the Kconfig choice */
} espnow_sec_config_t;

/** Why the core dropped a received frame (docs/PROTOCOL.md §2.6); index of status drops[]. */
typedef enum {
    ESPNOW_SEC_DROP_MALFORMED = 0, /**< bad length, type, flags or field */
    ESPNOW_SEC_DROP_FOREIGN,       /**< other protocol, not for this role, or no key */
    ESPNOW_SEC_DROP_AUTH,          /**< tag or confirmation MAC failed */
    ESPNOW_SEC_DROP_REPLAY,        /**< counter already seen or too old */
    ESPNOW_SEC_DROP_DUPLICATE,     /**< retransmitted handshake message (answered again) */
    ESPNOW_SEC_DROP_UNSYNCED,      /**< sender's counter not yet proven (sync started) */
    ESPNOW_SEC_DROP_EPOCH,         /**< key epoch not accepted (outside the grace period) */
    ESPNOW_SEC_DROP_TABLE_FULL,    /**< no replay-table slot for a new sender */
    ESPNOW_SEC_DROP_STATE,         /**< valid but not expected in this state */
    ESPNOW_SEC_DROP_RATE_LIMITED,  /**< PoP guess limiter or reply limiter */
    ESPNOW_SEC_DROP_PLAINTEXT,     /**< plaintext data while secured: never delivered */
    ESPNOW_SEC_DROP_COUNT,
} espnow_sec_drop_reason_t;

/** Snapshot for a `status` command: espnow_sec_get_status(). */
typedef struct {
    espnow_sec_protocol_t protocol; /**< COMPAT or V2 */
    espnow_sec_role_t role;
    bool secured;                   /**< holds a group (app) key */
    uint16_t epoch;                 /**< v2: current key epoch (0: none; compat: 0) */
    uint16_t staged_epoch;          /**< v2: epoch received but not yet active (0: none) */
    uint16_t previous_epoch;        /**< v2: old epoch still accepted (grace period), 0: none */
    uint32_t peers;                 /**< initiator: devices holding the key; v2 responder:
                                         senders with a synced replay window */
    uint64_t tx_counter;            /**< v2: next frame counter */
    uint64_t counter_reserved;      /**< v2: end of the counter block reserved in the store */
    uint32_t rx_frames;
    uint32_t rx_delivered;          /**< data handed to the app */
    uint32_t tx_frames;
    uint32_t drops[ESPNOW_SEC_DROP_COUNT];
} espnow_sec_status_t;

/**
 * @brief  Start the component: radio, key store, the core task.
 *
 * A node that finds an app key in its store is secured at once (responder: the key and
 * the initiator that delivered it; initiator: the group key it provisions).
 *
 * @return ESP_OK; ESP_ERR_INVALID_ARG (NULL cfg, bad channel, NULL pop, pop longer than
 *         ESPNOW_SEC_POP_MAX_LEN);
 *         ESP_ERR_INVALID_ARG also for an empty PoP under v2 with CONFIG_ESPNOW_SEC_V2_REQUIRE_POP
 *         (set a PoP of at least 80 bits: `keygen pop`), or an unknown protocol;
 *         ESP_ERR_INVALID_STATE (already started); ESP_ERR_NO_MEM;
 *         ESP_ERR_ESPNOW_SEC_STORE_CORRUPT (the stored key record is damaged: it is left in
 *         place, erase it with espnow_sec_erase_key() to re-provision);
 *         ESP_ERR_ESPNOW_SEC_RADIO (radio could not be opened).
 */
esp_err_t espnow_sec_start(const espnow_sec_config_t *cfg);

/**
 * @brief  Stop the core task and release the radio; keys in RAM are wiped, the stored key
 *         is kept.
 * @return ESP_OK; ESP_ERR_INVALID_STATE (not started: nothing to stop).
 */
esp_err_t espnow_sec_stop(void);

/**
 * @brief  Initiator: scan for responders for `scan_ms`, then secure every one found.
 *
 * `scan_ms` 0 means CONFIG_ESPNOW_SEC_SCAN_DURATION_MS; other values are clamped to
 * 100..60000 ms. Returns at once; progress arrives as SCAN_DONE, PEER_SECURED/PEER_FAILED
 * and finally PROVISION_DONE events.
 *
 * @return ESP_OK; ESP_ERR_INVALID_STATE (not an initiator, not started, a run is active, or
 *         under v2 the initiator has no group key yet: check the key store).
 */
esp_err_t espnow_sec_provision(uint32_t scan_ms);

/**
 * @brief  Send `len` bytes to `dst` (NULL = broadcast). Encrypted when the node holds
 *         an app key, in clear otherwise.
 *
 * @return ESP_OK (queued); ESP_ERR_INVALID_ARG (NULL data);
 *         ESP_ERR_ESPNOW_SEC_TOO_LONG (len > espnow_sec_max_payload(), or 0 under v2; nothing
 *         is sent); ESP_ERR_INVALID_STATE (not started); ESP_ERR_ESPNOW_SEC_RADIO;
 *         ESP_ERR_ESPNOW_SEC_COUNTER (v2: the frame counter could not be reserved in the key
 *         store; nothing sent: check the store, then send again).
 */
esp_err_t espnow_sec_send(const uint8_t *dst, const uint8_t *data, size_t len);

/** @brief Largest payload espnow_sec_send() accepts with the current protocol. */
size_t espnow_sec_max_payload(void);

/** @brief True once this node holds an app key. */
bool espnow_sec_is_secured(void);

/** @brief Erase the stored app key (and the record of who provisioned it). */
esp_err_t espnow_sec_erase_key(void);

/**
 * @brief  v2 initiator: re-key the group. Every device gets a new group key under epoch
 *         E+1 over its pairwise channel, then everyone switches; frames under E are still
 *         accepted for CONFIG_ESPNOW_SEC_EPOCH_GRACE_S. Progress: ESPNOW_SEC_EVENT_REKEY_DONE.
 *
 * @return ESP_OK (started); ESP_ERR_NOT_SUPPORTED (compat protocol: it has no epochs; use
 *         v2); ESP_ERR_INVALID_STATE (not a started initiator, or a provisioning run or
 *         another re-key/remove is still running: wait for its event; or the epoch space is
 *         exhausted: erase every node and re-provision); ESP_FAIL (the new key could not be
 *         stored: check the key store).
 */
esp_err_t espnow_sec_rekey(void);

/**
 * @brief  v2 initiator: scan for `scan_ms` and provision newcomers only (unprovisioned
 *         responders); members are not touched and keep their key. Events as for
 *         espnow_sec_provision().
 *
 * @return ESP_OK (started); ESP_ERR_NOT_SUPPORTED (compat: use espnow_sec_provision());
 *         ESP_ERR_INVALID_STATE (not a started initiator, or a run / re-key is active).
 */
esp_err_t espnow_sec_add_devices(uint32_t scan_ms);

/**
 * @brief  v2 initiator: remove device `mac`. It is told to erase its keys (authenticated
 *         UNPROVISION) and the group is re-keyed without it, so it cannot read anything
 *         sent under the new epoch even if it ignores the request. Completion:
 *         ESPNOW_SEC_EVENT_DEVICE_REMOVED, then ESPNOW_SEC_EVENT_REKEY_DONE.
 *
 * @return ESP_OK (started); ESP_ERR_INVALID_ARG (NULL mac); ESP_ERR_NOT_FOUND (no device
 *         with that MAC: see espnow_sec_get_status() / the `/status` command);
 *         ESP_ERR_NOT_SUPPORTED (compat); ESP_ERR_INVALID_STATE (not a started initiator,
 *         or a run / re-key is active: wait for its event); ESP_FAIL (store write failed).
 */
esp_err_t espnow_sec_remove_device(const uint8_t mac[ESPNOW_SEC_ADDR_LEN]);

/**
 * @brief  Fill `status`: protocol, epochs, peers, counters and drops by reason.
 *
 * @return ESP_OK; ESP_ERR_INVALID_ARG (NULL status); ESP_ERR_INVALID_STATE (not started:
 *         call espnow_sec_start() first).
 */
esp_err_t espnow_sec_get_status(espnow_sec_status_t *status);

/** @brief Short name of a protocol ("v2", "compat"). Never NULL. */
const char *espnow_sec_protocol_str(espnow_sec_protocol_t protocol);

/** @brief Short name of a drop reason ("replay", ...). Never NULL. */
const char *espnow_sec_drop_reason_str(espnow_sec_drop_reason_t reason);

/** @brief Name of an esp_err_t, this component's codes included. Never NULL. */
const char *espnow_sec_err_to_name(esp_err_t err);

/** @brief Human-readable fail reason. Never NULL. */
const char *espnow_sec_fail_reason_str(espnow_sec_fail_reason_t reason);

#ifdef __cplusplus
}
#endif

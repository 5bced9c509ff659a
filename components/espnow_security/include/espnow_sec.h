/*
 * espnow_sec.h - the one public header of the espnow_security component.
 *
 * An initiator scans for responders, runs a Proof-of-Possession authenticated
 * X25519 handshake with each (protocomm security1 in the compat protocol) and
 * delivers the 32-byte app key encrypted under the session key. From then on
 * data frames are AES-CCM protected.
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
/** The payload does not fit in one frame; see ESPNOW_SEC_MAX_PAYLOAD_COMPAT. Send less. */
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

#define ESPNOW_SEC_ADDR_LEN 6
#define ESPNOW_SEC_APP_KEY_LEN 32
/** Longest PoP espnow_sec_start() accepts, in bytes (docs/PROTOCOL.md: 0..64). */
#define ESPNOW_SEC_POP_MAX_LEN 64
/** Largest ESP-NOW v1 frame body (ESP_NOW_MAX_DATA_LEN). */
#define ESPNOW_SEC_FRAME_MAX 250
/** Largest app payload of an encrypted compat data frame: 250 - 20 (header) - 12 (tag+nonce). */
#define ESPNOW_SEC_MAX_PAYLOAD_COMPAT 218

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
} espnow_sec_config_t;

/**
 * @brief  Start the component: radio, key store, the core task.
 *
 * A node that finds an app key in its store is secured at once (responder: the key and
 * the initiator that delivered it; initiator: the group key it provisions).
 *
 * @return ESP_OK; ESP_ERR_INVALID_ARG (NULL cfg, bad channel, NULL pop, pop longer than
 *         ESPNOW_SEC_POP_MAX_LEN);
 *         ESP_ERR_INVALID_STATE (already started); ESP_ERR_NO_MEM;
 *         ESP_ERR_ESPNOW_SEC_STORE_CORRUPT (the stored key record is damaged: it is left in
 *         place, erase it with espnow_sec_erase_key() to re-provision);
 *         ESP_ERR_ESPNOW_SEC_RADIO (radio could not be opened).
 */
esp_err_t espnow_sec_start(const espnow_sec_config_t *cfg);

/** @brief Stop the core task and release the radio; keys in RAM are wiped. */
esp_err_t espnow_sec_stop(void);

/**
 * @brief  Initiator: scan for responders for `scan_ms`, then secure every one found.
 *
 * Returns at once; progress arrives as SCAN_DONE, PEER_SECURED/PEER_FAILED and
 * finally PROVISION_DONE events.
 *
 * @return ESP_OK; ESP_ERR_INVALID_STATE (not an initiator, not started, or a run is active).
 */
esp_err_t espnow_sec_provision(uint32_t scan_ms);

/**
 * @brief  Send `len` bytes to `dst` (NULL = broadcast). Encrypted when the node holds
 *         an app key, in clear otherwise.
 *
 * @return ESP_OK (queued); ESP_ERR_INVALID_ARG (NULL data);
 *         ESP_ERR_ESPNOW_SEC_TOO_LONG (len > espnow_sec_max_payload(); nothing is sent);
 *         ESP_ERR_INVALID_STATE (not started); ESP_ERR_ESPNOW_SEC_RADIO.
 */
esp_err_t espnow_sec_send(const uint8_t *dst, const uint8_t *data, size_t len);

/** @brief Largest payload espnow_sec_send() accepts with the current protocol. */
size_t espnow_sec_max_payload(void);

/** @brief True once this node holds an app key. */
bool espnow_sec_is_secured(void);

/** @brief Erase the stored app key (and the record of who provisioned it). */
esp_err_t espnow_sec_erase_key(void);

/** @brief Name of an esp_err_t, this component's codes included. Never NULL. */
const char *espnow_sec_err_to_name(esp_err_t err);

/** @brief Human-readable fail reason. Never NULL. */
const char *espnow_sec_fail_reason_str(espnow_sec_fail_reason_t reason);

#ifdef __cplusplus
}
#endif

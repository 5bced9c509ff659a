/*
 * node_priv.h - the node's tables and the functions the core's files share.
 * Not for ports or apps: they use node.h only. Tests may look inside.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "dedupe.h"
#include "env.h"
#include "epoch.h"
#include "keysched.h"
#include "keystore.h"
#include "replay.h"
#include "frame.h"
#include "hs_compat.h"
#include "espnow_sec_limits.h"
#include "node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ESPNOW_SEC_MACSTR "%02x:%02x:%02x:%02x:%02x:%02x"
#define ESPNOW_SEC_MAC2STR(m) (m)[0], (m)[1], (m)[2], (m)[3], (m)[4], (m)[5]

/** A handshake record we may have to send again: {type, size, data}. */
#define ESPNOW_SEC_HS_RECORD_MAX (2 + ESPNOW_SEC_COMPAT_MSG_MAX)

/* ---- initiator ---- */

typedef enum {
    ESPNOW_SEC_RUN_IDLE = 0,
    ESPNOW_SEC_RUN_SCAN,
    ESPNOW_SEC_RUN_HANDSHAKE,
} espnow_sec_run_phase_t;

typedef enum {
    ESPNOW_SEC_PEER_PENDING = 0, /**< found by the scan, no session yet */
    ESPNOW_SEC_PEER_ACTIVE,      /**< a session works on it */
    ESPNOW_SEC_PEER_SECURED,
    ESPNOW_SEC_PEER_FAILED,
} espnow_sec_peer_state_t;

typedef struct {
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    int8_t rssi;
    uint8_t channel;
    uint8_t state;  /**< espnow_sec_peer_state_t */
} espnow_sec_peer_t;

typedef enum {
    ESPNOW_SEC_CS_FREE = 0,
    ESPNOW_SEC_CS_WAIT_RESP0,
    ESPNOW_SEC_CS_WAIT_RESP1,
    ESPNOW_SEC_CS_WAIT_KEY_RESP,
} espnow_sec_cs_state_t;

/** Initiator side of one handshake (protocomm client). */
typedef struct {
    uint8_t state;  /**< espnow_sec_cs_state_t */
    uint8_t peer;   /**< index into peers[] */
    uint8_t tries;  /**< retransmissions of the current message */
    uint8_t tx_len;
    uint32_t deadline;
    uint32_t timeout;
    uint8_t restarts; /**< fresh Cmd0s sent after an unanswered Cmd1 (ESPNOW_SEC_INI_RESTARTS) */
    uint8_t bad;      /**< espnow_sec_fail_reason_t of the last answer that failed its check, kept
                           for the final reason: a failed check never ends the session itself */
    uint8_t cli_priv[ESPNOW_SEC_X25519_LEN];   /**< wiped once Resp0 is processed */
    uint8_t cli_pub[ESPNOW_SEC_X25519_LEN];
    espnow_sec_compat_ctr_t ctr;
    uint8_t tx[ESPNOW_SEC_HS_RECORD_MAX];      /**< last record sent, resent verbatim */
} espnow_sec_csession_t;

typedef struct {
    uint8_t phase;  /**< espnow_sec_run_phase_t */
    uint8_t scan_reqs;
    uint32_t t_start;
    uint32_t scan_window;
    uint32_t scan_interval;
    uint32_t next_scan_req;
    uint32_t scan_ms;           /**< measured, for the events */
    uint32_t n_peers;
    uint32_t scan_overflow;     /**< responders that did not fit peers[] (this run) */
    uint32_t succeeded;
    uint32_t failed;
    espnow_sec_peer_t peers[ESPNOW_SEC_MAX_RESPONDERS];
    espnow_sec_csession_t sess[ESPNOW_SEC_MAX_HANDSHAKES];
    /* Kept across runs (a new run wipes everything above): the app key was generated at this
     * boot, so a responder whose INFO names us as provisioner holds a key we no longer have,
     * unless it is listed in rekeyed[] (provisioned by us since). */
    bool key_generated;
    uint32_t n_rekeyed;
    uint8_t rekeyed[ESPNOW_SEC_MAX_RESPONDERS][ESPNOW_SEC_ADDR_LEN];
} espnow_sec_initiator_t;

/** Initiator: Cmd1 retransmissions without a SessionResp1 before the responder gets a fresh
 *  Cmd0 (its session may have been replaced, or a forged Resp0/Resp1 misled us). */
#define ESPNOW_SEC_INI_CMD1_TRIES 2
/** Initiator: fresh Cmd0s per responder and run; the last attempt retries Cmd1 RETRY_MAX times. */
#define ESPNOW_SEC_INI_RESTARTS 2

/* ---- responder ---- */

typedef enum {
    ESPNOW_SEC_RS_FREE = 0,
    ESPNOW_SEC_RS_WAIT_CMD1,
    ESPNOW_SEC_RS_WAIT_KEY,
    ESPNOW_SEC_RS_DONE,
} espnow_sec_rs_state_t;

/** Responder side of one handshake (protocomm server), with cached answers. */
typedef struct {
    uint8_t state;  /**< espnow_sec_rs_state_t */
    uint8_t peer[ESPNOW_SEC_ADDR_LEN];
    uint8_t resp0_len;
    uint8_t resp1_len;
    uint32_t born;  /**< creation order, to replace the oldest */
    uint8_t cli_pub[ESPNOW_SEC_X25519_LEN];
    uint8_t dev_pub[ESPNOW_SEC_X25519_LEN];
    espnow_sec_compat_ctr_t ctr;              /**< wiped at DONE */
    uint8_t cmd1_verify[ESPNOW_SEC_COMPAT_VERIFY_LEN];
    uint8_t key_ct[ESPNOW_SEC_COMPAT_KEY_LEN];
    uint8_t resp0[ESPNOW_SEC_HS_RECORD_MAX];
    uint8_t resp1[ESPNOW_SEC_HS_RECORD_MAX];
    uint8_t key_resp[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN];
} espnow_sec_rsession_t;

/** Responder: half-open handshakes (Resp0 sent, no valid Cmd1 yet), see compat_responder.c. */
#ifndef ESPNOW_SEC_RESPONDER_PENDING
#define ESPNOW_SEC_RESPONDER_PENDING (8 * ESPNOW_SEC_RESPONDER_SESSIONS)
#endif

/** Responder side of a half-open handshake: small, Resp0 is rebuilt from dev_pub + ctr.iv. */
typedef struct {
    bool used;
    bool pop_failed;  /**< a Cmd1 failed its check (reported once per entry) */
    uint8_t peer[ESPNOW_SEC_ADDR_LEN];
    uint32_t born;
    uint8_t cli_pub[ESPNOW_SEC_X25519_LEN];
    uint8_t dev_pub[ESPNOW_SEC_X25519_LEN];
    espnow_sec_compat_ctr_t ctr;
} espnow_sec_rpending_t;

typedef struct {
    bool in_sec_group;
    uint32_t seq;
    espnow_sec_rsession_t sess[ESPNOW_SEC_RESPONDER_SESSIONS];  /**< past Cmd1: WAIT_KEY / DONE */
    espnow_sec_rpending_t pend[ESPNOW_SEC_RESPONDER_PENDING];
} espnow_sec_responder_t;

/* ---- protocol v2 (docs/PROTOCOL.md) ---- */

/** A token bucket: `tokens` of `cap`, one more every `period` ms (§11.3, §11.4). */
typedef struct {
    uint16_t tokens;
    uint32_t t;  /**< time the next token is due from */
} espnow_sec_bucket_t;

typedef enum {
    ESPNOW_SEC_DEFER_FREE = 0,
    ESPNOW_SEC_DEFER_RAW,  /**< a prebuilt clear frame (SCAN_RESP) */
    ESPNOW_SEC_DEFER_SYNC, /**< a SYNC built when due (it takes a counter then) */
} espnow_sec_defer_kind_t;

#define ESPNOW_SEC_V2_DEFER_MAX 8

/** A frame to send after a random delay (§3 scan jitter, §8.4 SYNC jitter and spread). */
typedef struct {
    uint8_t kind;  /**< espnow_sec_defer_kind_t */
    uint8_t len;
    uint8_t dst[ESPNOW_SEC_ADDR_LEN];
    uint32_t due;
    uint8_t challenge[ESPNOW_SEC_CHALLENGE_LEN];
    uint8_t echo[ESPNOW_SEC_CHALLENGE_LEN];
    uint8_t frame[ESPNOW_SEC_V2_SCAN_RESP_LEN];
} espnow_sec_defer_t;

/** State every v2 node has, whatever its role. */
typedef struct {
    uint64_t next;      /**< §7.3 next frame counter */
    uint64_t reserved;  /**< R: every counter < R may have been used */
    espnow_sec_epochs_t ep;
    uint8_t bcast_challenge[ESPNOW_SEC_CHALLENGE_LEN];
    uint32_t bcast_t;
    bool bcast_valid;
    espnow_sec_bucket_t sync_lim;
    espnow_sec_bucket_t reply_lim;
    espnow_sec_defer_t defer[ESPNOW_SEC_V2_DEFER_MAX];
    uint32_t drops[ESPNOW_SEC_DROP_COUNT];
} espnow_sec_v2_t;

typedef enum {
    ESPNOW_SEC_V2P_FOUND = 0,
    ESPNOW_SEC_V2P_W_HS2,
    ESPNOW_SEC_V2P_W_HS4,
    ESPNOW_SEC_V2P_W_ACK,
    ESPNOW_SEC_V2P_DONE,
    ESPNOW_SEC_V2P_FAILED,
} espnow_sec_v2p_state_t;

/** Initiator: one responder found by the scan (§6.1). */
typedef struct {
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t state;     /**< espnow_sec_v2p_state_t */
    uint8_t attempts;  /**< handshake attempts this run */
    uint8_t sess;      /**< index into sess[] while W_HS2 / W_HS4 */
    uint8_t dev;       /**< index into devs[] while W_ACK */
    bool via_key;      /**< W_ACK for a KEY without handshake (PROVISIONED_BY_YOU) */
    bool via_pending;  /**< via_key: SCAN_RESP pair_id matched k_dev_pending, not k_dev (§6.1) */
    bool repair;       /**< answered REPAIR_OPEN and has a device record: a re-pair (§6.1) */
    uint32_t not_before; /**< FOUND: wait after BUSY / a failed attempt */
} espnow_sec_v2_peer_t;

/** Initiator side of one v2 handshake attempt. */
typedef struct {
    bool used;
    uint8_t peer;
    uint8_t tx_type;   /**< HS1 or HS3: what a timeout resends */
    uint8_t tries;
    uint32_t sid;
    uint32_t deadline;
    uint32_t timeout;
    uint8_t e_priv[ESPNOW_SEC_X25519_LEN]; /**< wiped once dh is computed */
    uint8_t hs1[ESPNOW_SEC_V2_HS1_LEN];
    uint8_t hs2[ESPNOW_SEC_V2_HS_LEN];
    uint8_t hs3[ESPNOW_SEC_V2_HS_LEN];
    uint8_t th3[ESPNOW_SEC_SHA256_LEN];
    espnow_sec_hs_keys_t keys;
} espnow_sec_v2_isess_t;

typedef enum {
    ESPNOW_SEC_CTL_NONE = 0,
    ESPNOW_SEC_CTL_PROVISION, /**< KEY ACTIVATE=1 ending a handshake or PENDING_KEY */
    ESPNOW_SEC_CTL_STAGE,     /**< KEY ACTIVATE=0 of a re-key (§9.2 step 2) */
    ESPNOW_SEC_CTL_PUSH,      /**< KEY ACTIVATE=1 to a straggler */
    ESPNOW_SEC_CTL_UNPROVISION,
} espnow_sec_ctl_kind_t;

/** Initiator: one device record (stored as v2_devNN, NN = index) and its outstanding CTRL. */
typedef struct {
    espnow_sec_v2_dev_rec_t rec; /**< rec.state FREE: unused slot */
    uint8_t ctl;                 /**< espnow_sec_ctl_kind_t */
    bool ctl_pending;            /**< the outstanding CTRL is sealed under rec.k_dev_pending (§6.1 re-pair) */
    uint8_t tries;
    uint8_t tx_len;
    uint16_t req_epoch;
    uint64_t req_ctr;
    uint32_t deadline;
    uint32_t timeout;
    uint32_t t_straggler;
    uint8_t expect_check[ESPNOW_SEC_V2_CHECK_LEN];
    uint8_t tx[ESPNOW_SEC_V2_CTRL_MAX_LEN];
} espnow_sec_v2_dev_t;

typedef struct {
    uint8_t phase;       /**< espnow_sec_run_phase_t */
    uint32_t scan_id;
    uint32_t t_start;
    uint32_t scan_window;
    uint32_t next_scan_req;
    uint32_t scan_ms;
    uint32_t n_peers;
    uint32_t scan_overflow;
    uint32_t succeeded;
    uint32_t failed;
    uint16_t grace_s;
    /* re-key rollout (§9.2) */
    bool rollout;
    uint16_t rollout_epoch;
    uint32_t rollout_t;
    uint8_t announce_left;
    uint32_t announce_at;
    espnow_sec_v2_peer_t peers[ESPNOW_SEC_MAX_RESPONDERS];
    espnow_sec_v2_isess_t sess[ESPNOW_SEC_MAX_HANDSHAKES];
    espnow_sec_v2_dev_t devs[ESPNOW_SEC_MAX_DEVICES];
} espnow_sec_v2_ini_t;

typedef enum {
    ESPNOW_SEC_V2S_FREE = 0,
    ESPNOW_SEC_V2S_HS2_SENT,
    ESPNOW_SEC_V2S_CONFIRMED,
} espnow_sec_v2s_state_t;

/** Responder side of one v2 handshake (§6.2), with cached answers for duplicates. */
typedef struct {
    uint8_t state;  /**< espnow_sec_v2s_state_t */
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint32_t sid;
    uint32_t t_last;
    uint8_t hs1[ESPNOW_SEC_V2_HS1_LEN];
    uint8_t hs2[ESPNOW_SEC_V2_HS_LEN];
    uint8_t hs3[ESPNOW_SEC_V2_HS_LEN];
    uint8_t hs4[ESPNOW_SEC_V2_HS_LEN];
    uint8_t th2[ESPNOW_SEC_SHA256_LEN];
    espnow_sec_hs_keys_t keys;
} espnow_sec_v2_rsess_t;

/** §11.2 per-MAC PoP failure record. */
typedef struct {
    bool used;
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t fails;
    uint32_t blocked_until;
    uint32_t last_failed_sid;
    uint32_t t_fail;
} espnow_sec_popfail_t;

typedef struct {
    bool provisioned;
    uint8_t mac_i[ESPNOW_SEC_ADDR_LEN];
    uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN];
    uint64_t ctl_floor;
    espnow_sec_v2_rsess_t sess[ESPNOW_SEC_RESPONDER_SESSIONS];
    espnow_sec_popfail_t popfail[ESPNOW_SEC_POP_FAIL_TABLE];
    espnow_sec_bucket_t guess;
    bool repair_open;
    uint32_t repair_until;
    bool linger;
    uint32_t linger_until;
    uint8_t linger_mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t linger_k_dev[ESPNOW_SEC_V2_KEY_LEN];
    uint64_t linger_c;
} espnow_sec_v2_rsp_t;

/** A received v2 frame after §2.6 steps 1-3. */
typedef struct {
    const uint8_t *src;
    const uint8_t *dst;
    const uint8_t *data; /**< the whole frame */
    size_t len;
    espnow_sec_v2_hdr_t hdr;
    int8_t rssi;
    uint8_t channel;
    bool broadcast;
} espnow_sec_v2_rx_t;

/** Handlers return a drop reason, or this for "consumed". node.c counts and logs. */
#define ESPNOW_SEC_V2_ACCEPT ESPNOW_SEC_DROP_COUNT
typedef espnow_sec_drop_reason_t (*espnow_sec_v2_handler_t)(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);

/* ---- the node ---- */

struct espnow_sec_node {
    const espnow_sec_env_t *env;
    espnow_sec_role_t role;
    espnow_sec_protocol_t protocol; /**< COMPAT or V2, never DEFAULT */
    uint8_t self[ESPNOW_SEC_ADDR_LEN];
    uint8_t channel;
    bool has_pop;
    bool has_key;
    uint8_t pop_hash[ESPNOW_SEC_SHA256_LEN];
    /** Raw app key, initiator only (sent in KEY, compared with the KEY_RESP echo); all
     *  zero on a responder, which needs only data_key once the record is stored. */
    uint8_t app_key[ESPNOW_SEC_APP_KEY_LEN];
    uint8_t provisioner[ESPNOW_SEC_ADDR_LEN]; /**< who delivered the key (own MAC on an initiator) */
    espnow_sec_ccm_key_t data_key;            /**< one PSA key while has_key (crypto.h) */
    espnow_sec_stats_t stats;
    espnow_sec_dedupe_t dedupe;
    espnow_sec_v2_t v2;
    union {
        espnow_sec_initiator_t ini;
        espnow_sec_responder_t rsp;
        espnow_sec_v2_ini_t v2i;
        espnow_sec_v2_rsp_t v2r;
    } u;
};

/** A received frame after header checks. */
typedef struct {
    espnow_sec_hdr_t hdr;
    const uint8_t *payload; /**< into the caller's buffer */
    size_t len;             /**< real payload length */
    int8_t rssi;
    uint8_t channel;        /**< radio channel it arrived on */
} espnow_sec_rx_t;

/*
 * Handlers return ESP_OK when the frame was consumed (even if a handshake failed
 * because of it), ESP_ERR_ESPNOW_SEC_MALFORMED for a bad length/encoding,
 * ESP_ERR_INVALID_STATE for a frame that is valid but not expected now, and
 * ESP_ERR_ESPNOW_SEC_AUTH for a data frame that failed authentication.
 * node.c counts and logs them in one place.
 */
typedef esp_err_t (*espnow_sec_rx_handler_t)(espnow_sec_node_t *node, const espnow_sec_rx_t *rx);

/* node.c */
uint32_t espnow_sec_now(const espnow_sec_node_t *node);
void espnow_sec_log(const espnow_sec_node_t *node, espnow_sec_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/**
 * Hex-dump key material at DEBUG, only when CONFIG_ESPNOW_SEC_LOG_SECRETS=y (for comparing
 * with test vectors); otherwise compiled to nothing (STYLE.md example 14).
 */
void espnow_sec_log_secret(const espnow_sec_node_t *node, const char *label, const uint8_t *buf, size_t len);
void espnow_sec_emit(espnow_sec_node_t *node, const espnow_sec_event_t *ev);
void espnow_sec_emit_peer(espnow_sec_node_t *node, espnow_sec_event_id_t id,
                          const uint8_t mac[ESPNOW_SEC_ADDR_LEN], espnow_sec_fail_reason_t reason);
/**
 * Frame and send one payload. `dest` goes into the header; `mac_dst` is the radio
 * destination (unicast MAC or broadcast). Fills version, size, a fresh random magic,
 * own channel and src.
 */
esp_err_t espnow_sec_tx(espnow_sec_node_t *node, const uint8_t mac_dst[ESPNOW_SEC_ADDR_LEN],
                        uint8_t type, const uint8_t dest[ESPNOW_SEC_ADDR_LEN], bool broadcast,
                        bool group, bool security, const uint8_t *payload, size_t len);
/**
 * Install an app key in RAM: the data key is imported into PSA once and held (replacing and
 * destroying any previous one). Does not store it. ESP_ERR_NO_MEM: no free PSA key slot.
 */
esp_err_t espnow_sec_install_key(espnow_sec_node_t *node, const uint8_t key[ESPNOW_SEC_APP_KEY_LEN],
                                 const uint8_t provisioner[ESPNOW_SEC_ADDR_LEN]);
void espnow_sec_drop_key(espnow_sec_node_t *node);
/** True when a - b >= 0 in wrapping millisecond time. */
static inline bool espnow_sec_time_reached(uint32_t now, uint32_t deadline)
{
    return (int32_t)(now - deadline) >= 0;
}

/* compat_initiator.c */
void espnow_sec_ini_reset(espnow_sec_node_t *node);
esp_err_t espnow_sec_ini_provision(espnow_sec_node_t *node, uint32_t scan_ms);
esp_err_t espnow_sec_ini_on_status(espnow_sec_node_t *node, const espnow_sec_rx_t *rx);
esp_err_t espnow_sec_ini_on_security(espnow_sec_node_t *node, const espnow_sec_rx_t *rx);
uint32_t espnow_sec_ini_tick(espnow_sec_node_t *node, uint32_t now);
bool espnow_sec_ini_busy(const espnow_sec_node_t *node);
void espnow_sec_ini_wipe(espnow_sec_node_t *node);

/* compat_responder.c */
void espnow_sec_rsp_reset(espnow_sec_node_t *node);
esp_err_t espnow_sec_rsp_on_security(espnow_sec_node_t *node, const espnow_sec_rx_t *rx);
esp_err_t espnow_sec_rsp_on_group(espnow_sec_node_t *node, const espnow_sec_rx_t *rx);
/** Whether a HANDSHAKE addressed to `dest` (group flag as given) is for this responder. */
bool espnow_sec_rsp_accepts_dest(const espnow_sec_node_t *node, const espnow_sec_hdr_t *hdr);
void espnow_sec_rsp_wipe(espnow_sec_node_t *node);

/* datapath.c */
esp_err_t espnow_sec_data_on_frame(espnow_sec_node_t *node, const espnow_sec_rx_t *rx);
esp_err_t espnow_sec_data_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data,
                               size_t len);

/* ---- protocol v2 ---- */

/* datapath.c: counters, secured frames, DATA / DATA_PLAIN / SYNC */
esp_err_t espnow_sec_v2_ctr_boot(espnow_sec_node_t *node, bool keyed);
/** Take the next frame counter (reserving a block first when needed, §7.3). */
esp_err_t espnow_sec_v2_ctr_take(espnow_sec_node_t *node, uint64_t *c);
/** Build a secured frame into `out` (capacity ESPNOW_SEC_V2_FRAME_MAX) with a new counter. */
esp_err_t espnow_sec_v2_build(espnow_sec_node_t *node, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint8_t type,
                              uint16_t epoch, const espnow_sec_ccm_key_t *k, const uint8_t *pt, size_t pt_len,
                              uint8_t *out, size_t *out_len, uint64_t *ctr);
esp_err_t espnow_sec_v2_send_raw(espnow_sec_node_t *node, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                                 size_t len);
espnow_sec_drop_reason_t espnow_sec_v2_on_data(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2_on_plain(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2_on_sync(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
esp_err_t espnow_sec_v2_data_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data, size_t len);
/** Announce (broadcast SYNC) after 0..spread ms, §8.4. */
void espnow_sec_v2_announce(espnow_sec_node_t *node, uint32_t spread_ms);
/** Sync `mac` at counter `c` in T(current) (CTRL / CTRL_ACK freshness, §5.3). */
void espnow_sec_v2_sync_peer(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], uint64_t c);
/** Deferred frames, sync retries, grace expiry. Returns ms to the next deadline. */
uint32_t espnow_sec_v2_common_tick(espnow_sec_node_t *node, uint32_t now);
/** A random delay 0..j ms (§4.5: 2 bytes drawn, BE16 mod (j + 1)). */
uint32_t espnow_sec_v2_jitter(espnow_sec_node_t *node, uint32_t j);
/** Draw `len` random bytes that are not all zero (sid, scan_id, challenge; §4.5). */
void espnow_sec_v2_draw_nonzero(espnow_sec_node_t *node, uint8_t *buf, size_t len);
bool espnow_sec_bucket_take(espnow_sec_bucket_t *b, uint16_t cap, uint32_t period, uint32_t now);
/** ms until the bucket has a token again. */
uint32_t espnow_sec_bucket_wait(const espnow_sec_bucket_t *b, uint16_t cap, uint32_t period, uint32_t now);
void espnow_sec_bucket_refund(espnow_sec_bucket_t *b, uint16_t cap);
/** Activate the staged epoch (§9.3) and announce it; persists via the role's record. */
esp_err_t espnow_sec_v2_activate(espnow_sec_node_t *node);

/* v2_initiator.c */
esp_err_t espnow_sec_v2i_init(espnow_sec_node_t *node);
esp_err_t espnow_sec_v2i_provision(espnow_sec_node_t *node, uint32_t scan_ms);
esp_err_t espnow_sec_v2i_rekey(espnow_sec_node_t *node);
esp_err_t espnow_sec_v2i_remove(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN]);
bool espnow_sec_v2i_busy(const espnow_sec_node_t *node);
/** §9.2 step 3: activate the rollout's epoch now. */
void espnow_sec_v2i_rollout_finish(espnow_sec_node_t *node);
uint32_t espnow_sec_v2i_tick(espnow_sec_node_t *node, uint32_t now);
/** Save the group record (current, staged, grace, rollout flag). */
esp_err_t espnow_sec_v2i_save_grp(espnow_sec_node_t *node);
/** Any frame heard from `mac` (straggler trigger, §9.2 step 4). */
void espnow_sec_v2i_heard(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN]);
uint32_t espnow_sec_v2i_active_devices(const espnow_sec_node_t *node);
esp_err_t espnow_sec_v2i_erase(espnow_sec_node_t *node);
espnow_sec_drop_reason_t espnow_sec_v2i_on_scan_resp(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2i_on_hs2(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2i_on_hs4(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2i_on_hs_err(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2i_on_ctrl_ack(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);

/* v2_responder.c */
esp_err_t espnow_sec_v2r_init(espnow_sec_node_t *node);
uint32_t espnow_sec_v2r_tick(espnow_sec_node_t *node, uint32_t now);
/** Persist the responder record after an epoch change (activation by DATA/SYNC). */
esp_err_t espnow_sec_v2r_save(espnow_sec_node_t *node);
esp_err_t espnow_sec_v2r_erase(espnow_sec_node_t *node);
espnow_sec_drop_reason_t espnow_sec_v2r_on_scan_req(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2r_on_hs1(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2r_on_hs3(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);
espnow_sec_drop_reason_t espnow_sec_v2r_on_ctrl(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx);

#ifdef __cplusplus
}
#endif

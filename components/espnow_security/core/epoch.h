/*
 * epoch.h - group key epochs (docs/PROTOCOL.md §9): the current, staged and previous group
 * keys, each with its epoch number, secret G_E and one PSA key for k_grp(E); the replay
 * table of each accepted epoch; activation, the grace period, and key selection on receive.
 *
 * Pure bookkeeping over crypto.h; persistence is the caller's (keystore.h records).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "keysched.h"
#include "replay.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t epoch; /**< 0 = empty slot */
    uint8_t g[ESPNOW_SEC_V2_KEY_LEN];
    espnow_sec_ccm_key_t key; /**< k_grp(epoch), CCM8, one PSA key while the slot is set */
} espnow_sec_gkey_t;

typedef struct {
    espnow_sec_gkey_t cur;
    espnow_sec_gkey_t stg;
    espnow_sec_gkey_t prev;   /**< RAM only: a reboot ends the grace (§9.1) */
    uint32_t prev_t_act;      /**< when prev stopped being current */
    uint16_t grace_s;         /**< grace of prev (responder: from KEY; initiator: Kconfig) */
    espnow_sec_rp_table_t t_cur;
    espnow_sec_rp_table_t t_prev; /**< frozen */
} espnow_sec_epochs_t;

/** Which slot a received `key_epoch` selects (§9.4). */
typedef enum {
    ESPNOW_SEC_EP_NONE = 0,
    ESPNOW_SEC_EP_CUR,
    ESPNOW_SEC_EP_STG,
    ESPNOW_SEC_EP_PREV,
} espnow_sec_ep_slot_t;

/** Set an empty slot: derive k_grp(E) and import it (one PSA key). */
esp_err_t espnow_sec_ep_set(espnow_sec_gkey_t *k, uint16_t epoch, const uint8_t g[ESPNOW_SEC_V2_KEY_LEN]);
/** Destroy the PSA key and wipe the slot. */
void espnow_sec_ep_clear(espnow_sec_gkey_t *k);
/**
 * Install (epoch, g) as current (§5.3 "ACTIVATE = 1" / first key / §9.3): the old current
 * (if any) becomes previous with t_act = now and its table frozen; a staged key with
 * stg.epoch <= epoch is dropped; T(current) starts empty.
 */
esp_err_t espnow_sec_ep_install(espnow_sec_epochs_t *ep, uint16_t epoch, const uint8_t g[ESPNOW_SEC_V2_KEY_LEN],
                                uint16_t grace_s, uint32_t now);
/** Stage (epoch, g), replacing an older staged key. */
esp_err_t espnow_sec_ep_stage(espnow_sec_epochs_t *ep, uint16_t epoch, const uint8_t g[ESPNOW_SEC_V2_KEY_LEN]);
/** §9.3: staged becomes current (no-op without a staged key). */
esp_err_t espnow_sec_ep_activate(espnow_sec_epochs_t *ep, uint16_t grace_s, uint32_t now);
/** §9.4: the slot for `k`, or NONE (EPOCH drop). Expires the grace first. */
espnow_sec_ep_slot_t espnow_sec_ep_select(espnow_sec_epochs_t *ep, uint16_t k, uint32_t now);
espnow_sec_gkey_t *espnow_sec_ep_key(espnow_sec_epochs_t *ep, espnow_sec_ep_slot_t slot);
/** Wipe prev and T(prev) once the grace is over. Returns ms to the end of the grace, UINT32_MAX if none. */
uint32_t espnow_sec_ep_expire(espnow_sec_epochs_t *ep, uint32_t now);
/** Destroy every key and table. */
void espnow_sec_ep_wipe(espnow_sec_epochs_t *ep);

#ifdef __cplusplus
}
#endif

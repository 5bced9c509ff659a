/*
 * epoch.c - docs/PROTOCOL.md §9.1, §9.3, §9.4; see epoch.h.
 */
#include "epoch.h"

#include <string.h>

esp_err_t espnow_sec_ep_set(espnow_sec_gkey_t *k, uint16_t epoch, const uint8_t g[ESPNOW_SEC_V2_KEY_LEN])
{
    uint8_t aes[ESPNOW_SEC_V2_AES_LEN];
    espnow_sec_ccm_key_t key = {0};
    if (epoch == 0) {
        return ESP_ERR_INVALID_ARG;
    }
    esp_err_t err = espnow_sec_ks_grp_key(g, epoch, aes);
    if (err == ESP_OK) {
        err = espnow_sec_ks_import(&key, aes, ESPNOW_SEC_V2_TAG_GRP);
    }
    espnow_sec_memzero(aes, sizeof(aes));
    if (err != ESP_OK) {
        return err; /* slot unchanged */
    }
    espnow_sec_ep_clear(k);
    k->epoch = epoch;
    memcpy(k->g, g, ESPNOW_SEC_V2_KEY_LEN);
    k->key = key;
    return ESP_OK;
}

void espnow_sec_ep_clear(espnow_sec_gkey_t *k)
{
    espnow_sec_crypto_ccm_key_destroy(&k->key);
    espnow_sec_memzero(k, sizeof(*k));
}

/* cur -> prev (frozen table), empty T(cur). */
static void retire_current(espnow_sec_epochs_t *ep, uint16_t grace_s, uint32_t now)
{
    espnow_sec_ep_clear(&ep->prev);
    if (ep->cur.epoch != 0) {
        ep->prev = ep->cur; /* moves the PSA key */
        memset(&ep->cur, 0, sizeof(ep->cur));
        ep->t_prev = ep->t_cur;
        ep->t_prev.frozen = true;
        ep->prev_t_act = now;
        ep->grace_s = grace_s;
    } else {
        espnow_sec_rp_reset(&ep->t_prev);
    }
    espnow_sec_rp_reset(&ep->t_cur);
}

esp_err_t espnow_sec_ep_install(espnow_sec_epochs_t *ep, uint16_t epoch, const uint8_t g[ESPNOW_SEC_V2_KEY_LEN],
                                uint16_t grace_s, uint32_t now)
{
    espnow_sec_gkey_t fresh = {0};
    esp_err_t err = espnow_sec_ep_set(&fresh, epoch, g);
    if (err != ESP_OK) {
        return err;
    }
    retire_current(ep, grace_s, now);
    ep->cur = fresh;
    if (ep->stg.epoch != 0 && ep->stg.epoch <= epoch) {
        espnow_sec_ep_clear(&ep->stg);
    }
    return ESP_OK;
}

esp_err_t espnow_sec_ep_stage(espnow_sec_epochs_t *ep, uint16_t epoch, const uint8_t g[ESPNOW_SEC_V2_KEY_LEN])
{
    return espnow_sec_ep_set(&ep->stg, epoch, g);
}

esp_err_t espnow_sec_ep_activate(espnow_sec_epochs_t *ep, uint16_t grace_s, uint32_t now)
{
    if (ep->stg.epoch == 0) {
        return ESP_ERR_INVALID_STATE;
    }
    retire_current(ep, grace_s, now);
    ep->cur = ep->stg;
    memset(&ep->stg, 0, sizeof(ep->stg));
    return ESP_OK;
}

uint32_t espnow_sec_ep_expire(espnow_sec_epochs_t *ep, uint32_t now)
{
    if (ep->prev.epoch == 0) {
        return UINT32_MAX;
    }
    uint32_t grace_ms = (uint32_t)ep->grace_s * 1000u;
    uint32_t age = now - ep->prev_t_act;
    if (age >= grace_ms) {
        espnow_sec_ep_clear(&ep->prev);
        espnow_sec_rp_reset(&ep->t_prev);
        return UINT32_MAX;
    }
    return grace_ms - age;
}

espnow_sec_ep_slot_t espnow_sec_ep_select(espnow_sec_epochs_t *ep, uint16_t k, uint32_t now)
{
    (void)espnow_sec_ep_expire(ep, now);
    if (k == 0) {
        return ESPNOW_SEC_EP_NONE;
    }
    if (k == ep->cur.epoch) {
        return ESPNOW_SEC_EP_CUR;
    }
    if (k == ep->stg.epoch) {
        return ESPNOW_SEC_EP_STG;
    }
    if (k == ep->prev.epoch) {
        return ESPNOW_SEC_EP_PREV;
    }
    return ESPNOW_SEC_EP_NONE;
}

espnow_sec_gkey_t *espnow_sec_ep_key(espnow_sec_epochs_t *ep, espnow_sec_ep_slot_t slot)
{
    switch (slot) {
    case ESPNOW_SEC_EP_CUR:
        return &ep->cur;
    case ESPNOW_SEC_EP_STG:
        return &ep->stg;
    case ESPNOW_SEC_EP_PREV:
        return &ep->prev;
    default:
        return NULL;
    }
}

void espnow_sec_ep_wipe(espnow_sec_epochs_t *ep)
{
    espnow_sec_ep_clear(&ep->cur);
    espnow_sec_ep_clear(&ep->stg);
    espnow_sec_ep_clear(&ep->prev);
    espnow_sec_memzero(ep, sizeof(*ep));
}

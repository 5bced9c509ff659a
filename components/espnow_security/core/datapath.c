/*
 * datapath.c - protect / unprotect compat data frames (datapath.h), and the node's
 * data send and receive policy.
 */
#include "datapath.h"

#include <string.h>

#include "node_priv.h"

esp_err_t espnow_sec_data_key_import(espnow_sec_ccm_key_t *k, const uint8_t app_key[ESPNOW_SEC_APP_KEY_LEN])
{
    /* §2.6: the AES-128 key is app_key[0..16) used directly; bytes 16..31 unused. */
    return espnow_sec_crypto_ccm_key_import(k, app_key, 16, ESPNOW_SEC_DATA_TAG_LEN);
}

esp_err_t espnow_sec_data_seal(const espnow_sec_ccm_key_t *k, const uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN],
                               const uint8_t *pt, size_t len, uint8_t *out)
{
    if (len > ESPNOW_SEC_MAX_PAYLOAD_COMPAT) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    /* C || T from CCM, then the nonce appended after the tag (§2.7). No AAD. */
    esp_err_t err = espnow_sec_crypto_ccm_seal(k, nonce, ESPNOW_SEC_DATA_NONCE_LEN, NULL, 0, pt, len, out);
    if (err == ESP_OK) {
        memcpy(&out[len + ESPNOW_SEC_DATA_TAG_LEN], nonce, ESPNOW_SEC_DATA_NONCE_LEN);
    }
    return err;
}

esp_err_t espnow_sec_data_open(const espnow_sec_ccm_key_t *k, const uint8_t *payload, size_t len,
                               uint8_t *pt, size_t *pt_len)
{
    if (payload == NULL || len < ESPNOW_SEC_DATA_OVERHEAD || len > ESPNOW_SEC_PAYLOAD_MAX) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    size_t n = len - ESPNOW_SEC_DATA_OVERHEAD;
    const uint8_t *nonce = &payload[len - ESPNOW_SEC_DATA_NONCE_LEN];
    esp_err_t err = espnow_sec_crypto_ccm_open(k, nonce, ESPNOW_SEC_DATA_NONCE_LEN, NULL, 0, payload,
                                               n + ESPNOW_SEC_DATA_TAG_LEN, pt);
    if (err == ESP_OK) {
        *pt_len = n;
    } else if (err != ESP_ERR_ESPNOW_SEC_AUTH) {
        err = ESP_ERR_ESPNOW_SEC_AUTH; /* any failure to authenticate is "not authentic" */
    }
    return err;
}

esp_err_t espnow_sec_data_frame_build(const espnow_sec_hdr_t *hdr, const espnow_sec_ccm_key_t *k,
                                      const uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN],
                                      const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                                      size_t *out_len)
{
    if (hdr == NULL || out == NULL || out_len == NULL || (pt == NULL && len != 0) ||
        (k != NULL && nonce == NULL)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (len > ESPNOW_SEC_MAX_PAYLOAD_COMPAT) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    size_t plen = len + (k != NULL ? ESPNOW_SEC_DATA_OVERHEAD : 0);
    if (cap < ESPNOW_SEC_HDR_LEN + plen) {
        return ESP_ERR_INVALID_SIZE;
    }
    espnow_sec_hdr_t h = *hdr;
    h.type = ESPNOW_SEC_T_DATA;
    h.version = ESPNOW_SEC_WIRE_VERSION;
    h.security = k != NULL;
    h.size = (uint8_t)(plen & 0xFF); /* (n + 12) & 0xFF, §2.7 */
    espnow_sec_hdr_encode(&h, out);
    esp_err_t err = ESP_OK;
    if (k != NULL) {
        err = espnow_sec_data_seal(k, nonce, pt, len, &out[ESPNOW_SEC_HDR_LEN]);
    } else if (len != 0) {
        memcpy(&out[ESPNOW_SEC_HDR_LEN], pt, len);
    }
    if (err != ESP_OK) {
        return err;
    }
    *out_len = ESPNOW_SEC_HDR_LEN + plen;
    return ESP_OK;
}

esp_err_t espnow_sec_data_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data,
                               size_t len)
{
    if (data == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    /* One limit whatever the key state, so an app does not see it change at "secured". */
    if (len > ESPNOW_SEC_MAX_PAYLOAD_COMPAT) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    bool bcast = dst == NULL || espnow_sec_mac_is_broadcast(dst);
    const uint8_t *to = bcast ? espnow_sec_broadcast_mac : dst;
    if (!node->has_key) {
        return espnow_sec_tx(node, to, ESPNOW_SEC_T_DATA, to, bcast, false, false, data, len);
    }
    uint8_t payload[ESPNOW_SEC_PAYLOAD_MAX];
    uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN];
    node->env->random(node->env->ctx, nonce, sizeof(nonce)); /* fresh per frame (bug B6) */
    esp_err_t err = espnow_sec_data_seal(&node->data_key, nonce, data, len, payload);
    if (err == ESP_OK) {
        err = espnow_sec_tx(node, to, ESPNOW_SEC_T_DATA, to, bcast, false, true, payload,
                            len + ESPNOW_SEC_DATA_OVERHEAD);
    }
    espnow_sec_memzero(payload, sizeof(payload));
    return err;
}

esp_err_t espnow_sec_data_on_frame(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    espnow_sec_rx_info_t info;
    memcpy(info.src, rx->hdr.src, ESPNOW_SEC_ADDR_LEN);
    memcpy(info.dst, rx->hdr.dest, ESPNOW_SEC_ADDR_LEN);
    info.channel = rx->channel;
    info.rssi = rx->rssi;
    info.broadcast = rx->hdr.broadcast || espnow_sec_mac_is_broadcast(rx->hdr.dest);

    if (!rx->hdr.security) {
        node->stats.rx_plaintext++;
        if (node->has_key) {
            /* A secured network never hands cleartext to the app as if authentic (bug B2). */
            node->stats.rx_plaintext_dropped++;
            espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "plaintext data dropped: this node is secured");
            return ESP_OK;
        }
        info.protection = ESPNOW_SEC_RX_PLAINTEXT;
        if (node->env->deliver != NULL) {
            node->env->deliver(node->env->ctx, &info, rx->payload, rx->len);
        }
        return ESP_OK;
    }
    if (rx->len < ESPNOW_SEC_DATA_OVERHEAD) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (!node->has_key) {
        return ESP_ERR_ESPNOW_SEC_AUTH; /* cannot be verified without a key */
    }
    uint8_t pt[ESPNOW_SEC_PAYLOAD_MAX];
    size_t n = 0;
    esp_err_t err = espnow_sec_data_open(&node->data_key, rx->payload, rx->len, pt, &n);
    if (err == ESP_OK) {
        info.protection = ESPNOW_SEC_RX_ENCRYPTED;
        if (node->env->deliver != NULL) {
            node->env->deliver(node->env->ctx, &info, pt, n);
        }
    }
    espnow_sec_memzero(pt, sizeof(pt));
    return err;
}

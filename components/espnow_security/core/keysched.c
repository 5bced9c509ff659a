/*
 * keysched.c - docs/PROTOCOL.md §4.3 (key schedule) and §2.5 (nonce, AAD), as written.
 */
#include "keysched.h"

#include <string.h>

#define LABEL(l) (const uint8_t *)(l), (sizeof(l) - 1)

esp_err_t espnow_sec_ks_pop_hash(const uint8_t *pop, size_t pop_len, uint8_t out[ESPNOW_SEC_V2_KEY_LEN])
{
    uint8_t buf[sizeof(ESPNOW_SEC_L_POP) - 1 + 64];
    if ((pop == NULL && pop_len != 0) || pop_len > 64) {
        return ESP_ERR_INVALID_ARG;
    }
    memcpy(buf, ESPNOW_SEC_L_POP, sizeof(ESPNOW_SEC_L_POP) - 1);
    if (pop_len != 0) {
        memcpy(&buf[sizeof(ESPNOW_SEC_L_POP) - 1], pop, pop_len);
    }
    esp_err_t err = espnow_sec_crypto_sha256(buf, sizeof(ESPNOW_SEC_L_POP) - 1 + pop_len, out);
    espnow_sec_memzero(buf, sizeof(buf));
    return err;
}

esp_err_t espnow_sec_ks_th2(const uint8_t mac_i[ESPNOW_SEC_ADDR_LEN], const uint8_t mac_r[ESPNOW_SEC_ADDR_LEN],
                            const uint8_t hs1[ESPNOW_SEC_V2_HS1_LEN], const uint8_t hs2[ESPNOW_SEC_V2_HS_LEN],
                            uint8_t out[ESPNOW_SEC_SHA256_LEN])
{
    uint8_t buf[sizeof(ESPNOW_SEC_L_TH) - 1 + 2 * ESPNOW_SEC_ADDR_LEN + ESPNOW_SEC_V2_HS1_LEN + ESPNOW_SEC_V2_HS_LEN];
    size_t n = 0;
    memcpy(&buf[n], ESPNOW_SEC_L_TH, sizeof(ESPNOW_SEC_L_TH) - 1);
    n += sizeof(ESPNOW_SEC_L_TH) - 1;
    memcpy(&buf[n], mac_i, ESPNOW_SEC_ADDR_LEN);
    n += ESPNOW_SEC_ADDR_LEN;
    memcpy(&buf[n], mac_r, ESPNOW_SEC_ADDR_LEN);
    n += ESPNOW_SEC_ADDR_LEN;
    memcpy(&buf[n], hs1, ESPNOW_SEC_V2_HS1_LEN);
    n += ESPNOW_SEC_V2_HS1_LEN;
    memcpy(&buf[n], hs2, ESPNOW_SEC_V2_HS_LEN);
    n += ESPNOW_SEC_V2_HS_LEN;
    return espnow_sec_crypto_sha256(buf, n, out);
}

esp_err_t espnow_sec_ks_th3(const uint8_t th2[ESPNOW_SEC_SHA256_LEN], const uint8_t hs3[ESPNOW_SEC_V2_HS_LEN],
                            uint8_t out[ESPNOW_SEC_SHA256_LEN])
{
    uint8_t buf[ESPNOW_SEC_SHA256_LEN + ESPNOW_SEC_V2_HS_LEN];
    memcpy(buf, th2, ESPNOW_SEC_SHA256_LEN);
    memcpy(&buf[ESPNOW_SEC_SHA256_LEN], hs3, ESPNOW_SEC_V2_HS_LEN);
    return espnow_sec_crypto_sha256(buf, sizeof(buf), out);
}

esp_err_t espnow_sec_ks_hs_keys(const uint8_t th2[ESPNOW_SEC_SHA256_LEN], const uint8_t dh[ESPNOW_SEC_X25519_LEN],
                                const uint8_t pop_hash[ESPNOW_SEC_V2_KEY_LEN], espnow_sec_hs_keys_t *out)
{
    uint8_t ikm[ESPNOW_SEC_X25519_LEN + ESPNOW_SEC_V2_KEY_LEN];
    memcpy(ikm, dh, ESPNOW_SEC_X25519_LEN);
    memcpy(&ikm[ESPNOW_SEC_X25519_LEN], pop_hash, ESPNOW_SEC_V2_KEY_LEN);
    esp_err_t err = espnow_sec_crypto_hkdf_sha256(th2, ESPNOW_SEC_SHA256_LEN, ikm, sizeof(ikm),
                                                  LABEL(ESPNOW_SEC_L_CONF_I), out->k_conf_i, ESPNOW_SEC_V2_KEY_LEN);
    if (err == ESP_OK) {
        err = espnow_sec_crypto_hkdf_sha256(th2, ESPNOW_SEC_SHA256_LEN, ikm, sizeof(ikm),
                                            LABEL(ESPNOW_SEC_L_CONF_R), out->k_conf_r, ESPNOW_SEC_V2_KEY_LEN);
    }
    if (err == ESP_OK) {
        err = espnow_sec_crypto_hkdf_sha256(th2, ESPNOW_SEC_SHA256_LEN, ikm, sizeof(ikm),
                                            LABEL(ESPNOW_SEC_L_DEV), out->k_dev, ESPNOW_SEC_V2_KEY_LEN);
    }
    espnow_sec_memzero(ikm, sizeof(ikm));
    if (err != ESP_OK) {
        espnow_sec_memzero(out, sizeof(*out));
    }
    return err;
}

esp_err_t espnow_sec_ks_conf(const uint8_t k_conf[ESPNOW_SEC_V2_KEY_LEN], const uint8_t th[ESPNOW_SEC_SHA256_LEN],
                             uint8_t out[ESPNOW_SEC_SHA256_LEN])
{
    return espnow_sec_crypto_hmac_sha256(k_conf, ESPNOW_SEC_V2_KEY_LEN, th, ESPNOW_SEC_SHA256_LEN, out);
}

esp_err_t espnow_sec_ks_conf_verify(const uint8_t k_conf[ESPNOW_SEC_V2_KEY_LEN],
                                    const uint8_t th[ESPNOW_SEC_SHA256_LEN],
                                    const uint8_t conf[ESPNOW_SEC_SHA256_LEN])
{
    return espnow_sec_crypto_hmac_sha256_verify(k_conf, ESPNOW_SEC_V2_KEY_LEN, th, ESPNOW_SEC_SHA256_LEN, conf,
                                                ESPNOW_SEC_SHA256_LEN);
}

esp_err_t espnow_sec_ks_ctl_key(const uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN], const uint8_t mac_i[ESPNOW_SEC_ADDR_LEN],
                                const uint8_t mac_r[ESPNOW_SEC_ADDR_LEN], uint8_t out[ESPNOW_SEC_V2_AES_LEN])
{
    uint8_t info[sizeof(ESPNOW_SEC_L_CTL) - 1 + 2 * ESPNOW_SEC_ADDR_LEN];
    memcpy(info, ESPNOW_SEC_L_CTL, sizeof(ESPNOW_SEC_L_CTL) - 1);
    memcpy(&info[sizeof(ESPNOW_SEC_L_CTL) - 1], mac_i, ESPNOW_SEC_ADDR_LEN);
    memcpy(&info[sizeof(ESPNOW_SEC_L_CTL) - 1 + ESPNOW_SEC_ADDR_LEN], mac_r, ESPNOW_SEC_ADDR_LEN);
    return espnow_sec_crypto_hkdf_sha256((const uint8_t *)ESPNOW_SEC_L_PAIR, sizeof(ESPNOW_SEC_L_PAIR) - 1, k_dev,
                                         ESPNOW_SEC_V2_KEY_LEN, info, sizeof(info), out, ESPNOW_SEC_V2_AES_LEN);
}

esp_err_t espnow_sec_ks_grp_key(const uint8_t g[ESPNOW_SEC_V2_KEY_LEN], uint16_t epoch,
                                uint8_t out[ESPNOW_SEC_V2_AES_LEN])
{
    uint8_t info[sizeof(ESPNOW_SEC_L_DATA) - 1 + 2];
    memcpy(info, ESPNOW_SEC_L_DATA, sizeof(ESPNOW_SEC_L_DATA) - 1);
    espnow_sec_put_be16(&info[sizeof(ESPNOW_SEC_L_DATA) - 1], epoch);
    return espnow_sec_crypto_hkdf_sha256((const uint8_t *)ESPNOW_SEC_L_GROUP, sizeof(ESPNOW_SEC_L_GROUP) - 1, g,
                                         ESPNOW_SEC_V2_KEY_LEN, info, sizeof(info), out, ESPNOW_SEC_V2_AES_LEN);
}

esp_err_t espnow_sec_ks_key_check(const uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN], uint16_t epoch,
                                  const uint8_t g[ESPNOW_SEC_V2_KEY_LEN], uint8_t out[ESPNOW_SEC_V2_CHECK_LEN])
{
    uint8_t msg[sizeof(ESPNOW_SEC_L_CHECK) - 1 + 2 + ESPNOW_SEC_V2_KEY_LEN];
    uint8_t mac[ESPNOW_SEC_SHA256_LEN];
    size_t n = sizeof(ESPNOW_SEC_L_CHECK) - 1;
    memcpy(msg, ESPNOW_SEC_L_CHECK, n);
    espnow_sec_put_be16(&msg[n], epoch);
    memcpy(&msg[n + 2], g, ESPNOW_SEC_V2_KEY_LEN);
    esp_err_t err = espnow_sec_crypto_hmac_sha256(k_dev, ESPNOW_SEC_V2_KEY_LEN, msg, sizeof(msg), mac);
    memcpy(out, mac, ESPNOW_SEC_V2_CHECK_LEN);
    espnow_sec_memzero(msg, sizeof(msg));
    espnow_sec_memzero(mac, sizeof(mac));
    return err;
}

esp_err_t espnow_sec_ks_pair_id(const uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN], uint8_t out[ESPNOW_SEC_V2_PAIR_ID_LEN])
{
    uint8_t mac[ESPNOW_SEC_SHA256_LEN];
    esp_err_t err = espnow_sec_crypto_hmac_sha256(k_dev, ESPNOW_SEC_V2_KEY_LEN, LABEL(ESPNOW_SEC_L_PAIR_ID), mac);
    memcpy(out, mac, ESPNOW_SEC_V2_PAIR_ID_LEN);
    espnow_sec_memzero(mac, sizeof(mac));
    return err;
}

void espnow_sec_ks_nonce(const uint8_t src[ESPNOW_SEC_ADDR_LEN], const uint8_t hdr[ESPNOW_SEC_V2_SEC_HDR_LEN],
                         uint8_t out[ESPNOW_SEC_V2_NONCE_LEN])
{
    memcpy(out, src, ESPNOW_SEC_ADDR_LEN);
    memcpy(&out[6], &hdr[6], 6);
    out[12] = hdr[2];
}

void espnow_sec_ks_aad(const uint8_t hdr[ESPNOW_SEC_V2_SEC_HDR_LEN], const uint8_t dst[ESPNOW_SEC_ADDR_LEN],
                       const uint8_t src[ESPNOW_SEC_ADDR_LEN], uint8_t out[ESPNOW_SEC_V2_AAD_LEN])
{
    memcpy(out, hdr, ESPNOW_SEC_V2_SEC_HDR_LEN);
    memcpy(&out[12], dst, ESPNOW_SEC_ADDR_LEN);
    memcpy(&out[18], src, ESPNOW_SEC_ADDR_LEN);
}

esp_err_t espnow_sec_ks_seal(const espnow_sec_ccm_key_t *k, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                             const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint8_t *frame, const uint8_t *pt,
                             size_t pt_len, size_t *out_len)
{
    uint8_t nonce[ESPNOW_SEC_V2_NONCE_LEN];
    uint8_t aad[ESPNOW_SEC_V2_AAD_LEN];
    espnow_sec_ks_nonce(src, frame, nonce);
    espnow_sec_ks_aad(frame, dst, src, aad);
    esp_err_t err = espnow_sec_crypto_ccm_seal(k, nonce, sizeof(nonce), aad, sizeof(aad), pt, pt_len,
                                               &frame[ESPNOW_SEC_V2_SEC_HDR_LEN]);
    *out_len = err == ESP_OK ? ESPNOW_SEC_V2_SEC_HDR_LEN + pt_len + k->tag_len : 0;
    return err;
}

esp_err_t espnow_sec_ks_open(const espnow_sec_ccm_key_t *k, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                             const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame, size_t len,
                             uint8_t *pt)
{
    if (len < ESPNOW_SEC_V2_SEC_HDR_LEN + (size_t)k->tag_len) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    uint8_t nonce[ESPNOW_SEC_V2_NONCE_LEN];
    uint8_t aad[ESPNOW_SEC_V2_AAD_LEN];
    espnow_sec_ks_nonce(src, frame, nonce);
    espnow_sec_ks_aad(frame, dst, src, aad);
    return espnow_sec_crypto_ccm_open(k, nonce, sizeof(nonce), aad, sizeof(aad), &frame[ESPNOW_SEC_V2_SEC_HDR_LEN],
                                      len - ESPNOW_SEC_V2_SEC_HDR_LEN, pt);
}

esp_err_t espnow_sec_ks_import(espnow_sec_ccm_key_t *k, const uint8_t key[ESPNOW_SEC_V2_AES_LEN], size_t tag_len)
{
    return espnow_sec_crypto_ccm_key_import(k, key, ESPNOW_SEC_V2_AES_LEN, tag_len);
}

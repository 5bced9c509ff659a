/*
 * keystore.c - encode, check and persist the app key record (layout in keystore.h and
 * docs/keystore.md).
 */
#include "keystore.h"

#include <string.h>

#include "crypto.h"

uint32_t espnow_sec_crc32(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

void espnow_sec_keyrec_encode(const espnow_sec_key_record_t *r, uint8_t out[ESPNOW_SEC_KEY_RECORD_LEN])
{
    memcpy(out, ESPNOW_SEC_KEY_RECORD_MAGIC, ESPNOW_SEC_KEY_RECORD_MAGIC_LEN);
    out[ESPNOW_SEC_KEY_RECORD_OFF_VERSION] = ESPNOW_SEC_KEY_RECORD_VERSION;
    memcpy(&out[ESPNOW_SEC_KEY_RECORD_OFF_KEY], r->key, ESPNOW_SEC_APP_KEY_LEN);
    memcpy(&out[ESPNOW_SEC_KEY_RECORD_OFF_MAC], r->provisioner, ESPNOW_SEC_ADDR_LEN);
    uint32_t crc = espnow_sec_crc32(out, ESPNOW_SEC_KEY_RECORD_OFF_CRC);
    for (size_t i = 0; i < 4; i++) { /* little-endian */
        out[ESPNOW_SEC_KEY_RECORD_OFF_CRC + i] = (uint8_t)(crc >> (8 * i));
    }
}

esp_err_t espnow_sec_keyrec_decode(const uint8_t *buf, size_t len, espnow_sec_key_record_t *r)
{
    if (buf == NULL || r == NULL || len != ESPNOW_SEC_KEY_RECORD_LEN ||
        memcmp(buf, ESPNOW_SEC_KEY_RECORD_MAGIC, ESPNOW_SEC_KEY_RECORD_MAGIC_LEN) != 0 ||
        buf[ESPNOW_SEC_KEY_RECORD_OFF_VERSION] != ESPNOW_SEC_KEY_RECORD_VERSION) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    uint32_t crc = 0;
    for (size_t i = 0; i < 4; i++) {
        crc |= (uint32_t)buf[ESPNOW_SEC_KEY_RECORD_OFF_CRC + i] << (8 * i);
    }
    if (crc != espnow_sec_crc32(buf, ESPNOW_SEC_KEY_RECORD_OFF_CRC)) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    memcpy(r->key, &buf[ESPNOW_SEC_KEY_RECORD_OFF_KEY], ESPNOW_SEC_APP_KEY_LEN);
    memcpy(r->provisioner, &buf[ESPNOW_SEC_KEY_RECORD_OFF_MAC], ESPNOW_SEC_ADDR_LEN);
    return ESP_OK;
}

esp_err_t espnow_sec_keystore_load(const espnow_sec_env_t *env, espnow_sec_key_record_t *r)
{
    /* One byte of slack so an over-long record is seen as such, not truncated. */
    uint8_t buf[ESPNOW_SEC_KEY_RECORD_LEN + 1];
    size_t len = 0;
    esp_err_t err = env->store_load(env->ctx, ESPNOW_SEC_KEY_RECORD_NAME, buf, sizeof(buf), &len);
    if (err == ESP_OK) {
        err = len <= sizeof(buf) ? espnow_sec_keyrec_decode(buf, len, r)
                                 : ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    } else if (err == ESP_ERR_INVALID_SIZE) {
        err = ESP_ERR_ESPNOW_SEC_STORE_CORRUPT; /* bigger than any valid record */
    }
    espnow_sec_memzero(buf, sizeof(buf));
    return err;
}

esp_err_t espnow_sec_keystore_save(const espnow_sec_env_t *env, const espnow_sec_key_record_t *r)
{
    uint8_t buf[ESPNOW_SEC_KEY_RECORD_LEN];
    espnow_sec_keyrec_encode(r, buf);
    esp_err_t err = env->store_save(env->ctx, ESPNOW_SEC_KEY_RECORD_NAME, buf, sizeof(buf));
    espnow_sec_memzero(buf, sizeof(buf));
    return err;
}

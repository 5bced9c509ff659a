/*
 * keystore.c - encode, check and persist the app key record (layout in keystore.h).
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
    out[0] = ESPNOW_SEC_KEY_RECORD_MAGIC;
    out[1] = ESPNOW_SEC_KEY_RECORD_VERSION;
    memcpy(&out[2], r->key, ESPNOW_SEC_APP_KEY_LEN);
    memcpy(&out[34], r->provisioner, ESPNOW_SEC_ADDR_LEN);
    uint32_t crc = espnow_sec_crc32(out, 40);
    out[40] = (uint8_t)crc;
    out[41] = (uint8_t)(crc >> 8);
    out[42] = (uint8_t)(crc >> 16);
    out[43] = (uint8_t)(crc >> 24);
}

esp_err_t espnow_sec_keyrec_decode(const uint8_t *buf, size_t len, espnow_sec_key_record_t *r)
{
    if (buf == NULL || len != ESPNOW_SEC_KEY_RECORD_LEN || buf[0] != ESPNOW_SEC_KEY_RECORD_MAGIC ||
        buf[1] != ESPNOW_SEC_KEY_RECORD_VERSION) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    uint32_t crc = (uint32_t)buf[40] | ((uint32_t)buf[41] << 8) | ((uint32_t)buf[42] << 16) |
                   ((uint32_t)buf[43] << 24);
    if (crc != espnow_sec_crc32(buf, 40)) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    memcpy(r->key, &buf[2], ESPNOW_SEC_APP_KEY_LEN);
    memcpy(r->provisioner, &buf[34], ESPNOW_SEC_ADDR_LEN);
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

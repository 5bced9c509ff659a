/*
 * keystore.h - the persisted app key record.
 *
 * One record named "app_key" (env->store_*), 44 bytes:
 *   [0]      0x45 ('E') record magic
 *   [1]      0x01 record version
 *   [2..34)  app key (32 bytes)
 *   [34..40) MAC of the initiator that delivered the key (an initiator stores its own)
 *   [40..44) CRC-32 (IEEE 802.3, reflected, as zlib) of bytes [0..40), little-endian
 * A record of another length, magic, version or CRC is reported as
 * ESP_ERR_ESPNOW_SEC_STORE_CORRUPT and never modified by the core.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "espnow_sec.h"

#define ESPNOW_SEC_KEY_RECORD_NAME "app_key"
#define ESPNOW_SEC_KEY_RECORD_LEN 44
#define ESPNOW_SEC_KEY_RECORD_MAGIC 0x45
#define ESPNOW_SEC_KEY_RECORD_VERSION 0x01

typedef struct {
    uint8_t key[ESPNOW_SEC_APP_KEY_LEN];
    uint8_t provisioner[ESPNOW_SEC_ADDR_LEN];
} espnow_sec_key_record_t;

uint32_t espnow_sec_crc32(const uint8_t *p, size_t len);
void espnow_sec_keyrec_encode(const espnow_sec_key_record_t *r, uint8_t out[ESPNOW_SEC_KEY_RECORD_LEN]);
esp_err_t espnow_sec_keyrec_decode(const uint8_t *buf, size_t len, espnow_sec_key_record_t *r);

/** ESP_OK, ESP_ERR_NOT_FOUND, ESP_ERR_ESPNOW_SEC_STORE_CORRUPT or the store's error. */
esp_err_t espnow_sec_keystore_load(const espnow_sec_env_t *env, espnow_sec_key_record_t *r);
esp_err_t espnow_sec_keystore_save(const espnow_sec_env_t *env, const espnow_sec_key_record_t *r);

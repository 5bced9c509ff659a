/*
 * keystore.h - the persisted app key record (docs/keystore.md, the one format shared with
 * the Python reference espnow_sec/protocol/keystore.py and `keygen appkey --nvs-csv`).
 *
 * One record named "app_key" (env->store_*), 47 bytes:
 *   [0..4)   magic, ASCII "ESK1"
 *   [4]      record version, 0x01
 *   [5..37)  app key (32 bytes)
 *   [37..43) MAC of the initiator that delivered the key (an initiator stores its own;
 *            a key preloaded with `keygen appkey` has zeros)
 *   [43..47) CRC-32/ISO-HDLC (zlib, esp_rom_crc32_le(0, ..)) of bytes [0..43), little-endian
 * A record of another length, magic, version or CRC is reported as
 * ESP_ERR_ESPNOW_SEC_STORE_CORRUPT and never modified by the core.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "espnow_sec.h"

#define ESPNOW_SEC_KEY_RECORD_NAME "app_key"
#define ESPNOW_SEC_KEY_RECORD_MAGIC "ESK1"
#define ESPNOW_SEC_KEY_RECORD_MAGIC_LEN 4
#define ESPNOW_SEC_KEY_RECORD_VERSION 0x01
/* Field offsets (docs/keystore.md "Record layout"). */
#define ESPNOW_SEC_KEY_RECORD_OFF_VERSION ESPNOW_SEC_KEY_RECORD_MAGIC_LEN
#define ESPNOW_SEC_KEY_RECORD_OFF_KEY (ESPNOW_SEC_KEY_RECORD_OFF_VERSION + 1)
#define ESPNOW_SEC_KEY_RECORD_OFF_MAC (ESPNOW_SEC_KEY_RECORD_OFF_KEY + ESPNOW_SEC_APP_KEY_LEN)
#define ESPNOW_SEC_KEY_RECORD_OFF_CRC (ESPNOW_SEC_KEY_RECORD_OFF_MAC + ESPNOW_SEC_ADDR_LEN)
#define ESPNOW_SEC_KEY_RECORD_LEN (ESPNOW_SEC_KEY_RECORD_OFF_CRC + 4)

_Static_assert(ESPNOW_SEC_KEY_RECORD_LEN == 47, "docs/keystore.md: 47-byte record");
_Static_assert(sizeof(ESPNOW_SEC_KEY_RECORD_MAGIC) == ESPNOW_SEC_KEY_RECORD_MAGIC_LEN + 1, "magic");

typedef struct {
    uint8_t key[ESPNOW_SEC_APP_KEY_LEN];
    uint8_t provisioner[ESPNOW_SEC_ADDR_LEN];
} espnow_sec_key_record_t;

/** CRC-32/ISO-HDLC (zlib): check value crc32("123456789") == 0xcbf43926. */
uint32_t espnow_sec_crc32(const uint8_t *p, size_t len);
void espnow_sec_keyrec_encode(const espnow_sec_key_record_t *r, uint8_t out[ESPNOW_SEC_KEY_RECORD_LEN]);
esp_err_t espnow_sec_keyrec_decode(const uint8_t *buf, size_t len, espnow_sec_key_record_t *r);

/** ESP_OK, ESP_ERR_NOT_FOUND, ESP_ERR_ESPNOW_SEC_STORE_CORRUPT or the store's error. */
esp_err_t espnow_sec_keystore_load(const espnow_sec_env_t *env, espnow_sec_key_record_t *r);
esp_err_t espnow_sec_keystore_save(const espnow_sec_env_t *env, const espnow_sec_key_record_t *r);

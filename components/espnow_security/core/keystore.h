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

/* ==== protocol v2 records (docs/PROTOCOL.md §12) ====
 * byte 0 record magic, byte 1 record version (1), CRC-32 (zlib) of all preceding bytes as
 * the last 4 bytes little-endian; other multi-byte fields big-endian. A bad length, magic,
 * version or CRC is ESP_ERR_ESPNOW_SEC_STORE_CORRUPT and the record is left untouched. */

#define ESPNOW_SEC_V2_REC_VERSION 1
#define ESPNOW_SEC_V2_REC_CTR "v2_ctr"
#define ESPNOW_SEC_V2_REC_GRP "v2_grp"
#define ESPNOW_SEC_V2_REC_RESP "v2_resp"
#define ESPNOW_SEC_V2_REC_DEV_FMT "v2_dev%02u"
#define ESPNOW_SEC_V2_CTR_LEN 12
#define ESPNOW_SEC_V2_GRP_LEN 77
#define ESPNOW_SEC_V2_RESP_LEN 120
#define ESPNOW_SEC_V2_DEV_LEN 81

typedef struct {
    uint16_t epoch;  /**< 0 = none */
    uint8_t g[32];
} espnow_sec_v2_epoch_rec_t;

typedef struct {
    espnow_sec_v2_epoch_rec_t cur, stg;
    uint16_t grace_s;
    uint8_t rollout;  /**< a re-key (§9.2) was running */
} espnow_sec_v2_grp_rec_t;

typedef struct {
    uint8_t mac_i[ESPNOW_SEC_ADDR_LEN];
    uint8_t k_dev[32];
    uint64_t ctl_floor;
    espnow_sec_v2_epoch_rec_t cur, stg;
    uint16_t grace_s;
} espnow_sec_v2_resp_rec_t;

typedef enum {
    ESPNOW_SEC_DEV_FREE = 0,
    ESPNOW_SEC_DEV_PENDING_KEY = 1,
    ESPNOW_SEC_DEV_ACTIVE = 2,
    ESPNOW_SEC_DEV_REMOVING = 3,
} espnow_sec_dev_state_t;

typedef struct {
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t k_dev[32];
    uint8_t k_dev_pending[32]; /**< zeros = none */
    uint8_t state;             /**< espnow_sec_dev_state_t */
    uint16_t acked_epoch;
    uint16_t staged_acked;
} espnow_sec_v2_dev_rec_t;

void espnow_sec_v2_ctr_encode(uint64_t r, uint8_t out[ESPNOW_SEC_V2_CTR_LEN]);
esp_err_t espnow_sec_v2_ctr_decode(const uint8_t *buf, size_t len, uint64_t *r);
void espnow_sec_v2_grp_encode(const espnow_sec_v2_grp_rec_t *g, uint8_t out[ESPNOW_SEC_V2_GRP_LEN]);
esp_err_t espnow_sec_v2_grp_decode(const uint8_t *buf, size_t len, espnow_sec_v2_grp_rec_t *g);
void espnow_sec_v2_resp_encode(const espnow_sec_v2_resp_rec_t *r, uint8_t out[ESPNOW_SEC_V2_RESP_LEN]);
esp_err_t espnow_sec_v2_resp_decode(const uint8_t *buf, size_t len, espnow_sec_v2_resp_rec_t *r);
void espnow_sec_v2_dev_encode(const espnow_sec_v2_dev_rec_t *d, uint8_t out[ESPNOW_SEC_V2_DEV_LEN]);
esp_err_t espnow_sec_v2_dev_decode(const uint8_t *buf, size_t len, espnow_sec_v2_dev_rec_t *d);

/** Load record `name` of exactly `len` bytes into `buf` (ESP_OK, ESP_ERR_NOT_FOUND, STORE_CORRUPT, ...). */
esp_err_t espnow_sec_v2_rec_load(const espnow_sec_env_t *env, const char *name, uint8_t *buf, size_t len);

/*
 * keystore.c - encode, check and persist the app key record (layout in keystore.h and
 * docs/keystore.md).
 */
#include "keystore.h"

#include <string.h>

#include "crypto.h"
#include "frame.h"

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

/* ==== protocol v2 records (PROTOCOL.md §12) ==== */

static void rec_seal(uint8_t *out, size_t len, uint8_t magic)
{
    out[0] = magic;
    out[1] = ESPNOW_SEC_V2_REC_VERSION;
    uint32_t crc = espnow_sec_crc32(out, len - 4);
    for (size_t i = 0; i < 4; i++) {
        out[len - 4 + i] = (uint8_t)(crc >> (8 * i));
    }
}

static bool rec_ok(const uint8_t *buf, size_t len, size_t want, uint8_t magic)
{
    if (buf == NULL || len != want || buf[0] != magic || buf[1] != ESPNOW_SEC_V2_REC_VERSION) {
        return false;
    }
    uint32_t crc = 0;
    for (size_t i = 0; i < 4; i++) {
        crc |= (uint32_t)buf[len - 4 + i] << (8 * i);
    }
    return crc == espnow_sec_crc32(buf, len - 4);
}

static size_t put_epoch(uint8_t *p, const espnow_sec_v2_epoch_rec_t *e)
{
    espnow_sec_put_be16(p, e->epoch);
    memcpy(&p[2], e->g, 32);
    return 34;
}

static size_t get_epoch(const uint8_t *p, espnow_sec_v2_epoch_rec_t *e)
{
    e->epoch = espnow_sec_get_be16(p);
    memcpy(e->g, &p[2], 32);
    return 34;
}

void espnow_sec_v2_ctr_encode(uint64_t r, uint8_t out[ESPNOW_SEC_V2_CTR_LEN])
{
    espnow_sec_put_be48(&out[2], r);
    rec_seal(out, ESPNOW_SEC_V2_CTR_LEN, 'C');
}

esp_err_t espnow_sec_v2_ctr_decode(const uint8_t *buf, size_t len, uint64_t *r)
{
    if (!rec_ok(buf, len, ESPNOW_SEC_V2_CTR_LEN, 'C')) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    *r = espnow_sec_get_be48(&buf[2]);
    return ESP_OK;
}

void espnow_sec_v2_grp_encode(const espnow_sec_v2_grp_rec_t *g, uint8_t out[ESPNOW_SEC_V2_GRP_LEN])
{
    size_t n = 2;
    n += put_epoch(&out[n], &g->cur);
    n += put_epoch(&out[n], &g->stg);
    espnow_sec_put_be16(&out[n], g->grace_s);
    out[n + 2] = g->rollout;
    rec_seal(out, ESPNOW_SEC_V2_GRP_LEN, 'G');
}

esp_err_t espnow_sec_v2_grp_decode(const uint8_t *buf, size_t len, espnow_sec_v2_grp_rec_t *g)
{
    if (!rec_ok(buf, len, ESPNOW_SEC_V2_GRP_LEN, 'G')) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    size_t n = 2;
    n += get_epoch(&buf[n], &g->cur);
    n += get_epoch(&buf[n], &g->stg);
    g->grace_s = espnow_sec_get_be16(&buf[n]);
    g->rollout = buf[n + 2];
    return ESP_OK;
}

void espnow_sec_v2_resp_encode(const espnow_sec_v2_resp_rec_t *r, uint8_t out[ESPNOW_SEC_V2_RESP_LEN])
{
    size_t n = 2;
    memcpy(&out[n], r->mac_i, 6);
    n += 6;
    memcpy(&out[n], r->k_dev, 32);
    n += 32;
    espnow_sec_put_be48(&out[n], r->ctl_floor);
    n += 6;
    n += put_epoch(&out[n], &r->cur);
    n += put_epoch(&out[n], &r->stg);
    espnow_sec_put_be16(&out[n], r->grace_s);
    rec_seal(out, ESPNOW_SEC_V2_RESP_LEN, 'R');
}

esp_err_t espnow_sec_v2_resp_decode(const uint8_t *buf, size_t len, espnow_sec_v2_resp_rec_t *r)
{
    if (!rec_ok(buf, len, ESPNOW_SEC_V2_RESP_LEN, 'R')) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    size_t n = 2;
    memcpy(r->mac_i, &buf[n], 6);
    n += 6;
    memcpy(r->k_dev, &buf[n], 32);
    n += 32;
    r->ctl_floor = espnow_sec_get_be48(&buf[n]);
    n += 6;
    n += get_epoch(&buf[n], &r->cur);
    n += get_epoch(&buf[n], &r->stg);
    r->grace_s = espnow_sec_get_be16(&buf[n]);
    return ESP_OK;
}

void espnow_sec_v2_dev_encode(const espnow_sec_v2_dev_rec_t *d, uint8_t out[ESPNOW_SEC_V2_DEV_LEN])
{
    size_t n = 2;
    memcpy(&out[n], d->mac, 6);
    n += 6;
    memcpy(&out[n], d->k_dev, 32);
    n += 32;
    memcpy(&out[n], d->k_dev_pending, 32);
    n += 32;
    out[n++] = d->state;
    espnow_sec_put_be16(&out[n], d->acked_epoch);
    espnow_sec_put_be16(&out[n + 2], d->staged_acked);
    rec_seal(out, ESPNOW_SEC_V2_DEV_LEN, 'D');
}

esp_err_t espnow_sec_v2_dev_decode(const uint8_t *buf, size_t len, espnow_sec_v2_dev_rec_t *d)
{
    if (!rec_ok(buf, len, ESPNOW_SEC_V2_DEV_LEN, 'D')) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    size_t n = 2;
    memcpy(d->mac, &buf[n], 6);
    n += 6;
    memcpy(d->k_dev, &buf[n], 32);
    n += 32;
    memcpy(d->k_dev_pending, &buf[n], 32);
    n += 32;
    d->state = buf[n++];
    d->acked_epoch = espnow_sec_get_be16(&buf[n]);
    d->staged_acked = espnow_sec_get_be16(&buf[n + 2]);
    if (d->state < ESPNOW_SEC_DEV_PENDING_KEY || d->state > ESPNOW_SEC_DEV_REMOVING) {
        return ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    return ESP_OK;
}

esp_err_t espnow_sec_v2_rec_load(const espnow_sec_env_t *env, const char *name, uint8_t *buf, size_t len)
{
    uint8_t tmp[ESPNOW_SEC_V2_RESP_LEN + 1]; /* the largest record plus one byte of slack */
    size_t got = 0;
    esp_err_t err = env->store_load(env->ctx, name, tmp, sizeof(tmp), &got);
    if (err == ESP_ERR_INVALID_SIZE) {
        err = ESP_ERR_ESPNOW_SEC_STORE_CORRUPT; /* longer than any v2 record */
    }
    if (err == ESP_OK) {
        if (got != len) {
            err = ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
        } else {
            memcpy(buf, tmp, len);
        }
    }
    espnow_sec_memzero(tmp, sizeof(tmp));
    return err;
}

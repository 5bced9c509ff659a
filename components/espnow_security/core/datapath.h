/*
 * datapath.h - compat data frames: AES-128-CCM, key app_key[0..16), 4-byte tag,
 * 8-byte random nonce, no AAD; payload on air C || tag(4) || nonce(8)
 * (reference/upstream-espnow-security.md §2.6-2.7, summary points 9-11).
 *
 * Standalone so vector tests can rebuild a frame from a given nonce.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "espnow_sec.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Import app_key[0..16) as the AES-128-CCM data key with 4-byte tags (no KDF, §2.6). */
esp_err_t espnow_sec_data_key_import(espnow_sec_ccm_key_t *k, const uint8_t app_key[ESPNOW_SEC_APP_KEY_LEN]);

/** out (len + 12 bytes) = C || T || nonce. len <= ESPNOW_SEC_MAX_PAYLOAD_COMPAT. */
esp_err_t espnow_sec_data_seal(const espnow_sec_ccm_key_t *k, const uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN],
                               const uint8_t *pt, size_t len, uint8_t *out);

/**
 * Open a protected payload of real length `len` (>= 12): nonce = last 8 bytes, tag the
 * 4 before. pt (len - 12 bytes) is filled only when the tag verifies.
 * ESP_ERR_ESPNOW_SEC_MALFORMED when len < 12 or > 230; ESP_ERR_ESPNOW_SEC_AUTH on a bad tag.
 */
esp_err_t espnow_sec_data_open(const espnow_sec_ccm_key_t *k, const uint8_t *payload, size_t len,
                               uint8_t *pt, size_t *pt_len);

/**
 * Build a whole DATA frame: `hdr` supplies magic, channel, dest, src, broadcast/group;
 * type, version, size and the security bit are set here. k == NULL builds a plaintext
 * frame (nonce ignored). Returns ESP_ERR_ESPNOW_SEC_TOO_LONG above 218 bytes.
 */
esp_err_t espnow_sec_data_frame_build(const espnow_sec_hdr_t *hdr, const espnow_sec_ccm_key_t *k,
                                      const uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN],
                                      const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                                      size_t *out_len);

#ifdef __cplusplus
}
#endif

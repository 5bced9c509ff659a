/*
 * keysched.h - protocol v2's key schedule and per-frame nonce/AAD: the functions of
 * docs/PROTOCOL.md §4.3 and §2.5, one each, named after the spec's values.
 *
 * Every output is a fresh buffer the caller owns and wipes. All hashing and MACs go through
 * crypto.h (PSA); confirmation MACs are verified inside PSA (constant time), never memcmp.
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

#define ESPNOW_SEC_V2_KEY_LEN 32      /* k_conf_I, k_conf_R, k_dev, G_E, pop_hash */
#define ESPNOW_SEC_V2_AES_LEN 16      /* k_ctl, k_grp(E) */
#define ESPNOW_SEC_V2_CHECK_LEN 16    /* key_check */
#define ESPNOW_SEC_V2_PAIR_ID_LEN 4

/* §4.3 labels (exact ASCII, no NUL). */
#define ESPNOW_SEC_L_POP "espnow-sec v2 pop"
#define ESPNOW_SEC_L_TH "espnow-sec v2 transcript"
#define ESPNOW_SEC_L_CONF_I "espnow-sec v2 conf I"
#define ESPNOW_SEC_L_CONF_R "espnow-sec v2 conf R"
#define ESPNOW_SEC_L_DEV "espnow-sec v2 device key"
#define ESPNOW_SEC_L_PAIR "espnow-sec v2 pairwise"
#define ESPNOW_SEC_L_CTL "ctl key"
#define ESPNOW_SEC_L_GROUP "espnow-sec v2 group"
#define ESPNOW_SEC_L_DATA "data key"
#define ESPNOW_SEC_L_CHECK "espnow-sec v2 key check"
#define ESPNOW_SEC_L_PAIR_ID "espnow-sec v2 pair id"

/** The three handshake outputs (§4.3), all from one salt (th2) and one ikm (dh ‖ pop_hash). */
typedef struct {
    uint8_t k_conf_i[ESPNOW_SEC_V2_KEY_LEN];
    uint8_t k_conf_r[ESPNOW_SEC_V2_KEY_LEN];
    uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN];
} espnow_sec_hs_keys_t;

/** pop_hash = SHA256(L_POP ‖ pop), pop 0..64 bytes. */
esp_err_t espnow_sec_ks_pop_hash(const uint8_t *pop, size_t pop_len, uint8_t out[ESPNOW_SEC_V2_KEY_LEN]);
/** th2 = SHA256(L_TH ‖ mac_I ‖ mac_R ‖ HS1 ‖ HS2). */
esp_err_t espnow_sec_ks_th2(const uint8_t mac_i[ESPNOW_SEC_ADDR_LEN], const uint8_t mac_r[ESPNOW_SEC_ADDR_LEN],
                            const uint8_t hs1[ESPNOW_SEC_V2_HS1_LEN], const uint8_t hs2[ESPNOW_SEC_V2_HS_LEN],
                            uint8_t out[ESPNOW_SEC_SHA256_LEN]);
/** th3 = SHA256(th2 ‖ HS3). */
esp_err_t espnow_sec_ks_th3(const uint8_t th2[ESPNOW_SEC_SHA256_LEN], const uint8_t hs3[ESPNOW_SEC_V2_HS_LEN],
                            uint8_t out[ESPNOW_SEC_SHA256_LEN]);
/** k_conf_I, k_conf_R, k_dev = HKDF(salt = th2, ikm = dh ‖ pop_hash, info = label, 32). */
esp_err_t espnow_sec_ks_hs_keys(const uint8_t th2[ESPNOW_SEC_SHA256_LEN], const uint8_t dh[ESPNOW_SEC_X25519_LEN],
                                const uint8_t pop_hash[ESPNOW_SEC_V2_KEY_LEN], espnow_sec_hs_keys_t *out);
/** conf = HMAC(k_conf, th) (conf_I over th2, conf_R over th3). */
esp_err_t espnow_sec_ks_conf(const uint8_t k_conf[ESPNOW_SEC_V2_KEY_LEN], const uint8_t th[ESPNOW_SEC_SHA256_LEN],
                             uint8_t out[ESPNOW_SEC_SHA256_LEN]);
/** ESP_OK or ESP_ERR_ESPNOW_SEC_AUTH; constant time inside PSA. */
esp_err_t espnow_sec_ks_conf_verify(const uint8_t k_conf[ESPNOW_SEC_V2_KEY_LEN],
                                    const uint8_t th[ESPNOW_SEC_SHA256_LEN],
                                    const uint8_t conf[ESPNOW_SEC_SHA256_LEN]);
/** k_ctl = HKDF(salt = L_PAIR, ikm = k_dev, info = L_CTL ‖ mac_I ‖ mac_R, 16). */
esp_err_t espnow_sec_ks_ctl_key(const uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN], const uint8_t mac_i[ESPNOW_SEC_ADDR_LEN],
                                const uint8_t mac_r[ESPNOW_SEC_ADDR_LEN], uint8_t out[ESPNOW_SEC_V2_AES_LEN]);
/** k_grp(E) = HKDF(salt = L_GROUP, ikm = G_E, info = L_DATA ‖ BE16(E), 16). */
esp_err_t espnow_sec_ks_grp_key(const uint8_t g[ESPNOW_SEC_V2_KEY_LEN], uint16_t epoch,
                                uint8_t out[ESPNOW_SEC_V2_AES_LEN]);
/** key_check(E, G) = HMAC(k_dev, L_CHECK ‖ BE16(E) ‖ G)[0..16). */
esp_err_t espnow_sec_ks_key_check(const uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN], uint16_t epoch,
                                  const uint8_t g[ESPNOW_SEC_V2_KEY_LEN], uint8_t out[ESPNOW_SEC_V2_CHECK_LEN]);
/** pair_id = HMAC(k_dev, L_PAIR_ID)[0..4). */
esp_err_t espnow_sec_ks_pair_id(const uint8_t k_dev[ESPNOW_SEC_V2_KEY_LEN], uint8_t out[ESPNOW_SEC_V2_PAIR_ID_LEN]);

/** §2.5 nonce = src ‖ counter (hdr[6..12)) ‖ type (hdr[2]). */
void espnow_sec_ks_nonce(const uint8_t src[ESPNOW_SEC_ADDR_LEN], const uint8_t hdr[ESPNOW_SEC_V2_SEC_HDR_LEN],
                         uint8_t out[ESPNOW_SEC_V2_NONCE_LEN]);
/** §2.5 AAD = hdr[0..12) ‖ dst ‖ src. */
void espnow_sec_ks_aad(const uint8_t hdr[ESPNOW_SEC_V2_SEC_HDR_LEN], const uint8_t dst[ESPNOW_SEC_ADDR_LEN],
                       const uint8_t src[ESPNOW_SEC_ADDR_LEN], uint8_t out[ESPNOW_SEC_V2_AAD_LEN]);

/**
 * Seal a secured frame in place: `frame` holds the 12-byte header; the plaintext is
 * appended as ciphertext ‖ tag (k->tag_len). Returns the total length in *out_len.
 * `frame` capacity must be >= 12 + pt_len + tag.
 */
esp_err_t espnow_sec_ks_seal(const espnow_sec_ccm_key_t *k, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                             const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint8_t *frame, const uint8_t *pt,
                             size_t pt_len, size_t *out_len);
/**
 * Open a received secured frame of `len` bytes; plaintext (len - 12 - tag bytes) into `pt`.
 * ESP_ERR_ESPNOW_SEC_AUTH on a bad tag (`pt` wiped).
 */
esp_err_t espnow_sec_ks_open(const espnow_sec_ccm_key_t *k, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                             const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame, size_t len,
                             uint8_t *pt);
/** Import a 16-byte AES key for CCM with `tag_len` (8: group, 16: pairwise) as one PSA key. */
esp_err_t espnow_sec_ks_import(espnow_sec_ccm_key_t *k, const uint8_t key[ESPNOW_SEC_V2_AES_LEN], size_t tag_len);

#ifdef __cplusplus
}
#endif

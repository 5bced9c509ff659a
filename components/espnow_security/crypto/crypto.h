/*
 * crypto.h - the few primitives the core needs, over the PSA Crypto API.
 *
 * crypto_psa.c is the only file of the component that includes psa/crypto.h, so PSA
 * status mapping, key-ID lifetimes and output-length checks live in one place
 * (STYLE.md "Examples to follow" 8-9). Everything here is stateless except the CCM key
 * object, which owns one PSA key ID (see espnow_sec_ccm_key_t).
 *
 * Errors: ESP_OK; ESP_ERR_INVALID_ARG (bad length, NULL, a public key that is not a valid
 * or is a low-order X25519 point); ESP_ERR_ESPNOW_SEC_AUTH (AEAD tag mismatch);
 * ESP_ERR_NO_MEM; ESP_ERR_NOT_SUPPORTED (algorithm missing from the PSA build);
 * ESP_FAIL (any other PSA failure).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ESPNOW_SEC_X25519_LEN 32
#define ESPNOW_SEC_SHA256_LEN 32
#define ESPNOW_SEC_AES_BLOCK 16

/** psa_crypto_init(); safe to call more than once. */
esp_err_t espnow_sec_crypto_init(void);

/**
 * X25519 public key of `priv` (32 random bytes, RFC 7748 little-endian; the library
 * clamps on import, RFC 7748 §5).
 */
esp_err_t espnow_sec_crypto_x25519_public(const uint8_t priv[ESPNOW_SEC_X25519_LEN],
                                          uint8_t pub[ESPNOW_SEC_X25519_LEN]);

/**
 * shared = X25519(priv, peer_pub), RFC 7748 encoding. Fails with ESP_ERR_INVALID_ARG
 * when PSA refuses the peer key or the result is all zero (a low-order peer key,
 * RFC 7748 §6.1 "check ... all-zero value"); `shared` is wiped on any failure.
 */
esp_err_t espnow_sec_crypto_x25519(const uint8_t priv[ESPNOW_SEC_X25519_LEN],
                                   const uint8_t peer_pub[ESPNOW_SEC_X25519_LEN],
                                   uint8_t shared[ESPNOW_SEC_X25519_LEN]);

esp_err_t espnow_sec_crypto_sha256(const uint8_t *in, size_t len,
                                   uint8_t out[ESPNOW_SEC_SHA256_LEN]);

/**
 * AES-256-CTR keystream applied at byte `offset` of the stream whose initial counter
 * block is `iv` (a 128-bit big-endian counter, NIST SP 800-38A §6.5 / B.1). Calling it
 * with consecutive offsets is one continuous stream, partial blocks included, so
 * crypt(0, 5 bytes) then crypt(5, 27 bytes) == crypt(0, 32 bytes). in == out is allowed.
 */
esp_err_t espnow_sec_crypto_aes256_ctr(const uint8_t key[32], const uint8_t iv[ESPNOW_SEC_AES_BLOCK],
                                       uint32_t offset, const uint8_t *in, uint8_t *out,
                                       size_t len);

/**
 * An AES key for AES-CCM with a fixed tag length, held as one volatile PSA key for as long
 * as the owner keeps it: imported once by espnow_sec_crypto_ccm_key_import(), used by every
 * seal/open without importing again (no per-frame key-slot allocation, STYLE.md example 7),
 * destroyed by espnow_sec_crypto_ccm_key_destroy(). The raw key bytes are not kept here.
 *
 * Lifetime rules: the struct starts zeroed (id 0 = PSA_KEY_ID_NULL = no key); it must be
 * destroyed before it is overwritten, zeroed or goes out of scope, or the PSA key slot
 * leaks. Moving it by plain assignment moves ownership (destroy only one of the copies).
 * Each live key occupies one PSA key slot: Mbed TLS 2.28 has 32 volatile slots per process
 * (MBEDTLS_PSA_KEY_SLOT_COUNT), which bounds how many keyed nodes one host process holds.
 */
typedef struct {
    uint32_t id;       /**< psa_key_id_t; 0 = none */
    uint8_t tag_len;   /**< 4..16, even */
} espnow_sec_ccm_key_t;

/**
 * Import `key` (16/24/32 bytes) into PSA as `k`, for CCM with `tag_len`-byte tags only (the
 * tag length is part of the key's permitted algorithm). `k` must not hold a key (destroy it
 * first). The caller may wipe `key` afterwards. ESP_ERR_NO_MEM when PSA has no free key
 * slot; ESP_ERR_INVALID_ARG for a bad length or a `k` that still holds a key.
 */
esp_err_t espnow_sec_crypto_ccm_key_import(espnow_sec_ccm_key_t *k, const uint8_t *key,
                                           size_t key_len, size_t tag_len);
/** Destroy the PSA key (no-op when none). Leaves k->id == 0. */
void espnow_sec_crypto_ccm_key_destroy(espnow_sec_ccm_key_t *k);

/**
 * out = C || T with |C| = pt_len and |T| = k->tag_len (out holds pt_len + tag_len).
 * nonce_len 7..13 (NIST SP 800-38C A.1).
 */
esp_err_t espnow_sec_crypto_ccm_seal(const espnow_sec_ccm_key_t *k, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *pt, size_t pt_len, uint8_t *out);

/**
 * in = C || T (in_len >= tag_len); out receives in_len - tag_len bytes. The tag is
 * checked inside PSA; on ESP_ERR_ESPNOW_SEC_AUTH (or any error) `out` is wiped, so
 * unauthenticated plaintext never reaches the caller.
 */
esp_err_t espnow_sec_crypto_ccm_open(const espnow_sec_ccm_key_t *k, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *in, size_t in_len, uint8_t *out);

/**
 * One complete RFC 5869 HKDF-SHA256: Extract with `salt`, Expand with `info` to `out_len`
 * bytes (PSA_ALG_HKDF(PSA_ALG_SHA_256); Mbed TLS 2.28 has no separate Extract/Expand).
 * salt_len >= 1 (v2 never uses an empty salt), out_len 1..255*32. `out` is wiped on failure.
 */
esp_err_t espnow_sec_crypto_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                                        size_t ikm_len, const uint8_t *info, size_t info_len,
                                        uint8_t *out, size_t out_len);

/** out = HMAC-SHA256(key, msg) (RFC 2104), 32 bytes; key_len 1..64. */
esp_err_t espnow_sec_crypto_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg,
                                        size_t msg_len, uint8_t out[ESPNOW_SEC_SHA256_LEN]);

/**
 * Verify `mac` (mac_len 1..32 bytes, a prefix of HMAC-SHA256(key, msg)) inside PSA
 * (psa_mac_verify: constant time). ESP_OK, ESP_ERR_ESPNOW_SEC_AUTH on mismatch, or another
 * error.
 */
esp_err_t espnow_sec_crypto_hmac_sha256_verify(const uint8_t *key, size_t key_len,
                                               const uint8_t *msg, size_t msg_len,
                                               const uint8_t *mac, size_t mac_len);

/** Constant-time equality for verifiers and echoes (never memcmp a secret). */
bool espnow_sec_ct_equal(const void *a, const void *b, size_t len);

/** Constant-time "all bytes zero". */
bool espnow_sec_ct_is_zero(const void *a, size_t len);

/** Wipe memory; not optimised away (volatile stores). */
void espnow_sec_memzero(void *p, size_t len);

#ifdef __cplusplus
}
#endif

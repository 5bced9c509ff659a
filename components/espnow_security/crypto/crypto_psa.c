/*
 * crypto_psa.c - the component's only user of the PSA Crypto API.
 *
 * Same code on the host (Debian Mbed TLS 2.28) and on ESP-IDF 5.x (Mbed TLS 3) / 6.x
 * (TF-PSA-Crypto): only public PSA calls. Rules (STYLE.md "Examples to follow" 9):
 * key IDs start at PSA_KEY_ID_NULL and are destroyed at one exit; a multipart
 * operation is aborted on every path; every output length is checked even on success;
 * psa_status_t is mapped to esp_err_t in map_status() only.
 */
#include "crypto.h"

#include <string.h>

#include <psa/crypto.h>

#include "espnow_sec.h"

/* The sizes the core relies on, pinned against PSA's own macros. */
_Static_assert(PSA_HASH_LENGTH(PSA_ALG_SHA_256) == ESPNOW_SEC_SHA256_LEN, "SHA-256 length");
_Static_assert(PSA_BLOCK_CIPHER_BLOCK_LENGTH(PSA_KEY_TYPE_AES) == ESPNOW_SEC_AES_BLOCK,
               "AES block");

static esp_err_t map_status(psa_status_t st)
{
    switch (st) {
    case PSA_SUCCESS:
        return ESP_OK;
    case PSA_ERROR_INVALID_SIGNATURE:
        return ESP_ERR_ESPNOW_SEC_AUTH;
    case PSA_ERROR_INVALID_ARGUMENT:
        return ESP_ERR_INVALID_ARG;
    case PSA_ERROR_NOT_SUPPORTED:
        return ESP_ERR_NOT_SUPPORTED;
    case PSA_ERROR_INSUFFICIENT_MEMORY:
        return ESP_ERR_NO_MEM;
    case PSA_ERROR_BUFFER_TOO_SMALL:
        return ESP_ERR_INVALID_SIZE;
    case PSA_ERROR_BAD_STATE:
        return ESP_ERR_INVALID_STATE;
    default:
        return ESP_FAIL;
    }
}

void espnow_sec_memzero(void *p, size_t len)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (len--) {
        *v++ = 0;
    }
}

bool espnow_sec_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = (const volatile uint8_t *)a;
    const volatile uint8_t *y = (const volatile uint8_t *)b;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        acc |= (uint8_t)(x[i] ^ y[i]);
    }
    return acc == 0;
}

bool espnow_sec_ct_is_zero(const void *a, size_t len)
{
    const volatile uint8_t *x = (const volatile uint8_t *)a;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        acc |= x[i];
    }
    return acc == 0;
}

esp_err_t espnow_sec_crypto_init(void)
{
    return map_status(psa_crypto_init());
}

/* X25519 private key as a PSA Montgomery key pair, 255 bits (RFC 7748 encoding). */
static psa_status_t import_x25519(const uint8_t priv[ESPNOW_SEC_X25519_LEN], psa_key_id_t *id)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
    psa_set_key_bits(&attr, 255);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_DERIVE);
    psa_set_key_algorithm(&attr, PSA_ALG_ECDH);
    psa_status_t st = psa_import_key(&attr, priv, ESPNOW_SEC_X25519_LEN, id);
    psa_reset_key_attributes(&attr);
    return st;
}

esp_err_t espnow_sec_crypto_x25519_public(const uint8_t priv[ESPNOW_SEC_X25519_LEN],
                                          uint8_t pub[ESPNOW_SEC_X25519_LEN])
{
    if (priv == NULL || pub == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    psa_key_id_t id = PSA_KEY_ID_NULL;
    size_t olen = 0;
    psa_status_t st = import_x25519(priv, &id);
    if (st != PSA_SUCCESS) {
        goto end;
    }
    st = psa_export_public_key(id, pub, ESPNOW_SEC_X25519_LEN, &olen);
    if (st == PSA_SUCCESS && olen != ESPNOW_SEC_X25519_LEN) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
end:
    psa_destroy_key(id);
    return map_status(st);
}

esp_err_t espnow_sec_crypto_x25519(const uint8_t priv[ESPNOW_SEC_X25519_LEN],
                                   const uint8_t peer_pub[ESPNOW_SEC_X25519_LEN],
                                   uint8_t shared[ESPNOW_SEC_X25519_LEN])
{
    if (priv == NULL || peer_pub == NULL || shared == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    psa_key_id_t id = PSA_KEY_ID_NULL;
    size_t olen = 0;
    psa_status_t st = import_x25519(priv, &id);
    if (st != PSA_SUCCESS) {
        goto end;
    }
    st = psa_raw_key_agreement(PSA_ALG_ECDH, id, peer_pub, ESPNOW_SEC_X25519_LEN, shared,
                               ESPNOW_SEC_X25519_LEN, &olen);
    if (st == PSA_SUCCESS && olen != ESPNOW_SEC_X25519_LEN) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
    /* A low-order peer point gives an all-zero secret; not every PSA build refuses it
     * itself, so check here too (RFC 7748 §6.1; protocomm "weak session" test). */
    if (st == PSA_SUCCESS && espnow_sec_ct_is_zero(shared, ESPNOW_SEC_X25519_LEN)) {
        st = PSA_ERROR_INVALID_ARGUMENT;
    }
end:
    psa_destroy_key(id);
    if (st != PSA_SUCCESS) {
        espnow_sec_memzero(shared, ESPNOW_SEC_X25519_LEN);
    }
    return map_status(st);
}

esp_err_t espnow_sec_crypto_sha256(const uint8_t *in, size_t len, uint8_t out[ESPNOW_SEC_SHA256_LEN])
{
    if ((in == NULL && len != 0) || out == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    size_t olen = 0;
    psa_status_t st = psa_hash_compute(PSA_ALG_SHA_256, in, len, out, ESPNOW_SEC_SHA256_LEN, &olen);
    if (st == PSA_SUCCESS && olen != ESPNOW_SEC_SHA256_LEN) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
    return map_status(st);
}

esp_err_t espnow_sec_crypto_aes256_ctr(const uint8_t key[32], const uint8_t iv[ESPNOW_SEC_AES_BLOCK],
                                       uint32_t offset, const uint8_t *in, uint8_t *out,
                                       size_t len)
{
    if (key == NULL || iv == NULL || ((in == NULL || out == NULL) && len != 0)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (len == 0) {
        return ESP_OK;
    }
    /* Counter block of the block holding `offset`: iv + offset/16 as a 128-bit
     * big-endian integer (SP 800-38A B.1 standard incrementing function). */
    uint8_t ctr[ESPNOW_SEC_AES_BLOCK];
    memcpy(ctr, iv, sizeof(ctr));
    uint32_t add = offset / ESPNOW_SEC_AES_BLOCK;
    for (int i = ESPNOW_SEC_AES_BLOCK - 1; i >= 0 && add != 0; i--) {
        uint32_t sum = (uint32_t)ctr[i] + (add & 0xFFu);
        ctr[i] = (uint8_t)sum;
        add = (add >> 8) + (sum >> 8);
    }
    size_t skip = offset % ESPNOW_SEC_AES_BLOCK;

    psa_key_id_t id = PSA_KEY_ID_NULL;
    psa_cipher_operation_t op = PSA_CIPHER_OPERATION_INIT;
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    uint8_t scratch[ESPNOW_SEC_AES_BLOCK];
    uint8_t zeros[ESPNOW_SEC_AES_BLOCK];
    uint8_t bounce[64];
    size_t olen = 0;
    psa_set_key_type(&attr, PSA_KEY_TYPE_AES);
    psa_set_key_bits(&attr, 256);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_ENCRYPT);
    psa_set_key_algorithm(&attr, PSA_ALG_CTR);
    psa_status_t st = psa_import_key(&attr, key, 32, &id);
    psa_reset_key_attributes(&attr);
    if (st != PSA_SUCCESS) {
        goto end;
    }
    st = psa_cipher_encrypt_setup(&op, id, PSA_ALG_CTR);
    if (st != PSA_SUCCESS) {
        goto end;
    }
    st = psa_cipher_set_iv(&op, ctr, sizeof(ctr));
    if (st != PSA_SUCCESS) {
        goto end;
    }
    if (skip != 0) {
        /* Burn the keystream bytes before `offset` inside its block: the partial
         * block carried over from the previous record (protocomm-security.md §4.3). */
        memset(zeros, 0, sizeof(zeros));
        st = psa_cipher_update(&op, zeros, skip, scratch, sizeof(scratch), &olen);
        if (st == PSA_SUCCESS && olen != skip) {
            st = PSA_ERROR_GENERIC_ERROR;
        }
        if (st != PSA_SUCCESS) {
            goto end;
        }
    }
    /* Through a bounce buffer: Mbed TLS refuses in-place updates that are not whole
     * blocks, and the API promises in == out works. */
    for (size_t pos = 0; pos < len;) {
        size_t n = len - pos < sizeof(bounce) ? len - pos : sizeof(bounce);
        memcpy(bounce, &in[pos], n);
        st = psa_cipher_update(&op, bounce, n, &out[pos], n, &olen);
        if (st == PSA_SUCCESS && olen != n) {
            st = PSA_ERROR_GENERIC_ERROR;
        }
        if (st != PSA_SUCCESS) {
            goto end;
        }
        pos += n;
    }
    st = psa_cipher_finish(&op, scratch, sizeof(scratch), &olen);
    if (st == PSA_SUCCESS && olen != 0) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
end:
    psa_cipher_abort(&op); /* required on errors, harmless after finish */
    psa_destroy_key(id);
    espnow_sec_memzero(scratch, sizeof(scratch));
    espnow_sec_memzero(bounce, sizeof(bounce));
    espnow_sec_memzero(ctr, sizeof(ctr));
    if (st != PSA_SUCCESS && out != NULL) {
        espnow_sec_memzero(out, len);
    }
    return map_status(st);
}

static bool ccm_tag_ok(size_t tag_len)
{
    /* RFC 3610 §2: M in {4, 6, ..., 16}. */
    return tag_len >= 4 && tag_len <= 16 && (tag_len % 2) == 0;
}

static bool ccm_nonce_ok(size_t nonce_len)
{
    return nonce_len >= 7 && nonce_len <= 13; /* SP 800-38C A.1: 15 - q, q in 2..8 */
}

/* espnow_sec_ccm_key_t stores the PSA key ID as a uint32_t so crypto.h stays PSA-free. */
_Static_assert(sizeof(psa_key_id_t) == sizeof(uint32_t), "psa_key_id_t fits espnow_sec_ccm_key_t.id");

esp_err_t espnow_sec_crypto_ccm_key_import(espnow_sec_ccm_key_t *k, const uint8_t *key,
                                           size_t key_len, size_t tag_len)
{
    if (k == NULL || key == NULL || !ccm_tag_ok(tag_len) ||
        (key_len != 16 && key_len != 24 && key_len != 32)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (k->id != PSA_KEY_ID_NULL) {
        return ESP_ERR_INVALID_ARG; /* would leak the slot of the key it holds */
    }
    /* Narrow policy (STYLE.md example 9): AES, CCM with exactly this tag length. */
    psa_algorithm_t alg = PSA_ALG_AEAD_WITH_SHORTENED_TAG(PSA_ALG_CCM, tag_len);
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_key_id_t id = PSA_KEY_ID_NULL;
    psa_set_key_type(&attr, PSA_KEY_TYPE_AES);
    psa_set_key_bits(&attr, key_len * 8);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_ENCRYPT | PSA_KEY_USAGE_DECRYPT);
    psa_set_key_algorithm(&attr, alg);
    psa_status_t st = psa_import_key(&attr, key, key_len, &id);
    psa_reset_key_attributes(&attr);
    if (st != PSA_SUCCESS) {
        return map_status(st);
    }
    k->id = (uint32_t)id;
    k->tag_len = (uint8_t)tag_len;
    return ESP_OK;
}

void espnow_sec_crypto_ccm_key_destroy(espnow_sec_ccm_key_t *k)
{
    if (k == NULL) {
        return;
    }
    if (k->id != PSA_KEY_ID_NULL) {
        psa_destroy_key((psa_key_id_t)k->id); /* wipes the key material inside PSA */
    }
    k->id = PSA_KEY_ID_NULL;
    k->tag_len = 0;
}

static bool ccm_key_ok(const espnow_sec_ccm_key_t *k)
{
    return k != NULL && k->id != PSA_KEY_ID_NULL && ccm_tag_ok(k->tag_len);
}

esp_err_t espnow_sec_crypto_ccm_seal(const espnow_sec_ccm_key_t *k, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *pt, size_t pt_len, uint8_t *out)
{
    if (!ccm_key_ok(k) || nonce == NULL || !ccm_nonce_ok(nonce_len) ||
        (aad == NULL && aad_len != 0) || (pt == NULL && pt_len != 0) || out == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    psa_algorithm_t alg = PSA_ALG_AEAD_WITH_SHORTENED_TAG(PSA_ALG_CCM, k->tag_len);
    size_t want = pt_len + k->tag_len;
    size_t olen = 0;
    psa_status_t st = psa_aead_encrypt((psa_key_id_t)k->id, alg, nonce, nonce_len, aad, aad_len, pt,
                                       pt_len, out, want, &olen);
    if (st == PSA_SUCCESS && olen != want) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
    if (st != PSA_SUCCESS) {
        espnow_sec_memzero(out, want);
    }
    return map_status(st);
}

esp_err_t espnow_sec_crypto_ccm_open(const espnow_sec_ccm_key_t *k, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *in, size_t in_len, uint8_t *out)
{
    if (!ccm_key_ok(k) || nonce == NULL || !ccm_nonce_ok(nonce_len) ||
        (aad == NULL && aad_len != 0) || in == NULL || in_len < k->tag_len || out == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    psa_algorithm_t alg = PSA_ALG_AEAD_WITH_SHORTENED_TAG(PSA_ALG_CCM, k->tag_len);
    size_t want = in_len - k->tag_len;
    size_t olen = 0;
    /* PSA wants a non-NULL output even for an empty plaintext on some versions. */
    uint8_t dummy;
    uint8_t *dst = want != 0 ? out : &dummy;
    /* The tag is compared inside PSA in constant time (PSA_ERROR_INVALID_SIGNATURE). */
    psa_status_t st = psa_aead_decrypt((psa_key_id_t)k->id, alg, nonce, nonce_len, aad, aad_len, in,
                                       in_len, dst, want, &olen);
    if (st == PSA_SUCCESS && olen != want) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
    if (st != PSA_SUCCESS) {
        espnow_sec_memzero(out, want);
    }
    return map_status(st);
}

/* ---- HKDF / HMAC (protocol v2, PROTOCOL.md §1) ---- */

esp_err_t espnow_sec_crypto_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                                        size_t ikm_len, const uint8_t *info, size_t info_len,
                                        uint8_t *out, size_t out_len)
{
    if (salt == NULL || salt_len == 0 || (ikm == NULL && ikm_len != 0) ||
        (info == NULL && info_len != 0) || out == NULL || out_len == 0 ||
        out_len > 255 * ESPNOW_SEC_SHA256_LEN) {
        return ESP_ERR_INVALID_ARG;
    }
    psa_key_derivation_operation_t op = PSA_KEY_DERIVATION_OPERATION_INIT;
    psa_status_t st = psa_key_derivation_setup(&op, PSA_ALG_HKDF(PSA_ALG_SHA_256));
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_SALT, salt, salt_len);
    }
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_SECRET, ikm, ikm_len);
    }
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_input_bytes(&op, PSA_KEY_DERIVATION_INPUT_INFO, info, info_len);
    }
    if (st == PSA_SUCCESS) {
        st = psa_key_derivation_output_bytes(&op, out, out_len);
    }
    psa_key_derivation_abort(&op); /* every path: wipes the PRK inside PSA */
    if (st != PSA_SUCCESS) {
        espnow_sec_memzero(out, out_len);
    }
    return map_status(st);
}

/* A transient HMAC-SHA256 key: imported for one call, destroyed at the one exit. */
static psa_status_t import_hmac(const uint8_t *key, size_t key_len, psa_key_usage_t usage,
                                psa_key_id_t *id)
{
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_set_key_type(&attr, PSA_KEY_TYPE_HMAC);
    psa_set_key_bits(&attr, key_len * 8);
    psa_set_key_usage_flags(&attr, usage);
    psa_set_key_algorithm(&attr, PSA_ALG_HMAC(PSA_ALG_SHA_256));
    psa_status_t st = psa_import_key(&attr, key, key_len, id);
    psa_reset_key_attributes(&attr);
    return st;
}

esp_err_t espnow_sec_crypto_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg,
                                        size_t msg_len, uint8_t out[ESPNOW_SEC_SHA256_LEN])
{
    if (key == NULL || key_len == 0 || key_len > 64 || (msg == NULL && msg_len != 0) ||
        out == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    psa_key_id_t id = PSA_KEY_ID_NULL;
    size_t olen = 0;
    uint8_t dummy = 0;
    psa_status_t st = import_hmac(key, key_len, PSA_KEY_USAGE_SIGN_MESSAGE, &id);
    if (st == PSA_SUCCESS) {
        st = psa_mac_compute(id, PSA_ALG_HMAC(PSA_ALG_SHA_256), msg_len ? msg : &dummy, msg_len,
                             out, ESPNOW_SEC_SHA256_LEN, &olen);
    }
    if (st == PSA_SUCCESS && olen != ESPNOW_SEC_SHA256_LEN) {
        st = PSA_ERROR_GENERIC_ERROR;
    }
    psa_destroy_key(id);
    if (st != PSA_SUCCESS) {
        espnow_sec_memzero(out, ESPNOW_SEC_SHA256_LEN);
    }
    return map_status(st);
}

esp_err_t espnow_sec_crypto_hmac_sha256_verify(const uint8_t *key, size_t key_len,
                                               const uint8_t *msg, size_t msg_len,
                                               const uint8_t *mac, size_t mac_len)
{
    if (key == NULL || key_len == 0 || key_len > 64 || (msg == NULL && msg_len != 0) ||
        mac == NULL || mac_len == 0 || mac_len > ESPNOW_SEC_SHA256_LEN) {
        return ESP_ERR_INVALID_ARG;
    }
    /* A truncated MAC is the HMAC algorithm with a shortened length (PSA_ALG_TRUNCATED_MAC);
     * the key policy must name exactly that algorithm, so import with it. */
    psa_algorithm_t alg = mac_len == ESPNOW_SEC_SHA256_LEN
                              ? PSA_ALG_HMAC(PSA_ALG_SHA_256)
                              : PSA_ALG_TRUNCATED_MAC(PSA_ALG_HMAC(PSA_ALG_SHA_256), mac_len);
    psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
    psa_key_id_t id = PSA_KEY_ID_NULL;
    uint8_t dummy = 0;
    psa_set_key_type(&attr, PSA_KEY_TYPE_HMAC);
    psa_set_key_bits(&attr, key_len * 8);
    psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_VERIFY_MESSAGE);
    psa_set_key_algorithm(&attr, alg);
    psa_status_t st = psa_import_key(&attr, key, key_len, &id);
    psa_reset_key_attributes(&attr);
    if (st == PSA_SUCCESS) {
        /* Compared inside PSA in constant time (PSA_ERROR_INVALID_SIGNATURE on mismatch). */
        st = psa_mac_verify(id, alg, msg_len ? msg : &dummy, msg_len, mac, mac_len);
    }
    psa_destroy_key(id);
    return map_status(st);
}

/*
 * test_crypto.c - crypto_psa.c against published known answers only. Every expected
 * value below is typed in from the cited standard, never computed by this code.
 */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "espnow_sec.h"
#include "harness.h"

/* RFC 7748 §5.2, first test vector (scalar is used as given; X25519 clamps it). */
static void test_x25519_rfc7748_5_2(void)
{
    uint8_t k[32], u[32], want[32], out[32];
    unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", k);
    unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c", u);
    unhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552", want);
    CHECK_EQ(espnow_sec_crypto_x25519(k, u, out), ESP_OK);
    CHECK_MEM(out, want, 32);
}

/* RFC 7748 §6.1: Alice's and Bob's public keys and their shared secret. */
static void test_x25519_rfc7748_6_1(void)
{
    uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], shared[32], out[32], s1[32], s2[32];
    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv);
    unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", a_pub);
    unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_priv);
    unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", b_pub);
    unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", shared);
    CHECK_EQ(espnow_sec_crypto_x25519_public(a_priv, out), ESP_OK);
    CHECK_MEM(out, a_pub, 32);
    CHECK_EQ(espnow_sec_crypto_x25519_public(b_priv, out), ESP_OK);
    CHECK_MEM(out, b_pub, 32);
    CHECK_EQ(espnow_sec_crypto_x25519(a_priv, b_pub, s1), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_x25519(b_priv, a_pub, s2), ESP_OK);
    CHECK_MEM(s1, shared, 32);
    CHECK_MEM(s2, shared, 32);
}

/* Low-order points give an all-zero secret and must be refused (RFC 7748 §6.1). */
static void test_x25519_rejects_low_order(void)
{
    uint8_t a_priv[32], zero[32] = {0}, one[32] = {1}, out[32];
    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_priv);
    memset(out, 0xAA, sizeof(out));
    CHECK_EQ(espnow_sec_crypto_x25519(a_priv, zero, out), ESP_ERR_INVALID_ARG);
    CHECK(espnow_sec_ct_is_zero(out, 32)); /* wiped, not left half-written */
    CHECK_EQ(espnow_sec_crypto_x25519(a_priv, one, out), ESP_ERR_INVALID_ARG);
}

/* FIPS 180-2 Appendix B.1: SHA-256("abc"). */
static void test_sha256_fips180(void)
{
    uint8_t want[32], out[32];
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want);
    CHECK_EQ(espnow_sec_crypto_sha256((const uint8_t *)"abc", 3, out), ESP_OK);
    CHECK_MEM(out, want, 32);
}

/* NIST SP 800-38A F.5.5 CTR-AES256.Encrypt, all four blocks. */
static const char *const CTR_KEY = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
static const char *const CTR_IV = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
static const char *const CTR_PT = "6bc1bee22e409f96e93d7e117393172a"
                                  "ae2d8a571e03ac9c9eb76fac45af8e51"
                                  "30c81c46a35ce411e5fbc1191a0a52ef"
                                  "f69f2445df4f9b17ad2b417be66c3710";
static const char *const CTR_CT = "601ec313775789a5b7a7f504bbf3d228"
                                  "f443e3ca4d62b59aca84e990cacaf5c5"
                                  "2b0930daa23de94ce87017ba2d84988d"
                                  "dfc9c58db67aada613c2dd08457941a6";

static void test_aes256_ctr_sp800_38a(void)
{
    uint8_t key[32], iv[16], pt[64], ct[64], out[64];
    unhex(CTR_KEY, key);
    unhex(CTR_IV, iv);
    unhex(CTR_PT, pt);
    unhex(CTR_CT, ct);
    CHECK_EQ(espnow_sec_crypto_aes256_ctr(key, iv, 0, pt, out, 64), ESP_OK);
    CHECK_MEM(out, ct, 64);
    /* decryption is the same operation */
    CHECK_EQ(espnow_sec_crypto_aes256_ctr(key, iv, 0, ct, out, 64), ESP_OK);
    CHECK_MEM(out, pt, 64);
    /* in place */
    memcpy(out, pt, 64);
    CHECK_EQ(espnow_sec_crypto_aes256_ctr(key, iv, 0, out, out, 64), ESP_OK);
    CHECK_MEM(out, ct, 64);
}

/* The same vector fed in odd-sized pieces: one continuous stream, partial blocks carry over. */
static void test_aes256_ctr_stream_continuity(void)
{
    uint8_t key[32], iv[16], pt[64], ct[64], out[64];
    unhex(CTR_KEY, key);
    unhex(CTR_IV, iv);
    unhex(CTR_PT, pt);
    unhex(CTR_CT, ct);
    static const size_t pieces[][8] = {
        {1, 2, 3, 5, 7, 11, 13, 22}, {15, 1, 16, 17, 15, 0, 0, 0}, {5, 27, 32, 0, 0, 0, 0, 0},
        {31, 33, 0, 0, 0, 0, 0, 0},  {64, 0, 0, 0, 0, 0, 0, 0},
    };
    for (size_t v = 0; v < sizeof(pieces) / sizeof(pieces[0]); v++) {
        memset(out, 0, sizeof(out));
        uint32_t off = 0;
        for (size_t i = 0; i < 8 && pieces[v][i] != 0; i++) {
            CHECK_EQ(espnow_sec_crypto_aes256_ctr(key, iv, off, &pt[off], &out[off], pieces[v][i]), ESP_OK);
            off += (uint32_t)pieces[v][i];
        }
        CHECK_EQ(off, 64);
        CHECK_MEM(out, ct, 64);
    }
}

/* NIST SP 800-38C Appendix C, Example 1: Tlen 32 (4-byte tag), 7-byte nonce, 8-byte AAD. */
static void test_ccm_sp800_38c_example1(void)
{
    uint8_t key[16], nonce[7], aad[8], pt[4], want[8], out[8], back[4];
    unhex("404142434445464748494a4b4c4d4e4f", key);
    unhex("10111213141516", nonce);
    unhex("0001020304050607", aad);
    unhex("20212223", pt);
    unhex("7162015b4dac255d", want);
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 4), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 7, aad, 8, pt, 4, out), ESP_OK);
    CHECK_MEM(out, want, 8);
    CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 7, aad, 8, want, 8, back), ESP_OK);
    CHECK_MEM(back, pt, 4);
    /* any flipped bit: not authentic, nothing released */
    for (size_t i = 0; i < 8 * 8; i++) {
        uint8_t bad[8];
        memcpy(bad, want, 8);
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        memset(back, 0x55, sizeof(back));
        CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 7, aad, 8, bad, 8, back), ESP_ERR_ESPNOW_SEC_AUTH);
        CHECK(espnow_sec_ct_is_zero(back, 4));
    }
    aad[0] ^= 1;
    CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 7, aad, 8, want, 8, back), ESP_ERR_ESPNOW_SEC_AUTH);
    espnow_sec_crypto_ccm_key_destroy(&k);
    CHECK_EQ(k.id, 0);
    /* a destroyed key is refused, not silently used */
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 7, aad, 8, pt, 4, out), ESP_ERR_INVALID_ARG);
}

/* NIST SP 800-38C Appendix C, Example 2: Tlen 48, 8-byte nonce (the compat data nonce size). */
static void test_ccm_sp800_38c_example2(void)
{
    uint8_t key[16], nonce[8], aad[16], pt[16], want[22], out[22];
    unhex("404142434445464748494a4b4c4d4e4f", key);
    unhex("1011121314151617", nonce);
    unhex("000102030405060708090a0b0c0d0e0f", aad);
    unhex("202122232425262728292a2b2c2d2e2f", pt);
    unhex("d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd", want);
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 6), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 8, aad, 16, pt, 16, out), ESP_OK);
    CHECK_MEM(out, want, 22);
    espnow_sec_crypto_ccm_key_destroy(&k);
}

/* RFC 3610 §8, Packet Vector #1: 13-byte nonce, 8 header bytes as AAD, M = 8. */
static void test_ccm_rfc3610_vector1(void)
{
    uint8_t key[16], nonce[13], pkt[31], want[39], out[31], back[23];
    unhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", key);
    unhex("00000003020100a0a1a2a3a4a5", nonce);
    unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e", pkt);
    unhex("0001020304050607588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0", want);
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 8), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 13, pkt, 8, &pkt[8], 23, out), ESP_OK);
    CHECK_MEM(out, &want[8], 31);
    CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 13, pkt, 8, &want[8], 31, back), ESP_OK);
    CHECK_MEM(back, &pkt[8], 23);
    espnow_sec_crypto_ccm_key_destroy(&k);
}

static void test_ccm_argument_checks(void)
{
    uint8_t key[16] = {0}, nonce[13] = {0}, buf[32] = {0}, out[32];
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 3), ESP_ERR_INVALID_ARG);
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 15, 4), ESP_ERR_INVALID_ARG);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 8, NULL, 0, buf, 4, out), ESP_ERR_INVALID_ARG); /* no key */
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 4), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 6, NULL, 0, buf, 4, out), ESP_ERR_INVALID_ARG);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 14, NULL, 0, buf, 4, out), ESP_ERR_INVALID_ARG);
    CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 8, NULL, 0, buf, 3, out), ESP_ERR_INVALID_ARG);
    /* empty plaintext: the tag alone */
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 8, NULL, 0, NULL, 0, out), ESP_OK);
    CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 8, NULL, 0, out, 4, buf), ESP_OK);
    /* importing over a held key would leak its PSA slot: refused, the held key still works */
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 4), ESP_ERR_INVALID_ARG);
    CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 8, NULL, 0, NULL, 0, out), ESP_OK);
    espnow_sec_crypto_ccm_key_destroy(&k);
    espnow_sec_crypto_ccm_key_destroy(&k); /* twice is harmless */
}

/*
 * PSA key slots are a small per-process pool (Mbed TLS 2.28: 32 volatile slots). A CCM key is
 * held for its owner's lifetime and used for many frames; every other primitive imports and
 * destroys its key within the call. 200 rounds of each would exhaust the pool on any leak.
 */
static void test_psa_key_slots_not_leaked(void)
{
    uint8_t key[16] = {1}, nonce[8] = {2}, pt[20] = {3}, ct[24], back[20];
    uint8_t priv[32] = {9}, pub[32], shared[32], iv[16] = {0}, k256[32] = {7}, ks[40];
    espnow_sec_ccm_key_t k = {0};
    CHECK_EQ(espnow_sec_crypto_ccm_key_import(&k, key, 16, 4), ESP_OK);
    for (int i = 0; i < 200; i++) {
        nonce[0] = (uint8_t)i;
        CHECK_EQ(espnow_sec_crypto_ccm_seal(&k, nonce, 8, NULL, 0, pt, sizeof(pt), ct), ESP_OK);
        CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 8, NULL, 0, ct, sizeof(ct), back), ESP_OK);
        ct[0] ^= 1;
        CHECK_EQ(espnow_sec_crypto_ccm_open(&k, nonce, 8, NULL, 0, ct, sizeof(ct), back), ESP_ERR_ESPNOW_SEC_AUTH);
        CHECK_EQ(espnow_sec_crypto_x25519_public(priv, pub), ESP_OK);
        CHECK_EQ(espnow_sec_crypto_x25519(priv, pub, shared), ESP_OK);
        CHECK_EQ(espnow_sec_crypto_aes256_ctr(k256, iv, (uint32_t)i, ks, ks, sizeof(ks)), ESP_OK);
    }
    espnow_sec_crypto_ccm_key_destroy(&k);
    for (int i = 0; i < 200; i++) { /* import/destroy cycles give every slot back */
        espnow_sec_ccm_key_t t = {0};
        CHECK_EQ(espnow_sec_crypto_ccm_key_import(&t, key, 16, 4), ESP_OK);
        espnow_sec_crypto_ccm_key_destroy(&t);
    }
}

static void test_ct_helpers(void)
{
    uint8_t a[5] = {1, 2, 3, 4, 5}, b[5] = {1, 2, 3, 4, 5};
    CHECK(espnow_sec_ct_equal(a, b, 5));
    b[4] ^= 0x80;
    CHECK(!espnow_sec_ct_equal(a, b, 5));
    CHECK(espnow_sec_ct_equal(a, b, 0));
    espnow_sec_memzero(a, sizeof(a));
    CHECK(espnow_sec_ct_is_zero(a, sizeof(a)));
}

int main(void)
{
    if (espnow_sec_crypto_init() != ESP_OK) {
        printf("psa_crypto_init failed\n");
        return 1;
    }
    RUN(test_x25519_rfc7748_5_2);
    RUN(test_x25519_rfc7748_6_1);
    RUN(test_x25519_rejects_low_order);
    RUN(test_sha256_fips180);
    RUN(test_aes256_ctr_sp800_38a);
    RUN(test_aes256_ctr_stream_continuity);
    RUN(test_ccm_sp800_38c_example1);
    RUN(test_ccm_sp800_38c_example2);
    RUN(test_ccm_rfc3610_vector1);
    RUN(test_ccm_argument_checks);
    RUN(test_psa_key_slots_not_leaked);
    RUN(test_ct_helpers);
    HARNESS_END();
}

/*
 * hs_compat.h - protocomm security1 as used by esp-now 2.x security: the spec's
 * functions, apart from the role state machines (compat_initiator.c / compat_responder.c).
 *
 * Every intermediate value of a handshake can be reproduced with these functions from
 * injected ephemerals (the vector tests do exactly that):
 *   SessionData build/parse   reference/protocomm-security.md §1, §4.1
 *   sym_key                   X25519(own, peer) XOR SHA-256(PoP) (no XOR for an empty PoP), §4.2
 *   CTR stream                AES-256-CTR, key sym_key, IV device_random, ONE stream for both
 *                             directions: [0,32) Cmd1, [32,64) Resp1, [64,96) KEY,
 *                             [96,128) KEY_RESP (upstream §2.4-2.5, protocomm §4.3)
 *   KEY / KEY_RESP records    {3|4, 32, CTR(app_key)} (upstream §2.5)
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ESPNOW_SEC_COMPAT_PUB_LEN 32
#define ESPNOW_SEC_COMPAT_RANDOM_LEN 16
#define ESPNOW_SEC_COMPAT_VERIFY_LEN 32
#define ESPNOW_SEC_COMPAT_KEY_LEN 32

/* Encoded SessionData sizes with 32-byte keys and a 16-byte random (upstream §2.4 table). */
#define ESPNOW_SEC_COMPAT_CMD0_LEN 41
#define ESPNOW_SEC_COMPAT_RESP0_LEN 61
#define ESPNOW_SEC_COMPAT_CMD1_LEN 43
#define ESPNOW_SEC_COMPAT_RESP1_LEN 43
/** Room for any SessionData we build. */
#define ESPNOW_SEC_COMPAT_MSG_MAX 64
/** KEY / KEY_RESP record: {type, 32, 32 bytes}. */
#define ESPNOW_SEC_COMPAT_KEY_RECORD_LEN (2 + ESPNOW_SEC_COMPAT_KEY_LEN)

/* Keystream offsets of the four encrypted items (one stream, both directions). */
#define ESPNOW_SEC_COMPAT_OFF_CMD1 0u
#define ESPNOW_SEC_COMPAT_OFF_RESP1 32u
#define ESPNOW_SEC_COMPAT_OFF_KEY 64u
#define ESPNOW_SEC_COMPAT_OFF_KEY_RESP 96u

/** Sec1Payload.msg (sec1.proto Sec1MsgType). */
typedef enum {
    ESPNOW_SEC_SEC1_CMD0 = 0,
    ESPNOW_SEC_SEC1_RESP0 = 1,
    ESPNOW_SEC_SEC1_CMD1 = 2,
    ESPNOW_SEC_SEC1_RESP1 = 3,
} espnow_sec_sec1_msg_t;

/** One security1 message, flattened. Which fields count depends on `msg`. */
typedef struct {
    espnow_sec_sec1_msg_t msg;
    uint8_t pub[ESPNOW_SEC_COMPAT_PUB_LEN];       /**< CMD0 client_pubkey / RESP0 device_pubkey */
    uint8_t random[ESPNOW_SEC_COMPAT_RANDOM_LEN]; /**< RESP0 device_random */
    uint8_t verify[ESPNOW_SEC_COMPAT_VERIFY_LEN]; /**< CMD1 client_verify_data / RESP1 device_verify_data */
} espnow_sec_sec1_t;

/**
 * Encode `m` as SessionData{sec_ver=SecScheme1, sec1{msg, sc0|sr0|sc1|sr1}} (proto3,
 * status=Success omitted). ESP_ERR_INVALID_SIZE if `cap` is too small.
 */
esp_err_t espnow_sec_compat_build(const espnow_sec_sec1_t *m, uint8_t *out, size_t cap,
                                  size_t *out_len);

/**
 * Decode a SessionData. ESP_ERR_ESPNOW_SEC_MALFORMED unless: it parses; sec_ver is
 * SecScheme1; the oneof holds sec1; msg and the payload case agree (protocomm "oneof type
 * confusion"); the payload is present; status is Success; every key/random/verifier has
 * its exact length. Uses no heap: protobuf-c unpacks into a bounded arena on the stack.
 */
esp_err_t espnow_sec_compat_parse(const uint8_t *buf, size_t len, espnow_sec_sec1_t *out);

/** SHA-256 of the PoP bytes (no terminating NUL). */
esp_err_t espnow_sec_compat_pop_hash(const uint8_t *pop, size_t pop_len, uint8_t out[32]);

/** sym_key = shared XOR pop_hash; pop_hash NULL (empty PoP) -> sym_key = shared. */
void espnow_sec_compat_sym_key(const uint8_t shared[32], const uint8_t *pop_hash, uint8_t sym_key[32]);

/**
 * X25519(own_priv, peer_pub) then espnow_sec_compat_sym_key(). pop_hash NULL = no PoP.
 * ESP_ERR_INVALID_ARG for an invalid or low-order peer key (all-zero shared secret).
 */
esp_err_t espnow_sec_compat_derive(const uint8_t own_priv[32], const uint8_t peer_pub[32],
                                   const uint8_t *pop_hash, uint8_t sym_key[32]);

/** Same as espnow_sec_compat_derive(), with the PoP as bytes (len 0 = no PoP). */
esp_err_t espnow_sec_compat_derive_pop(const uint8_t own_priv[32], const uint8_t peer_pub[32],
                                       const uint8_t *pop, size_t pop_len, uint8_t sym_key[32]);

/** The session's AES-256-CTR stream. */
typedef struct {
    uint8_t key[32];                              /**< sym_key */
    uint8_t iv[ESPNOW_SEC_COMPAT_RANDOM_LEN];     /**< device_random: initial counter block */
    uint32_t offset;                              /**< next byte, for _next() */
} espnow_sec_compat_ctr_t;

void espnow_sec_compat_ctr_init(espnow_sec_compat_ctr_t *c, const uint8_t sym_key[32],
                                const uint8_t device_random[ESPNOW_SEC_COMPAT_RANDOM_LEN]);
/** XOR `len` keystream bytes starting at stream byte `offset` (random access). */
esp_err_t espnow_sec_compat_ctr_at(const espnow_sec_compat_ctr_t *c, uint32_t offset,
                                   const uint8_t *in, uint8_t *out, size_t len);
/** XOR at c->offset and advance it: the continuing stream, records of any length. */
esp_err_t espnow_sec_compat_ctr_next(espnow_sec_compat_ctr_t *c, const uint8_t *in, uint8_t *out,
                                     size_t len);
void espnow_sec_compat_ctr_wipe(espnow_sec_compat_ctr_t *c);

/** client_verify_data = CTR[0,32)(device_pub). */
esp_err_t espnow_sec_compat_client_verify(const espnow_sec_compat_ctr_t *c,
                                          const uint8_t device_pub[32], uint8_t out[32]);
/** device_verify_data = CTR[32,64)(client_pub). */
esp_err_t espnow_sec_compat_device_verify(const espnow_sec_compat_ctr_t *c,
                                          const uint8_t client_pub[32], uint8_t out[32]);
/**
 * Decrypt `verify` at `offset` and compare with `expect` in constant time.
 * ESP_OK on match, ESP_ERR_ESPNOW_SEC_AUTH on mismatch (a different PoP).
 */
esp_err_t espnow_sec_compat_check_verify(const espnow_sec_compat_ctr_t *c, uint32_t offset,
                                         const uint8_t verify[32], const uint8_t expect[32]);

/** KEY record {3, 32, CTR[64,96)(app_key)}. */
esp_err_t espnow_sec_compat_key_record(const espnow_sec_compat_ctr_t *c, const uint8_t app_key[32],
                                       uint8_t out[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN]);
/** KEY_RESP record {4, 32, CTR[96,128)(echo)}: the responder echoes the app key. */
esp_err_t espnow_sec_compat_key_resp_record(const espnow_sec_compat_ctr_t *c, const uint8_t echo[32],
                                            uint8_t out[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN]);
/** Decrypt a KEY record's 32 data bytes (CTR at 64). */
esp_err_t espnow_sec_compat_open_key(const espnow_sec_compat_ctr_t *c, const uint8_t ct[32],
                                     uint8_t app_key[32]);
/** Decrypt a KEY_RESP's data (CTR at 96) and compare with app_key in constant time. */
esp_err_t espnow_sec_compat_check_key_resp(const espnow_sec_compat_ctr_t *c, const uint8_t ct[32],
                                           const uint8_t app_key[32]);

#ifdef __cplusplus
}
#endif

/*
 * hs_compat.c - protocomm security1 messages, key derivation and the CTR stream
 * (reference/protocomm-security.md §1, §4; upstream-espnow-security.md §2.4-2.5).
 */
#include "hs_compat.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "crypto.h"
#include "frame.h"
#include "espnow_sec_session.pb-c.h"

/*
 * protobuf-c allocates while unpacking. Instead of the heap we give it a bump arena on
 * the stack: a SessionData of <= 230 bytes needs a few hundred bytes; a message stuffed
 * with unknown fields simply exhausts the arena and is rejected as malformed.
 */
#define ARENA_SIZE 768

typedef struct {
    alignas(max_align_t) uint8_t buf[ARENA_SIZE];
    size_t used;
} arena_t;

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    size_t align = alignof(max_align_t);
    size_t start = (a->used + align - 1) & ~(align - 1);
    if (size > ARENA_SIZE || start > ARENA_SIZE - size) {
        return NULL;
    }
    a->used = start + size;
    return &a->buf[start];
}

static void arena_free(void *data, void *ptr)
{
    (void)data; /* released all at once when the arena goes out of scope */
    (void)ptr;
}

esp_err_t espnow_sec_compat_build(const espnow_sec_sec1_t *m, uint8_t *out, size_t cap,
                                  size_t *out_len)
{
    if (m == NULL || out == NULL || out_len == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    EspnowSecPb__SessionData sd = ESPNOW_SEC_PB__SESSION_DATA__INIT;
    EspnowSecPb__Sec1Payload p = ESPNOW_SEC_PB__SEC1_PAYLOAD__INIT;
    EspnowSecPb__SessionCmd0 c0 = ESPNOW_SEC_PB__SESSION_CMD0__INIT;
    EspnowSecPb__SessionResp0 r0 = ESPNOW_SEC_PB__SESSION_RESP0__INIT;
    EspnowSecPb__SessionCmd1 c1 = ESPNOW_SEC_PB__SESSION_CMD1__INIT;
    EspnowSecPb__SessionResp1 r1 = ESPNOW_SEC_PB__SESSION_RESP1__INIT;

    sd.sec_ver = ESPNOW_SEC_PB__SEC_SCHEME_VERSION__SecScheme1;
    sd.proto_case = ESPNOW_SEC_PB__SESSION_DATA__PROTO_SEC1;
    sd.sec1 = &p;
    /* protobuf-c's ProtobufCBinaryData.data is not const; it is only read by pack. */
    switch (m->msg) {
    case ESPNOW_SEC_SEC1_CMD0:
        p.msg = ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Command0;
        p.payload_case = ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SC0;
        p.sc0 = &c0;
        c0.client_pubkey.data = (uint8_t *)m->pub;
        c0.client_pubkey.len = ESPNOW_SEC_COMPAT_PUB_LEN;
        break;
    case ESPNOW_SEC_SEC1_RESP0:
        p.msg = ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Response0;
        p.payload_case = ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SR0;
        p.sr0 = &r0;
        r0.status = ESPNOW_SEC_PB__STATUS__Success;
        r0.device_pubkey.data = (uint8_t *)m->pub;
        r0.device_pubkey.len = ESPNOW_SEC_COMPAT_PUB_LEN;
        r0.device_random.data = (uint8_t *)m->random;
        r0.device_random.len = ESPNOW_SEC_COMPAT_RANDOM_LEN;
        break;
    case ESPNOW_SEC_SEC1_CMD1:
        p.msg = ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Command1;
        p.payload_case = ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SC1;
        p.sc1 = &c1;
        c1.client_verify_data.data = (uint8_t *)m->verify;
        c1.client_verify_data.len = ESPNOW_SEC_COMPAT_VERIFY_LEN;
        break;
    case ESPNOW_SEC_SEC1_RESP1:
        p.msg = ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Response1;
        p.payload_case = ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SR1;
        p.sr1 = &r1;
        r1.status = ESPNOW_SEC_PB__STATUS__Success;
        r1.device_verify_data.data = (uint8_t *)m->verify;
        r1.device_verify_data.len = ESPNOW_SEC_COMPAT_VERIFY_LEN;
        break;
    default:
        return ESP_ERR_INVALID_ARG;
    }
    size_t need = espnow_sec_pb__session_data__get_packed_size(&sd);
    if (need > cap) {
        return ESP_ERR_INVALID_SIZE;
    }
    size_t got = espnow_sec_pb__session_data__pack(&sd, out);
    if (got != need) {
        return ESP_FAIL;
    }
    *out_len = got;
    return ESP_OK;
}

static bool bytes_ok(const ProtobufCBinaryData *b, size_t want)
{
    return b->len == want && b->data != NULL;
}

/* Check the unpacked message against the rules of §4.4 and flatten it. */
static esp_err_t flatten(const EspnowSecPb__SessionData *sd, espnow_sec_sec1_t *out)
{
    if (sd->sec_ver != ESPNOW_SEC_PB__SEC_SCHEME_VERSION__SecScheme1 ||
        sd->proto_case != ESPNOW_SEC_PB__SESSION_DATA__PROTO_SEC1 || sd->sec1 == NULL) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    const EspnowSecPb__Sec1Payload *p = sd->sec1;
    switch (p->msg) {
    case ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Command0:
        if (p->payload_case != ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SC0 || p->sc0 == NULL ||
            !bytes_ok(&p->sc0->client_pubkey, ESPNOW_SEC_COMPAT_PUB_LEN)) {
            return ESP_ERR_ESPNOW_SEC_MALFORMED;
        }
        out->msg = ESPNOW_SEC_SEC1_CMD0;
        memcpy(out->pub, p->sc0->client_pubkey.data, ESPNOW_SEC_COMPAT_PUB_LEN);
        return ESP_OK;
    case ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Response0:
        if (p->payload_case != ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SR0 || p->sr0 == NULL ||
            p->sr0->status != ESPNOW_SEC_PB__STATUS__Success ||
            !bytes_ok(&p->sr0->device_pubkey, ESPNOW_SEC_COMPAT_PUB_LEN) ||
            !bytes_ok(&p->sr0->device_random, ESPNOW_SEC_COMPAT_RANDOM_LEN)) {
            return ESP_ERR_ESPNOW_SEC_MALFORMED;
        }
        out->msg = ESPNOW_SEC_SEC1_RESP0;
        memcpy(out->pub, p->sr0->device_pubkey.data, ESPNOW_SEC_COMPAT_PUB_LEN);
        memcpy(out->random, p->sr0->device_random.data, ESPNOW_SEC_COMPAT_RANDOM_LEN);
        return ESP_OK;
    case ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Command1:
        if (p->payload_case != ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SC1 || p->sc1 == NULL ||
            !bytes_ok(&p->sc1->client_verify_data, ESPNOW_SEC_COMPAT_VERIFY_LEN)) {
            return ESP_ERR_ESPNOW_SEC_MALFORMED;
        }
        out->msg = ESPNOW_SEC_SEC1_CMD1;
        memcpy(out->verify, p->sc1->client_verify_data.data, ESPNOW_SEC_COMPAT_VERIFY_LEN);
        return ESP_OK;
    case ESPNOW_SEC_PB__SEC1_MSG_TYPE__Session_Response1:
        if (p->payload_case != ESPNOW_SEC_PB__SEC1_PAYLOAD__PAYLOAD_SR1 || p->sr1 == NULL ||
            p->sr1->status != ESPNOW_SEC_PB__STATUS__Success ||
            !bytes_ok(&p->sr1->device_verify_data, ESPNOW_SEC_COMPAT_VERIFY_LEN)) {
            return ESP_ERR_ESPNOW_SEC_MALFORMED;
        }
        out->msg = ESPNOW_SEC_SEC1_RESP1;
        memcpy(out->verify, p->sr1->device_verify_data.data, ESPNOW_SEC_COMPAT_VERIFY_LEN);
        return ESP_OK;
    default:
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
}

esp_err_t espnow_sec_compat_parse(const uint8_t *buf, size_t len, espnow_sec_sec1_t *out)
{
    if (out == NULL || (buf == NULL && len != 0)) {
        return ESP_ERR_INVALID_ARG;
    }
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > ESPNOW_SEC_PAYLOAD_MAX) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    arena_t arena;
    arena.used = 0;
    ProtobufCAllocator alloc = {
        .alloc = arena_alloc,
        .free = arena_free,
        .allocator_data = &arena,
    };
    EspnowSecPb__SessionData *sd = espnow_sec_pb__session_data__unpack(&alloc, len, buf);
    if (sd == NULL) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    esp_err_t err = flatten(sd, out);
    espnow_sec_pb__session_data__free_unpacked(sd, &alloc);
    if (err != ESP_OK) {
        memset(out, 0, sizeof(*out));
    }
    return err;
}

esp_err_t espnow_sec_compat_pop_hash(const uint8_t *pop, size_t pop_len, uint8_t out[32])
{
    return espnow_sec_crypto_sha256(pop, pop_len, out);
}

void espnow_sec_compat_sym_key(const uint8_t shared[32], const uint8_t *pop_hash, uint8_t sym_key[32])
{
    for (size_t i = 0; i < 32; i++) {
        sym_key[i] = (uint8_t)(shared[i] ^ (pop_hash != NULL ? pop_hash[i] : 0));
    }
}

esp_err_t espnow_sec_compat_derive(const uint8_t own_priv[32], const uint8_t peer_pub[32],
                                   const uint8_t *pop_hash, uint8_t sym_key[32])
{
    uint8_t shared[32];
    esp_err_t err = espnow_sec_crypto_x25519(own_priv, peer_pub, shared);
    if (err == ESP_OK) {
        espnow_sec_compat_sym_key(shared, pop_hash, sym_key);
    }
    espnow_sec_memzero(shared, sizeof(shared));
    return err;
}

esp_err_t espnow_sec_compat_derive_pop(const uint8_t own_priv[32], const uint8_t peer_pub[32],
                                       const uint8_t *pop, size_t pop_len, uint8_t sym_key[32])
{
    uint8_t hash[32];
    const uint8_t *h = NULL;
    if (pop_len != 0) { /* an empty PoP is no PoP: nothing is XORed (§4.5) */
        esp_err_t err = espnow_sec_compat_pop_hash(pop, pop_len, hash);
        if (err != ESP_OK) {
            return err;
        }
        h = hash;
    }
    esp_err_t err = espnow_sec_compat_derive(own_priv, peer_pub, h, sym_key);
    espnow_sec_memzero(hash, sizeof(hash));
    return err;
}

void espnow_sec_compat_ctr_init(espnow_sec_compat_ctr_t *c, const uint8_t sym_key[32],
                                const uint8_t device_random[ESPNOW_SEC_COMPAT_RANDOM_LEN])
{
    memcpy(c->key, sym_key, sizeof(c->key));
    memcpy(c->iv, device_random, sizeof(c->iv));
    c->offset = 0;
}

esp_err_t espnow_sec_compat_ctr_at(const espnow_sec_compat_ctr_t *c, uint32_t offset,
                                   const uint8_t *in, uint8_t *out, size_t len)
{
    return espnow_sec_crypto_aes256_ctr(c->key, c->iv, offset, in, out, len);
}

esp_err_t espnow_sec_compat_ctr_next(espnow_sec_compat_ctr_t *c, const uint8_t *in, uint8_t *out,
                                     size_t len)
{
    if (len > UINT32_MAX - c->offset) {
        return ESP_ERR_INVALID_SIZE;
    }
    esp_err_t err = espnow_sec_compat_ctr_at(c, c->offset, in, out, len);
    if (err == ESP_OK) {
        c->offset += (uint32_t)len;
    }
    return err;
}

void espnow_sec_compat_ctr_wipe(espnow_sec_compat_ctr_t *c)
{
    espnow_sec_memzero(c, sizeof(*c));
}

esp_err_t espnow_sec_compat_client_verify(const espnow_sec_compat_ctr_t *c,
                                          const uint8_t device_pub[32], uint8_t out[32])
{
    return espnow_sec_compat_ctr_at(c, ESPNOW_SEC_COMPAT_OFF_CMD1, device_pub, out, 32);
}

esp_err_t espnow_sec_compat_device_verify(const espnow_sec_compat_ctr_t *c,
                                          const uint8_t client_pub[32], uint8_t out[32])
{
    return espnow_sec_compat_ctr_at(c, ESPNOW_SEC_COMPAT_OFF_RESP1, client_pub, out, 32);
}

esp_err_t espnow_sec_compat_check_verify(const espnow_sec_compat_ctr_t *c, uint32_t offset,
                                         const uint8_t verify[32], const uint8_t expect[32])
{
    uint8_t plain[32];
    esp_err_t err = espnow_sec_compat_ctr_at(c, offset, verify, plain, sizeof(plain));
    if (err == ESP_OK && !espnow_sec_ct_equal(plain, expect, sizeof(plain))) {
        err = ESP_ERR_ESPNOW_SEC_AUTH;
    }
    espnow_sec_memzero(plain, sizeof(plain));
    return err;
}

static esp_err_t key_record(const espnow_sec_compat_ctr_t *c, uint8_t type, uint32_t offset,
                            const uint8_t in[32], uint8_t out[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN])
{
    out[0] = type;
    out[1] = ESPNOW_SEC_COMPAT_KEY_LEN;
    return espnow_sec_compat_ctr_at(c, offset, in, &out[2], ESPNOW_SEC_COMPAT_KEY_LEN);
}

esp_err_t espnow_sec_compat_key_record(const espnow_sec_compat_ctr_t *c, const uint8_t app_key[32],
                                       uint8_t out[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN])
{
    return key_record(c, ESPNOW_SEC_R_KEY, ESPNOW_SEC_COMPAT_OFF_KEY, app_key, out);
}

esp_err_t espnow_sec_compat_key_resp_record(const espnow_sec_compat_ctr_t *c, const uint8_t echo[32],
                                            uint8_t out[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN])
{
    return key_record(c, ESPNOW_SEC_R_KEY_RESP, ESPNOW_SEC_COMPAT_OFF_KEY_RESP, echo, out);
}

esp_err_t espnow_sec_compat_open_key(const espnow_sec_compat_ctr_t *c, const uint8_t ct[32],
                                     uint8_t app_key[32])
{
    return espnow_sec_compat_ctr_at(c, ESPNOW_SEC_COMPAT_OFF_KEY, ct, app_key, 32);
}

esp_err_t espnow_sec_compat_check_key_resp(const espnow_sec_compat_ctr_t *c, const uint8_t ct[32],
                                           const uint8_t app_key[32])
{
    return espnow_sec_compat_check_verify(c, ESPNOW_SEC_COMPAT_OFF_KEY_RESP, ct, app_key);
}

/*
 * frame.h - codec of every compat wire message. All bounds checks live here.
 *
 * Byte layouts: reference/upstream-espnow-security.md §2.1 (the 20-byte header),
 * §2.2-2.5 (inner records, INFO, GROUP) and §2.7 (data frames). Decoders take the
 * real received length and never read past it; encoders take their output capacity.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "espnow_sec.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ESPNOW_SEC_HDR_LEN 20
#define ESPNOW_SEC_WIRE_VERSION 2
/** Largest payload after the header in a v1 frame (upstream ESPNOW_PAYLOAD_LEN). */
#define ESPNOW_SEC_PAYLOAD_MAX (ESPNOW_SEC_FRAME_MAX - ESPNOW_SEC_HDR_LEN)

/* Outer header `type` (upstream espnow_data_type_t, §2.1). */
#define ESPNOW_SEC_T_GROUP 2
#define ESPNOW_SEC_T_DATA 10
#define ESPNOW_SEC_T_SECURITY_STATUS 11
#define ESPNOW_SEC_T_SECURITY 12

/* Inner handshake record type (espnow_sec_type_t, §2.2). */
#define ESPNOW_SEC_R_REQUEST 0
#define ESPNOW_SEC_R_INFO 1
#define ESPNOW_SEC_R_HANDSHAKE 2
#define ESPNOW_SEC_R_KEY 3
#define ESPNOW_SEC_R_KEY_RESP 4
#define ESPNOW_SEC_R_REST 5

/** INFO {type=1, sec_ver, client_mac[6]} (§2.3 step 3). */
#define ESPNOW_SEC_INFO_LEN 8
/** GROUP {op, group_id[6], count, macs[count][6]} (§2.4 step 1). */
#define ESPNOW_SEC_GROUP_HDR_LEN 8
#define ESPNOW_SEC_GROUP_MAX_MACS 32
#define ESPNOW_SEC_GROUP_OP_DEL 0
#define ESPNOW_SEC_GROUP_OP_ADD 1

/** Data frame: C || tag(4) || nonce(8) (§2.7). */
#define ESPNOW_SEC_DATA_TAG_LEN 4
#define ESPNOW_SEC_DATA_NONCE_LEN 8
#define ESPNOW_SEC_DATA_OVERHEAD (ESPNOW_SEC_DATA_TAG_LEN + ESPNOW_SEC_DATA_NONCE_LEN)

_Static_assert(ESPNOW_SEC_PAYLOAD_MAX - ESPNOW_SEC_DATA_OVERHEAD == ESPNOW_SEC_MAX_PAYLOAD_COMPAT,
               "218-byte compat limit (§2.7)");

extern const uint8_t espnow_sec_broadcast_mac[ESPNOW_SEC_ADDR_LEN];
/** The security group id, ASCII "SEC" then three zero bytes (§2.1). */
extern const uint8_t espnow_sec_group_sec[ESPNOW_SEC_ADDR_LEN];

/** The 20-byte outer header, unpacked. */
typedef struct {
    uint8_t type;       /**< 0..15 */
    uint8_t version;    /**< 0..3; we send 2 */
    uint8_t size;       /**< payload length, low 8 bits */
    uint16_t magic;
    uint8_t channel;    /**< 0..15 */
    bool filter_adjacent;
    bool filter_weak;
    bool security;
    bool broadcast;
    bool group;
    bool ack;
    uint8_t retransmit; /**< 0..31 */
    uint8_t ttl;        /**< 0..31 */
    int8_t rssi;
    uint8_t dest[ESPNOW_SEC_ADDR_LEN];
    uint8_t src[ESPNOW_SEC_ADDR_LEN];
} espnow_sec_hdr_t;

/** Pack `h` into 20 bytes. Reserved bits are written as zero (§6.2 item 9). */
void espnow_sec_hdr_encode(const espnow_sec_hdr_t *h, uint8_t out[ESPNOW_SEC_HDR_LEN]);

/**
 * Unpack the 20 header bytes field by field, with no checks on version or `size` (the
 * inverse of espnow_sec_hdr_encode() up to the ignored reserved bits). Received frames go
 * through espnow_sec_hdr_decode(), which calls this after its checks.
 */
void espnow_sec_hdr_unpack(const uint8_t buf[ESPNOW_SEC_HDR_LEN], espnow_sec_hdr_t *h);

/**
 * Unpack the header of a received frame of real length `len`.
 * ESP_ERR_ESPNOW_SEC_MALFORMED: len < 20, len > 250, or `size` != (len - 20) & 0xFF.
 *   (Every upstream sender, <=2.5.3 and HEAD, writes exactly that value, so a mismatch
 *   means a truncated or padded frame; the payload length used is always len - 20.)
 * ESP_ERR_NOT_SUPPORTED: a version other than 2 (not ours: counted as foreign).
 * Reserved bits are ignored.
 */
esp_err_t espnow_sec_hdr_decode(const uint8_t *buf, size_t len, espnow_sec_hdr_t *h);

/** Inner record {type u8, size u8, data[size]} (§2.2). */
typedef struct {
    uint8_t type;
    const uint8_t *data; /**< points into the frame */
    size_t len;
} espnow_sec_record_t;

/**
 * Parse an inner record that fills the whole payload: len >= 2 and size == len - 2.
 * A size byte reaching past the real buffer (truncated record) and bytes after data[size)
 * (trailing garbage) are both ESP_ERR_ESPNOW_SEC_MALFORMED: every upstream sender sends
 * exactly {type, size, data[size]}, and the codec accepts one encoding per message, as it
 * does for REQUEST, INFO and GROUP (vectors/README.md "malformed").
 */
esp_err_t espnow_sec_record_parse(const uint8_t *p, size_t len, espnow_sec_record_t *r);

/** Write {type, len, data}; returns bytes written, 0 if len > 255 or cap too small. */
size_t espnow_sec_record_build(uint8_t *out, size_t cap, uint8_t type, const uint8_t *data,
                               size_t len);

typedef struct {
    uint8_t sec_ver; /**< 0 = not configured, 1 = holds a key */
    uint8_t client_mac[ESPNOW_SEC_ADDR_LEN];
} espnow_sec_info_t;

/** INFO must be exactly 8 bytes starting with type 1. */
esp_err_t espnow_sec_info_parse(const uint8_t *p, size_t len, espnow_sec_info_t *info);
void espnow_sec_info_build(const espnow_sec_info_t *info, uint8_t out[ESPNOW_SEC_INFO_LEN]);

typedef struct {
    uint8_t op;
    uint8_t group[ESPNOW_SEC_ADDR_LEN];
    uint8_t count;
    const uint8_t *macs; /**< count * 6 bytes, into the frame */
} espnow_sec_group_t;

/** GROUP: len >= 8, op 0/1, and 8 + 6 * count == len exactly. */
esp_err_t espnow_sec_group_parse(const uint8_t *p, size_t len, espnow_sec_group_t *g);
/** Build a GROUP payload for up to 32 MACs; returns bytes written or 0. */
size_t espnow_sec_group_build(uint8_t *out, size_t cap, uint8_t op,
                              const uint8_t group[ESPNOW_SEC_ADDR_LEN],
                              const uint8_t (*macs)[ESPNOW_SEC_ADDR_LEN], size_t count);
bool espnow_sec_group_contains(const espnow_sec_group_t *g, const uint8_t mac[ESPNOW_SEC_ADDR_LEN]);

bool espnow_sec_mac_eq(const uint8_t a[ESPNOW_SEC_ADDR_LEN], const uint8_t b[ESPNOW_SEC_ADDR_LEN]);
bool espnow_sec_mac_is_broadcast(const uint8_t a[ESPNOW_SEC_ADDR_LEN]);

#ifdef __cplusplus
}
#endif

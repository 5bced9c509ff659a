/*
 * frame.h - codec of every wire message, compat and v2. All bounds checks live here.
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
#include "espnow_sec_limits.h"

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

/* ==== protocol v2 (docs/PROTOCOL.md §2): every multi-byte field big-endian ==== */

#define ESPNOW_SEC_V2_MAGIC 0xCF
#define ESPNOW_SEC_V2_VERSION 0x02
#define ESPNOW_SEC_V2_CLEAR_HDR_LEN 4
#define ESPNOW_SEC_V2_SEC_HDR_LEN 12
#define ESPNOW_SEC_V2_NONCE_LEN 13
#define ESPNOW_SEC_V2_AAD_LEN 24
#define ESPNOW_SEC_V2_TAG_GRP 8   /* DATA, SYNC: CCM8 (§7.2) */
#define ESPNOW_SEC_V2_TAG_CTL 16  /* CTRL, CTRL_ACK: CCM16 */
#define ESPNOW_SEC_V2_CTR_MAX 0xFFFFFFFFFFFFull /* 2^48 - 1, the last counter value (§7.3) */

/* type codes (§2.3) */
#define ESPNOW_SEC_V2_T_SCAN_REQ 0x01
#define ESPNOW_SEC_V2_T_SCAN_RESP 0x02
#define ESPNOW_SEC_V2_T_HS1 0x10
#define ESPNOW_SEC_V2_T_HS2 0x11
#define ESPNOW_SEC_V2_T_HS3 0x12
#define ESPNOW_SEC_V2_T_HS4 0x13
#define ESPNOW_SEC_V2_T_HS_ERR 0x1F
#define ESPNOW_SEC_V2_T_CTRL 0x20
#define ESPNOW_SEC_V2_T_CTRL_ACK 0x21
#define ESPNOW_SEC_V2_T_DATA 0x30
#define ESPNOW_SEC_V2_T_DATA_PLAIN 0x31
#define ESPNOW_SEC_V2_T_SYNC 0x32

/* exact lengths (§2.3) */
#define ESPNOW_SEC_V2_SCAN_REQ_LEN 8
#define ESPNOW_SEC_V2_SCAN_RESP_LEN 16
#define ESPNOW_SEC_V2_HS1_LEN 41
#define ESPNOW_SEC_V2_HS_LEN 40 /* HS2, HS3, HS4 */
#define ESPNOW_SEC_V2_HS_ERR_LEN 11
#define ESPNOW_SEC_V2_CTRL_KEY_PT 38
#define ESPNOW_SEC_V2_CTRL_UNPROV_PT 1
#define ESPNOW_SEC_V2_CTRL_RESET_PT 3
#define ESPNOW_SEC_V2_CTRL_ACK_PT 28
#define ESPNOW_SEC_V2_CTRL_MAX_LEN (ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_CTRL_KEY_PT + ESPNOW_SEC_V2_TAG_CTL)
#define ESPNOW_SEC_V2_CTRL_ACK_LEN (ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_CTRL_ACK_PT + ESPNOW_SEC_V2_TAG_CTL)
#define ESPNOW_SEC_V2_SYNC_PT 16
#define ESPNOW_SEC_V2_SYNC_LEN (ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_SYNC_PT + ESPNOW_SEC_V2_TAG_GRP)
#define ESPNOW_SEC_V2_DATA_OVERHEAD (ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_TAG_GRP)
/** Largest v2 frame this build sends or accepts (§7.5). */
#define ESPNOW_SEC_V2_FRAME_MAX (ESPNOW_SEC_V2_MAX_PAYLOAD + ESPNOW_SEC_V2_DATA_OVERHEAD)

_Static_assert(ESPNOW_SEC_V2_CTRL_MAX_LEN == 66, "§2.3: largest handshake/control message");
_Static_assert(ESPNOW_SEC_V2_CTRL_ACK_LEN == 56, "§2.3");
_Static_assert(ESPNOW_SEC_V2_SYNC_LEN == 36, "§2.3");
_Static_assert(ESPNOW_SEC_FRAME_MAX - ESPNOW_SEC_V2_DATA_OVERHEAD == ESPNOW_SEC_MAX_PAYLOAD_V2, "§7.5");

/* CTRL ops (§5.1) and CTRL_ACK statuses (§5.2) */
#define ESPNOW_SEC_V2_OP_KEY 0x01
#define ESPNOW_SEC_V2_OP_UNPROVISION 0x02
#define ESPNOW_SEC_V2_OP_RESET 0x03
#define ESPNOW_SEC_V2_KEY_ACTIVATE 0x01
#define ESPNOW_SEC_V2_ST_OK 0
#define ESPNOW_SEC_V2_ST_STALE_EPOCH 1
#define ESPNOW_SEC_V2_ST_EPOCH_CONFLICT 2
#define ESPNOW_SEC_V2_ST_STORE_FAIL 3
#define ESPNOW_SEC_V2_ST_BAD_OP 4

/* HS_ERR codes (§4.1) */
#define ESPNOW_SEC_V2_ERR_BUSY 1
#define ESPNOW_SEC_V2_ERR_PROVISIONED 2
#define ESPNOW_SEC_V2_ERR_POP_MISMATCH 3
#define ESPNOW_SEC_V2_ERR_BAD_KEY 4
#define ESPNOW_SEC_V2_ERR_UNSUPPORTED 5
#define ESPNOW_SEC_V2_ERR_NO_SESSION 6

/* SCAN_RESP state (§3) */
#define ESPNOW_SEC_V2_SCAN_UNPROVISIONED 0
#define ESPNOW_SEC_V2_SCAN_PROVISIONED_BY_YOU 1
#define ESPNOW_SEC_V2_SCAN_PROVISIONED_OTHER 2
#define ESPNOW_SEC_V2_SCAN_REPAIR_OPEN 3

/** Class of a received frame body (§2.1), before any other parsing. */
typedef enum {
    ESPNOW_SEC_CLASS_EMPTY = 0,   /**< len == 0 */
    ESPNOW_SEC_CLASS_V2,          /**< CF 02 ... */
    ESPNOW_SEC_CLASS_V2_UNKNOWN,  /**< CF, other or missing version byte */
    ESPNOW_SEC_CLASS_COMPAT,      /**< (b[0] >> 4) & 3 == 2 */
    ESPNOW_SEC_CLASS_OTHER,
} espnow_sec_frame_class_t;

espnow_sec_frame_class_t espnow_sec_classify(const uint8_t *b, size_t len);

/** A v2 header, unpacked. Secured fields are 0 for clear headers. */
typedef struct {
    uint8_t type;
    bool secured;       /**< 12-byte header (CTRL, CTRL_ACK, DATA, SYNC) */
    uint16_t epoch;
    uint64_t counter;   /**< 48 bit */
} espnow_sec_v2_hdr_t;

/**
 * §2.6 step 2 for a frame already classified V2: len >= 4, known type, flags == 0, total
 * length exactly as §2.3 says (DATA / DATA_PLAIN: payload 1..max_payload). Then the
 * step-3 epoch rule (0 for CTRL/CTRL_ACK, != 0 for DATA/SYNC). ESP_OK or
 * ESP_ERR_ESPNOW_SEC_MALFORMED.
 */
esp_err_t espnow_sec_v2_hdr_decode(const uint8_t *b, size_t len, size_t max_payload,
                                   espnow_sec_v2_hdr_t *h);
void espnow_sec_v2_clear_hdr(uint8_t out[ESPNOW_SEC_V2_CLEAR_HDR_LEN], uint8_t type);
void espnow_sec_v2_sec_hdr(uint8_t out[ESPNOW_SEC_V2_SEC_HDR_LEN], uint8_t type, uint16_t epoch,
                           uint64_t counter);

static inline void espnow_sec_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline uint16_t espnow_sec_get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline void espnow_sec_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    }
}
static inline uint32_t espnow_sec_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void espnow_sec_put_be48(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 6; i++) {
        p[i] = (uint8_t)(v >> (40 - 8 * i));
    }
}
static inline uint64_t espnow_sec_get_be48(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

#ifdef __cplusplus
}
#endif

/*
 * frame.c - compat wire codec (reference/upstream-espnow-security.md §2.1-2.7).
 */
#include "frame.h"

#include <string.h>

const uint8_t espnow_sec_broadcast_mac[ESPNOW_SEC_ADDR_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const uint8_t espnow_sec_group_sec[ESPNOW_SEC_ADDR_LEN] = {'S', 'E', 'C', 0, 0, 0};

bool espnow_sec_mac_eq(const uint8_t a[ESPNOW_SEC_ADDR_LEN], const uint8_t b[ESPNOW_SEC_ADDR_LEN])
{
    return memcmp(a, b, ESPNOW_SEC_ADDR_LEN) == 0; /* addresses are public */
}

bool espnow_sec_mac_is_broadcast(const uint8_t a[ESPNOW_SEC_ADDR_LEN])
{
    return espnow_sec_mac_eq(a, espnow_sec_broadcast_mac);
}

/*
 * Header bit layout (§2.1), little-endian packed bitfields:
 *   b0: type[0:3] version[4:5] reserved[6:7]
 *   b1: size
 *   b2-3: magic (LE)
 *   b4: channel[0:3] filter_adjacent[4] filter_weak[5] security[6] reserved[7]
 *   b5: reserved[0:2] broadcast[3] group[4] ack[5] retransmit bits 0-1 at [6:7]
 *   b6: retransmit bits 2-4 at [0:2], ttl[3:7]
 *   b7: forward rssi (int8)
 *   b8-13 dest, b14-19 src
 */
void espnow_sec_hdr_encode(const espnow_sec_hdr_t *h, uint8_t out[ESPNOW_SEC_HDR_LEN])
{
    out[0] = (uint8_t)((h->type & 0x0F) | ((h->version & 0x03) << 4));
    out[1] = h->size;
    out[2] = (uint8_t)(h->magic & 0xFF);
    out[3] = (uint8_t)(h->magic >> 8);
    out[4] = (uint8_t)((h->channel & 0x0F) | (h->filter_adjacent ? 0x10 : 0) |
                       (h->filter_weak ? 0x20 : 0) | (h->security ? 0x40 : 0));
    out[5] = (uint8_t)((h->broadcast ? 0x08 : 0) | (h->group ? 0x10 : 0) | (h->ack ? 0x20 : 0) |
                       ((h->retransmit & 0x03) << 6));
    out[6] = (uint8_t)(((h->retransmit >> 2) & 0x07) | ((h->ttl & 0x1F) << 3));
    out[7] = (uint8_t)h->rssi;
    memcpy(&out[8], h->dest, ESPNOW_SEC_ADDR_LEN);
    memcpy(&out[14], h->src, ESPNOW_SEC_ADDR_LEN);
}

void espnow_sec_hdr_unpack(const uint8_t buf[ESPNOW_SEC_HDR_LEN], espnow_sec_hdr_t *h)
{
    h->type = buf[0] & 0x0F;
    h->version = (buf[0] >> 4) & 0x03;
    h->size = buf[1];
    h->magic = (uint16_t)(buf[2] | (buf[3] << 8));
    h->channel = buf[4] & 0x0F;
    h->filter_adjacent = (buf[4] & 0x10) != 0;
    h->filter_weak = (buf[4] & 0x20) != 0;
    h->security = (buf[4] & 0x40) != 0;
    h->broadcast = (buf[5] & 0x08) != 0;
    h->group = (buf[5] & 0x10) != 0;
    h->ack = (buf[5] & 0x20) != 0;
    h->retransmit = (uint8_t)(((buf[5] >> 6) & 0x03) | ((buf[6] & 0x07) << 2));
    h->ttl = (uint8_t)(buf[6] >> 3);
    h->rssi = (int8_t)buf[7];
    memcpy(h->dest, &buf[8], ESPNOW_SEC_ADDR_LEN);
    memcpy(h->src, &buf[14], ESPNOW_SEC_ADDR_LEN);
}

esp_err_t espnow_sec_hdr_decode(const uint8_t *buf, size_t len, espnow_sec_hdr_t *h)
{
    if (buf == NULL || h == NULL || len < ESPNOW_SEC_HDR_LEN || len > ESPNOW_SEC_FRAME_MAX) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    /* Version first: a frame of another version is not ours, whatever else it holds. */
    if (((buf[0] >> 4) & 0x03) != ESPNOW_SEC_WIRE_VERSION) {
        return ESP_ERR_NOT_SUPPORTED;
    }
    if (buf[1] != (uint8_t)((len - ESPNOW_SEC_HDR_LEN) & 0xFF)) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    espnow_sec_hdr_unpack(buf, h);
    return ESP_OK;
}

esp_err_t espnow_sec_record_parse(const uint8_t *p, size_t len, espnow_sec_record_t *r)
{
    if (p == NULL || r == NULL || len < 2) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    size_t size = p[1];
    /* Upstream trusted this byte over the real length (§6.2 item 4); we never do, and
     * neither do we accept bytes after the record (frame.h). */
    if (size != len - 2) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    r->type = p[0];
    r->data = &p[2];
    r->len = size;
    return ESP_OK;
}

size_t espnow_sec_record_build(uint8_t *out, size_t cap, uint8_t type, const uint8_t *data,
                               size_t len)
{
    if (out == NULL || len > 0xFF || cap < len + 2 || (data == NULL && len != 0)) {
        return 0;
    }
    out[0] = type;
    out[1] = (uint8_t)len;
    if (len != 0) {
        memmove(&out[2], data, len);
    }
    return len + 2;
}

esp_err_t espnow_sec_info_parse(const uint8_t *p, size_t len, espnow_sec_info_t *info)
{
    if (p == NULL || info == NULL || len != ESPNOW_SEC_INFO_LEN || p[0] != ESPNOW_SEC_R_INFO) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    info->sec_ver = p[1];
    memcpy(info->client_mac, &p[2], ESPNOW_SEC_ADDR_LEN);
    return ESP_OK;
}

void espnow_sec_info_build(const espnow_sec_info_t *info, uint8_t out[ESPNOW_SEC_INFO_LEN])
{
    out[0] = ESPNOW_SEC_R_INFO;
    out[1] = info->sec_ver;
    memcpy(&out[2], info->client_mac, ESPNOW_SEC_ADDR_LEN);
}

esp_err_t espnow_sec_group_parse(const uint8_t *p, size_t len, espnow_sec_group_t *g)
{
    if (p == NULL || g == NULL || len < ESPNOW_SEC_GROUP_HDR_LEN) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (p[0] != ESPNOW_SEC_GROUP_OP_DEL && p[0] != ESPNOW_SEC_GROUP_OP_ADD) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    size_t count = p[7];
    if (ESPNOW_SEC_GROUP_HDR_LEN + count * ESPNOW_SEC_ADDR_LEN != len) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    g->op = p[0];
    memcpy(g->group, &p[1], ESPNOW_SEC_ADDR_LEN);
    g->count = (uint8_t)count;
    g->macs = &p[ESPNOW_SEC_GROUP_HDR_LEN];
    return ESP_OK;
}

size_t espnow_sec_group_build(uint8_t *out, size_t cap, uint8_t op,
                              const uint8_t group[ESPNOW_SEC_ADDR_LEN],
                              const uint8_t (*macs)[ESPNOW_SEC_ADDR_LEN], size_t count)
{
    size_t need = ESPNOW_SEC_GROUP_HDR_LEN + count * ESPNOW_SEC_ADDR_LEN;
    if (out == NULL || count > ESPNOW_SEC_GROUP_MAX_MACS || cap < need ||
        (macs == NULL && count != 0)) {
        return 0;
    }
    out[0] = op;
    memcpy(&out[1], group, ESPNOW_SEC_ADDR_LEN);
    out[7] = (uint8_t)count;
    for (size_t i = 0; i < count; i++) {
        memcpy(&out[ESPNOW_SEC_GROUP_HDR_LEN + i * ESPNOW_SEC_ADDR_LEN], macs[i], ESPNOW_SEC_ADDR_LEN);
    }
    return need;
}

bool espnow_sec_group_contains(const espnow_sec_group_t *g, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    for (size_t i = 0; i < g->count; i++) {
        if (espnow_sec_mac_eq(&g->macs[i * ESPNOW_SEC_ADDR_LEN], mac)) {
            return true;
        }
    }
    return false;
}

/* ==== protocol v2 (docs/PROTOCOL.md §2) ==== */

espnow_sec_frame_class_t espnow_sec_classify(const uint8_t *b, size_t len)
{
    if (b == NULL || len == 0) {
        return ESPNOW_SEC_CLASS_EMPTY;
    }
    if (b[0] == ESPNOW_SEC_V2_MAGIC) {
        return len >= 2 && b[1] == ESPNOW_SEC_V2_VERSION ? ESPNOW_SEC_CLASS_V2
                                                         : ESPNOW_SEC_CLASS_V2_UNKNOWN;
    }
    if (((b[0] >> 4) & 3) == ESPNOW_SEC_WIRE_VERSION) {
        return ESPNOW_SEC_CLASS_COMPAT;
    }
    return ESPNOW_SEC_CLASS_OTHER;
}

/* §2.3: exact length of each type; 0 = variable (checked by the caller's rule). */
static bool v2_len_ok(uint8_t type, size_t len, size_t max_payload, bool *secured)
{
    *secured = false;
    switch (type) {
    case ESPNOW_SEC_V2_T_SCAN_REQ:
        return len == ESPNOW_SEC_V2_SCAN_REQ_LEN;
    case ESPNOW_SEC_V2_T_SCAN_RESP:
        return len == ESPNOW_SEC_V2_SCAN_RESP_LEN;
    case ESPNOW_SEC_V2_T_HS1:
        return len == ESPNOW_SEC_V2_HS1_LEN;
    case ESPNOW_SEC_V2_T_HS2:
    case ESPNOW_SEC_V2_T_HS3:
    case ESPNOW_SEC_V2_T_HS4:
        return len == ESPNOW_SEC_V2_HS_LEN;
    case ESPNOW_SEC_V2_T_HS_ERR:
        return len == ESPNOW_SEC_V2_HS_ERR_LEN;
    case ESPNOW_SEC_V2_T_CTRL:
        *secured = true;
        return len == ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_TAG_CTL + ESPNOW_SEC_V2_CTRL_KEY_PT ||
               len == ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_TAG_CTL + ESPNOW_SEC_V2_CTRL_UNPROV_PT ||
               len == ESPNOW_SEC_V2_SEC_HDR_LEN + ESPNOW_SEC_V2_TAG_CTL + ESPNOW_SEC_V2_CTRL_RESET_PT;
    case ESPNOW_SEC_V2_T_CTRL_ACK:
        *secured = true;
        return len == ESPNOW_SEC_V2_CTRL_ACK_LEN;
    case ESPNOW_SEC_V2_T_DATA:
        *secured = true;
        return len > ESPNOW_SEC_V2_DATA_OVERHEAD && len - ESPNOW_SEC_V2_DATA_OVERHEAD <= max_payload;
    case ESPNOW_SEC_V2_T_DATA_PLAIN:
        return len > ESPNOW_SEC_V2_CLEAR_HDR_LEN && len - ESPNOW_SEC_V2_CLEAR_HDR_LEN <= max_payload;
    case ESPNOW_SEC_V2_T_SYNC:
        *secured = true;
        return len == ESPNOW_SEC_V2_SYNC_LEN;
    default:
        return false; /* unknown type: MALFORMED */
    }
}

esp_err_t espnow_sec_v2_hdr_decode(const uint8_t *b, size_t len, size_t max_payload,
                                   espnow_sec_v2_hdr_t *h)
{
    if (b == NULL || h == NULL || len < ESPNOW_SEC_V2_CLEAR_HDR_LEN || b[0] != ESPNOW_SEC_V2_MAGIC ||
        b[1] != ESPNOW_SEC_V2_VERSION || b[3] != 0 /* flags: all reserved (§2.4) */) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    memset(h, 0, sizeof(*h));
    h->type = b[2];
    if (!v2_len_ok(h->type, len, max_payload, &h->secured)) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (h->secured) {
        h->epoch = espnow_sec_get_be16(&b[4]);
        h->counter = espnow_sec_get_be48(&b[6]);
        bool pairwise = h->type == ESPNOW_SEC_V2_T_CTRL || h->type == ESPNOW_SEC_V2_T_CTRL_ACK;
        if (pairwise ? h->epoch != 0 : h->epoch == 0) {
            return ESP_ERR_ESPNOW_SEC_MALFORMED; /* §2.6 step 3 */
        }
    }
    return ESP_OK;
}

void espnow_sec_v2_clear_hdr(uint8_t out[ESPNOW_SEC_V2_CLEAR_HDR_LEN], uint8_t type)
{
    out[0] = ESPNOW_SEC_V2_MAGIC;
    out[1] = ESPNOW_SEC_V2_VERSION;
    out[2] = type;
    out[3] = 0;
}

void espnow_sec_v2_sec_hdr(uint8_t out[ESPNOW_SEC_V2_SEC_HDR_LEN], uint8_t type, uint16_t epoch,
                           uint64_t counter)
{
    espnow_sec_v2_clear_hdr(out, type);
    espnow_sec_put_be16(&out[4], epoch);
    espnow_sec_put_be48(&out[6], counter);
}

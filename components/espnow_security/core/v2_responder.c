/*
 * v2_responder.c - protocol v2 responder (docs/PROTOCOL.md §3, §4, §5.3, §6.2, §11):
 * scan answers, the handshake with bounded sessions and PoP rate limits, and the
 * authenticated control channel (KEY, UNPROVISION, RESET) from its bound initiator.
 *
 * One handler per received message; every handshake failure ends in fail_session().
 * Nothing is stored before a KEY is installed: a failed or abandoned handshake leaves no
 * trace in flash.
 */
#include <string.h>

#include "node_priv.h"

#define RSP(node) (&(node)->u.v2r)

/* ---- records ---- */

static void fill_record(const espnow_sec_node_t *node, espnow_sec_v2_resp_rec_t *r)
{
    const espnow_sec_v2_rsp_t *rs = RSP((espnow_sec_node_t *)node);
    const espnow_sec_epochs_t *ep = &node->v2.ep;
    memset(r, 0, sizeof(*r));
    memcpy(r->mac_i, rs->mac_i, ESPNOW_SEC_ADDR_LEN);
    memcpy(r->k_dev, rs->k_dev, sizeof(r->k_dev));
    r->ctl_floor = rs->ctl_floor;
    r->cur.epoch = ep->cur.epoch;
    memcpy(r->cur.g, ep->cur.g, sizeof(r->cur.g));
    r->stg.epoch = ep->stg.epoch;
    memcpy(r->stg.g, ep->stg.g, sizeof(r->stg.g));
    r->grace_s = ep->grace_s;
}

static esp_err_t save_record(espnow_sec_node_t *node, const espnow_sec_v2_resp_rec_t *r)
{
    uint8_t buf[ESPNOW_SEC_V2_RESP_LEN];
    espnow_sec_v2_resp_encode(r, buf);
    esp_err_t err = node->env->store_save(node->env->ctx, ESPNOW_SEC_V2_REC_RESP, buf, sizeof(buf));
    espnow_sec_memzero(buf, sizeof(buf));
    return err;
}

esp_err_t espnow_sec_v2r_save(espnow_sec_node_t *node)
{
    espnow_sec_v2_resp_rec_t r;
    fill_record(node, &r);
    esp_err_t err = save_record(node, &r);
    espnow_sec_memzero(&r, sizeof(r));
    return err;
}

static void wipe_session(espnow_sec_v2_rsess_t *s)
{
    espnow_sec_memzero(s, sizeof(*s));
}

static void become_unprovisioned(espnow_sec_node_t *node)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    espnow_sec_ep_wipe(&node->v2.ep);
    rs->provisioned = false;
    rs->repair_open = false;
    rs->ctl_floor = 0;
    espnow_sec_memzero(rs->k_dev, sizeof(rs->k_dev));
    memset(rs->mac_i, 0, sizeof(rs->mac_i));
}

esp_err_t espnow_sec_v2r_erase(espnow_sec_node_t *node)
{
    esp_err_t err = node->env->store_erase(node->env->ctx, ESPNOW_SEC_V2_REC_RESP);
    if (err != ESP_OK) {
        return err;
    }
    become_unprovisioned(node);
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        wipe_session(&RSP(node)->sess[i]);
    }
    return ESP_OK;
}

esp_err_t espnow_sec_v2r_init(espnow_sec_node_t *node)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    uint8_t buf[ESPNOW_SEC_V2_RESP_LEN];
    espnow_sec_v2_resp_rec_t r;
    uint32_t now = espnow_sec_now(node);
    rs->guess.tokens = ESPNOW_SEC_POP_BURST;
    rs->guess.t = now;
    esp_err_t err = espnow_sec_v2_rec_load(node->env, ESPNOW_SEC_V2_REC_RESP, buf, sizeof(buf));
    if (err == ESP_OK) {
        err = espnow_sec_v2_resp_decode(buf, sizeof(buf), &r);
    }
    if (err == ESP_ERR_NOT_FOUND) {
        err = espnow_sec_v2_ctr_boot(node, false);
        goto out;
    }
    if (err == ESP_OK) {
        err = espnow_sec_v2_ctr_boot(node, true);
    }
    if (err == ESP_OK && r.cur.epoch == 0) {
        err = ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
    }
    if (err == ESP_OK) {
        err = espnow_sec_ep_install(&node->v2.ep, r.cur.epoch, r.cur.g, r.grace_s, now);
    }
    if (err == ESP_OK && r.stg.epoch != 0) {
        err = espnow_sec_ep_stage(&node->v2.ep, r.stg.epoch, r.stg.g);
    }
    if (err == ESP_OK) {
        node->v2.ep.grace_s = r.grace_s;
        rs->provisioned = true;
        memcpy(rs->mac_i, r.mac_i, ESPNOW_SEC_ADDR_LEN);
        memcpy(rs->k_dev, r.k_dev, sizeof(rs->k_dev));
        rs->ctl_floor = r.ctl_floor;
        espnow_sec_v2_announce(node, ESPNOW_SEC_SYNC_SPREAD_MS); /* booted secured (§8.4) */
    }
out:
    espnow_sec_memzero(buf, sizeof(buf));
    espnow_sec_memzero(&r, sizeof(r));
    return err;
}

/* ---- replies ---- */

static bool reply_token(espnow_sec_node_t *node)
{
    return espnow_sec_bucket_take(&node->v2.reply_lim, 8, 50, espnow_sec_now(node));
}

/*
 * HS_ERR through the reply limiter (§11.4). Returns the reason to count for the request:
 * RATE_LIMITED when the limiter refuses, else none. A request answered with HS_ERR is handled
 * as the §6.2 tables prescribe, not dropped: §2.6 drops get no reply and change nothing, and
 * §6.2 names its drops ("MALFORMED drop, no reply", "STATE drop") apart from its HS_ERR rows
 * (vectors/v2.json scripts hs1-invalid, pop-wrong, pop-bucket count no drop for them).
 */
static espnow_sec_drop_reason_t hs_err(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx, uint32_t sid,
                                       uint8_t code, uint32_t retry_after)
{
    if (!reply_token(node)) {
        return ESPNOW_SEC_DROP_RATE_LIMITED;
    }
    uint8_t f[ESPNOW_SEC_V2_HS_ERR_LEN];
    espnow_sec_v2_clear_hdr(f, ESPNOW_SEC_V2_T_HS_ERR);
    espnow_sec_put_be32(&f[4], sid);
    f[8] = code;
    espnow_sec_put_be16(&f[9], (uint16_t)(retry_after > 0xFFFF ? 0xFFFF : retry_after));
    (void)espnow_sec_v2_send_raw(node, rx->src, f, sizeof(f));
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "HS_ERR %u to " ESPNOW_SEC_MACSTR, code, ESPNOW_SEC_MAC2STR(rx->src));
    return ESPNOW_SEC_V2_ACCEPT;
}

/* ---- §3 scan ---- */

espnow_sec_drop_reason_t espnow_sec_v2r_on_scan_req(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    uint8_t state = ESPNOW_SEC_V2_SCAN_UNPROVISIONED;
    if (rs->provisioned) {
        if (!espnow_sec_mac_eq(rx->src, rs->mac_i)) {
            state = ESPNOW_SEC_V2_SCAN_PROVISIONED_OTHER;
        } else {
            state = rs->repair_open ? ESPNOW_SEC_V2_SCAN_REPAIR_OPEN : ESPNOW_SEC_V2_SCAN_PROVISIONED_BY_YOU;
        }
    }
    if (!reply_token(node)) {
        return ESPNOW_SEC_DROP_RATE_LIMITED;
    }
    uint8_t f[ESPNOW_SEC_V2_SCAN_RESP_LEN] = {0};
    espnow_sec_v2_clear_hdr(f, ESPNOW_SEC_V2_T_SCAN_RESP);
    memcpy(&f[4], &rx->data[4], 4); /* scan_id echo */
    f[8] = state;
    f[11] = 0x01 | (ESPNOW_SEC_V2_LONG_FRAMES ? 0x02 : 0);
    if (state == ESPNOW_SEC_V2_SCAN_PROVISIONED_BY_YOU || state == ESPNOW_SEC_V2_SCAN_REPAIR_OPEN) {
        espnow_sec_put_be16(&f[9], node->v2.ep.cur.epoch);
        (void)espnow_sec_ks_pair_id(rs->k_dev, &f[12]);
    }
    uint32_t delay = espnow_sec_v2_jitter(node, ESPNOW_SEC_SCAN_REPLY_JITTER_MS);
    espnow_sec_defer_t *d = NULL;
    for (size_t i = 0; i < ESPNOW_SEC_V2_DEFER_MAX && d == NULL; i++) {
        if (node->v2.defer[i].kind == ESPNOW_SEC_DEFER_FREE) {
            d = &node->v2.defer[i];
        }
    }
    if (d == NULL || delay == 0) {
        (void)espnow_sec_v2_send_raw(node, rx->src, f, sizeof(f));
    } else {
        d->kind = ESPNOW_SEC_DEFER_RAW;
        d->due = espnow_sec_now(node) + delay;
        d->len = sizeof(f);
        memcpy(d->dst, rx->src, ESPNOW_SEC_ADDR_LEN);
        memcpy(d->frame, f, sizeof(f));
    }
    return ESPNOW_SEC_V2_ACCEPT;
}

/* ---- §11.2 PoP failure table ---- */

static espnow_sec_popfail_t *popfail_find(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], uint32_t now)
{
    for (size_t i = 0; i < ESPNOW_SEC_POP_FAIL_TABLE; i++) {
        espnow_sec_popfail_t *p = &RSP(node)->popfail[i];
        if (p->used && now - p->t_fail >= ESPNOW_SEC_POP_FORGET_MS &&
            !((int32_t)(p->blocked_until - now) > 0)) {
            memset(p, 0, sizeof(*p)); /* idle long enough: forgotten */
        }
        if (p->used && espnow_sec_mac_eq(p->mac, mac)) {
            return p;
        }
    }
    return NULL;
}

static void popfail_record(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], uint32_t sid, uint32_t now)
{
    espnow_sec_popfail_t *p = popfail_find(node, mac, now);
    if (p == NULL) {
        for (size_t i = 0; i < ESPNOW_SEC_POP_FAIL_TABLE; i++) {
            espnow_sec_popfail_t *q = &RSP(node)->popfail[i];
            if (!q->used) {
                p = q;
                break;
            }
            if (p == NULL || (int32_t)(q->blocked_until - p->blocked_until) < 0) {
                p = q; /* full: replace the entry with the earliest blocked_until */
            }
        }
        memset(p, 0, sizeof(*p));
        p->used = true;
        memcpy(p->mac, mac, ESPNOW_SEC_ADDR_LEN);
    }
    if (p->fails < 31) {
        p->fails++;
    }
    uint64_t block = (uint64_t)ESPNOW_SEC_POP_BACKOFF_BASE_MS << (p->fails - 1);
    if (block > ESPNOW_SEC_POP_BACKOFF_MAX_MS) {
        block = ESPNOW_SEC_POP_BACKOFF_MAX_MS;
    }
    p->blocked_until = now + (uint32_t)block;
    p->last_failed_sid = sid;
    p->t_fail = now;
}

/* ---- §6.2 handshake ---- */

static espnow_sec_v2_rsess_t *session_find(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        espnow_sec_v2_rsess_t *s = &RSP(node)->sess[i];
        if (s->state != ESPNOW_SEC_V2S_FREE && espnow_sec_mac_eq(s->mac, mac)) {
            return s;
        }
    }
    return NULL;
}

/* A free slot, or the evictable HS2_SENT session (§11.1), chosen but not yet wiped: the caller
 * evicts it only after the guess token was taken (§6.2), so an empty bucket costs no session.
 * NULL: BUSY with retry_after_ms = 0 (§4.1: "no free slot" carries no hint). */
static espnow_sec_v2_rsess_t *session_slot(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_v2_rsess_t *oldest = NULL;
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        espnow_sec_v2_rsess_t *s = &RSP(node)->sess[i];
        if (s->state == ESPNOW_SEC_V2S_FREE) {
            return s;
        }
        if (s->state == ESPNOW_SEC_V2S_HS2_SENT && (oldest == NULL || (int32_t)(s->t_last - oldest->t_last) < 0)) {
            oldest = s;
        }
    }
    if (oldest != NULL && now - oldest->t_last >= ESPNOW_SEC_SESSION_MIN_HOLD_MS) {
        return oldest;
    }
    return NULL;
}

static void fail_session(espnow_sec_node_t *node, espnow_sec_v2_rsess_t *s, espnow_sec_fail_reason_t reason)
{
    espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "handshake with " ESPNOW_SEC_MACSTR " failed: %s",
                   ESPNOW_SEC_MAC2STR(s->mac), espnow_sec_fail_reason_str(reason));
    node->stats.hs_failed++;
    espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_FAILED, s->mac, reason);
    wipe_session(s);
}

espnow_sec_drop_reason_t espnow_sec_v2r_on_hs1(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    uint32_t now = espnow_sec_now(node);
    uint32_t sid = espnow_sec_get_be32(&rx->data[4]);
    uint8_t suite = rx->data[8];
    const uint8_t *e_i = &rx->data[9];
    if (sid == 0) {
        return ESPNOW_SEC_DROP_MALFORMED;
    }
    if (rs->provisioned && !(rs->repair_open && espnow_sec_mac_eq(rx->src, rs->mac_i))) {
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_PROVISIONED, 0);
    }
    espnow_sec_popfail_t *pf = popfail_find(node, rx->src, now);
    if (pf != NULL && (int32_t)(pf->blocked_until - now) > 0) {
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_BUSY, pf->blocked_until - now);
    }
    if (suite != 1) {
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_UNSUPPORTED, 0);
    }
    espnow_sec_v2_rsess_t *s = session_find(node, rx->src);
    if (s != NULL && s->sid == sid) {
        /* Identical HS1 in any session state (HS2_SENT or CONFIRMED): resend the cached HS2 (§6.2). */
        if (memcmp(s->hs1, rx->data, ESPNOW_SEC_V2_HS1_LEN) == 0) {
            s->t_last = now;
            (void)espnow_sec_v2_send_raw(node, rx->src, s->hs2, sizeof(s->hs2));
            return ESPNOW_SEC_DROP_DUPLICATE;
        }
        return ESPNOW_SEC_DROP_STATE;
    }
    if (s != NULL && s->state == ESPNOW_SEC_V2S_CONFIRMED) {
        return ESPNOW_SEC_DROP_STATE; /* a proven initiator is mid-flight */
    }
    if (s != NULL) {
        wipe_session(s); /* the same initiator restarted */
    }
    s = session_slot(node, now);
    if (s == NULL) {
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_BUSY, 0);
    }
    if (!espnow_sec_bucket_take(&rs->guess, ESPNOW_SEC_POP_BURST, ESPNOW_SEC_POP_REFILL_MS, now)) {
        uint32_t wait = espnow_sec_bucket_wait(&rs->guess, ESPNOW_SEC_POP_BURST, ESPNOW_SEC_POP_REFILL_MS, now);
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_BUSY, wait);
    }
    if (s->state != ESPNOW_SEC_V2S_FREE) {
        wipe_session(s); /* evict the chosen HS2_SENT session now that the token is taken */
    }
    uint8_t e_priv[ESPNOW_SEC_X25519_LEN];
    uint8_t dh[ESPNOW_SEC_X25519_LEN];
    node->env->random(node->env->ctx, e_priv, sizeof(e_priv));
    espnow_sec_v2_clear_hdr(s->hs2, ESPNOW_SEC_V2_T_HS2);
    espnow_sec_put_be32(&s->hs2[4], sid);
    esp_err_t err = espnow_sec_crypto_x25519_public(e_priv, &s->hs2[8]);
    if (err == ESP_OK) {
        err = espnow_sec_crypto_x25519(e_priv, e_i, dh);
    }
    espnow_sec_memzero(e_priv, sizeof(e_priv));
    if (err != ESP_OK) {
        wipe_session(s);
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_BAD_KEY, 0);
    }
    memcpy(s->hs1, rx->data, ESPNOW_SEC_V2_HS1_LEN);
    err = espnow_sec_ks_th2(rx->src, node->self, s->hs1, s->hs2, s->th2);
    if (err == ESP_OK) {
        err = espnow_sec_ks_hs_keys(s->th2, dh, node->pop_hash, &s->keys);
    }
    espnow_sec_memzero(dh, sizeof(dh));
    if (err != ESP_OK) {
        wipe_session(s);
        return ESPNOW_SEC_DROP_STATE;
    }
    s->state = ESPNOW_SEC_V2S_HS2_SENT;
    memcpy(s->mac, rx->src, ESPNOW_SEC_ADDR_LEN);
    s->sid = sid;
    s->t_last = now;
    (void)espnow_sec_v2_send_raw(node, rx->src, s->hs2, sizeof(s->hs2));
    return ESPNOW_SEC_V2_ACCEPT;
}

espnow_sec_drop_reason_t espnow_sec_v2r_on_hs3(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    uint32_t now = espnow_sec_now(node);
    uint32_t sid = espnow_sec_get_be32(&rx->data[4]);
    espnow_sec_v2_rsess_t *s = session_find(node, rx->src);
    if (s == NULL || s->sid != sid) {
        espnow_sec_popfail_t *pf = popfail_find(node, rx->src, now);
        if (pf != NULL && pf->last_failed_sid == sid) {
            return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_POP_MISMATCH, 0);
        }
        if (!rs->provisioned) {
            return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_NO_SESSION, 0);
        }
        return ESPNOW_SEC_DROP_STATE;
    }
    if (s->state == ESPNOW_SEC_V2S_CONFIRMED) {
        if (memcmp(s->hs3, rx->data, ESPNOW_SEC_V2_HS_LEN) == 0) {
            (void)espnow_sec_v2_send_raw(node, rx->src, s->hs4, sizeof(s->hs4));
            return ESPNOW_SEC_DROP_DUPLICATE;
        }
        return ESPNOW_SEC_DROP_STATE;
    }
    if (espnow_sec_ks_conf_verify(s->keys.k_conf_i, s->th2, &rx->data[8]) != ESP_OK) {
        /* One wrong guess: back off this MAC, tell the initiator, keep nothing (§11.2). */
        popfail_record(node, rx->src, sid, now);
        fail_session(node, s, ESPNOW_SEC_FAIL_POP_MISMATCH);
        return hs_err(node, rx, sid, ESPNOW_SEC_V2_ERR_POP_MISMATCH, 0);
    }
    espnow_sec_bucket_refund(&rs->guess, ESPNOW_SEC_POP_BURST);
    espnow_sec_popfail_t *pf = popfail_find(node, rx->src, now);
    if (pf != NULL) {
        memset(pf, 0, sizeof(*pf));
    }
    uint8_t th3[ESPNOW_SEC_SHA256_LEN];
    memcpy(s->hs3, rx->data, ESPNOW_SEC_V2_HS_LEN);
    espnow_sec_v2_clear_hdr(s->hs4, ESPNOW_SEC_V2_T_HS4);
    espnow_sec_put_be32(&s->hs4[4], sid);
    esp_err_t err = espnow_sec_ks_th3(s->th2, s->hs3, th3);
    if (err == ESP_OK) {
        err = espnow_sec_ks_conf(s->keys.k_conf_r, th3, &s->hs4[8]);
    }
    espnow_sec_memzero(s->keys.k_conf_i, sizeof(s->keys.k_conf_i));
    espnow_sec_memzero(s->keys.k_conf_r, sizeof(s->keys.k_conf_r));
    if (err != ESP_OK) {
        fail_session(node, s, ESPNOW_SEC_FAIL_CRYPTO);
        return ESPNOW_SEC_DROP_STATE;
    }
    s->state = ESPNOW_SEC_V2S_CONFIRMED;
    s->t_last = now;
    (void)espnow_sec_v2_send_raw(node, rx->src, s->hs4, sizeof(s->hs4));
    return ESPNOW_SEC_V2_ACCEPT;
}

/* ---- §5.3 control ---- */

typedef struct {
    uint8_t op;
    uint8_t flags;
    uint16_t epoch;
    uint16_t grace_s;
    uint16_t window_s;
    const uint8_t *g;
} ctrl_req_t;

static uint8_t parse_ctrl(const uint8_t *pt, size_t len, ctrl_req_t *q)
{
    memset(q, 0, sizeof(*q));
    q->op = pt[0];
    switch (q->op) {
    case ESPNOW_SEC_V2_OP_KEY:
        if (len != ESPNOW_SEC_V2_CTRL_KEY_PT) {
            return ESPNOW_SEC_V2_ST_BAD_OP;
        }
        q->flags = pt[1];
        q->epoch = espnow_sec_get_be16(&pt[2]);
        q->grace_s = espnow_sec_get_be16(&pt[4]);
        q->g = &pt[6];
        if ((q->flags & ~ESPNOW_SEC_V2_KEY_ACTIVATE) != 0 || q->epoch == 0 || q->grace_s > 600) {
            return ESPNOW_SEC_V2_ST_BAD_OP;
        }
        return ESPNOW_SEC_V2_ST_OK;
    case ESPNOW_SEC_V2_OP_UNPROVISION:
        return len == ESPNOW_SEC_V2_CTRL_UNPROV_PT ? ESPNOW_SEC_V2_ST_OK : ESPNOW_SEC_V2_ST_BAD_OP;
    case ESPNOW_SEC_V2_OP_RESET:
        if (len != ESPNOW_SEC_V2_CTRL_RESET_PT) {
            return ESPNOW_SEC_V2_ST_BAD_OP;
        }
        q->window_s = espnow_sec_get_be16(&pt[1]);
        return q->window_s >= 1 && q->window_s <= 3600 ? ESPNOW_SEC_V2_ST_OK : ESPNOW_SEC_V2_ST_BAD_OP;
    default:
        return ESPNOW_SEC_V2_ST_BAD_OP;
    }
}

/* What a KEY would do to the provisioned group state (§5.3 table). */
typedef enum { KEY_NONE, KEY_STAGE, KEY_ACTIVATE_STG, KEY_INSTALL } key_effect_t;

static uint8_t eval_key(const espnow_sec_node_t *node, const ctrl_req_t *q, bool newcomer, key_effect_t *fx)
{
    const espnow_sec_epochs_t *ep = &node->v2.ep;
    bool act = (q->flags & ESPNOW_SEC_V2_KEY_ACTIVATE) != 0;
    *fx = KEY_NONE;
    if (newcomer) {
        if (!act) {
            return ESPNOW_SEC_V2_ST_BAD_OP;
        }
        *fx = KEY_INSTALL;
        return ESPNOW_SEC_V2_ST_OK;
    }
    if (q->epoch == ep->cur.epoch) {
        return espnow_sec_ct_equal(q->g, ep->cur.g, ESPNOW_SEC_V2_KEY_LEN) ? ESPNOW_SEC_V2_ST_OK
                                                                           : ESPNOW_SEC_V2_ST_EPOCH_CONFLICT;
    }
    if (ep->stg.epoch != 0 && q->epoch == ep->stg.epoch) {
        if (!espnow_sec_ct_equal(q->g, ep->stg.g, ESPNOW_SEC_V2_KEY_LEN)) {
            return ESPNOW_SEC_V2_ST_EPOCH_CONFLICT;
        }
        *fx = act ? KEY_ACTIVATE_STG : KEY_NONE;
        return ESPNOW_SEC_V2_ST_OK;
    }
    if (q->epoch > ep->cur.epoch && act) {
        *fx = KEY_INSTALL;
        return ESPNOW_SEC_V2_ST_OK;
    }
    if (q->epoch > ep->cur.epoch && (ep->stg.epoch == 0 || q->epoch > ep->stg.epoch)) {
        *fx = KEY_STAGE;
        return ESPNOW_SEC_V2_ST_OK;
    }
    return ESPNOW_SEC_V2_ST_STALE_EPOCH;
}

/* The record the KEY would leave (fx applied to a copy of RAM). */
static void apply_to_record(espnow_sec_v2_resp_rec_t *r, const ctrl_req_t *q, key_effect_t fx)
{
    switch (fx) {
    case KEY_STAGE:
        r->stg.epoch = q->epoch;
        memcpy(r->stg.g, q->g, ESPNOW_SEC_V2_KEY_LEN);
        break;
    case KEY_ACTIVATE_STG:
        r->cur = r->stg;
        memset(&r->stg, 0, sizeof(r->stg));
        break;
    case KEY_INSTALL:
        r->cur.epoch = q->epoch;
        memcpy(r->cur.g, q->g, ESPNOW_SEC_V2_KEY_LEN);
        if (r->stg.epoch != 0 && r->stg.epoch <= q->epoch) {
            memset(&r->stg, 0, sizeof(r->stg));
        }
        break;
    case KEY_NONE:
        break;
    }
    if (q->op == ESPNOW_SEC_V2_OP_KEY) {
        r->grace_s = q->grace_s; /* from the most recent KEY accepted with OK */
    }
}

/* key_check of `epoch` from the record read back from storage (§5.2). */
static void key_check_stored(espnow_sec_node_t *node, uint16_t epoch, uint8_t out[ESPNOW_SEC_V2_CHECK_LEN])
{
    uint8_t buf[ESPNOW_SEC_V2_RESP_LEN];
    espnow_sec_v2_resp_rec_t r;
    memset(out, 0, ESPNOW_SEC_V2_CHECK_LEN);
    if (espnow_sec_v2_rec_load(node->env, ESPNOW_SEC_V2_REC_RESP, buf, sizeof(buf)) == ESP_OK &&
        espnow_sec_v2_resp_decode(buf, sizeof(buf), &r) == ESP_OK) {
        const espnow_sec_v2_epoch_rec_t *e = r.cur.epoch == epoch ? &r.cur : r.stg.epoch == epoch ? &r.stg : NULL;
        if (e != NULL) {
            (void)espnow_sec_ks_key_check(r.k_dev, epoch, e->g, out);
        }
    }
    espnow_sec_memzero(buf, sizeof(buf));
    espnow_sec_memzero(&r, sizeof(r));
}

static void send_ack(espnow_sec_node_t *node, const espnow_sec_ccm_key_t *k, const uint8_t dst[ESPNOW_SEC_ADDR_LEN],
                     uint64_t req, uint8_t op, uint8_t status, const uint8_t check[ESPNOW_SEC_V2_CHECK_LEN])
{
    uint8_t pt[ESPNOW_SEC_V2_CTRL_ACK_PT] = {0};
    uint8_t f[ESPNOW_SEC_V2_CTRL_ACK_LEN];
    size_t n = 0;
    espnow_sec_put_be48(pt, req);
    pt[6] = op;
    pt[7] = status;
    espnow_sec_put_be16(&pt[8], node->v2.ep.cur.epoch);
    espnow_sec_put_be16(&pt[10], node->v2.ep.stg.epoch);
    if (check != NULL) {
        memcpy(&pt[12], check, ESPNOW_SEC_V2_CHECK_LEN);
    }
    if (espnow_sec_v2_build(node, dst, ESPNOW_SEC_V2_T_CTRL_ACK, 0, k, pt, sizeof(pt), f, &n, NULL) == ESP_OK) {
        (void)espnow_sec_v2_send_raw(node, dst, f, n);
    }
}

/* Apply an evaluated, stored KEY in RAM. */
static esp_err_t apply_key(espnow_sec_node_t *node, const ctrl_req_t *q, key_effect_t fx)
{
    espnow_sec_epochs_t *ep = &node->v2.ep;
    uint32_t now = espnow_sec_now(node);
    bool first = ep->cur.epoch == 0;
    esp_err_t err = ESP_OK;
    uint16_t grace = ep->grace_s;
    switch (fx) {
    case KEY_STAGE:
        err = espnow_sec_ep_stage(ep, q->epoch, q->g);
        break;
    case KEY_ACTIVATE_STG:
        err = espnow_sec_ep_activate(ep, grace, now);
        break;
    case KEY_INSTALL:
        err = espnow_sec_ep_install(ep, q->epoch, q->g, grace, now);
        break;
    case KEY_NONE:
        break;
    }
    ep->grace_s = q->grace_s;
    if (err == ESP_OK && !first && (fx == KEY_ACTIVATE_STG || fx == KEY_INSTALL)) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "key epoch %u active", ep->cur.epoch);
        espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_REKEY_DONE};
        ev.data.rekey.epoch = ep->cur.epoch;
        espnow_sec_emit(node, &ev);
        espnow_sec_v2_announce(node, ESPNOW_SEC_SYNC_SPREAD_MS);
    }
    return err;
}

espnow_sec_drop_reason_t espnow_sec_v2r_on_ctrl(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    uint32_t now = espnow_sec_now(node);
    espnow_sec_v2_rsess_t *s = session_find(node, rx->src);
    if (s != NULL && s->state != ESPNOW_SEC_V2S_CONFIRMED) {
        s = NULL;
    }
    const uint8_t *k_dev = NULL;
    bool lingering = false;
    if (s != NULL) {
        k_dev = s->keys.k_dev;
    } else if (rs->provisioned && espnow_sec_mac_eq(rx->src, rs->mac_i)) {
        k_dev = rs->k_dev;
    } else if (rs->linger && !espnow_sec_time_reached(now, rs->linger_until) &&
               espnow_sec_mac_eq(rx->src, rs->linger_mac)) {
        /* the re-ACK window ends at linger_until even if no tick ran since (§5.3) */
        k_dev = rs->linger_k_dev;
        lingering = true;
    } else {
        return ESPNOW_SEC_DROP_STATE;
    }
    uint8_t k_ctl[ESPNOW_SEC_V2_AES_LEN];
    espnow_sec_ccm_key_t k = {0};
    esp_err_t err = espnow_sec_ks_ctl_key(k_dev, rx->src, node->self, k_ctl);
    if (err == ESP_OK) {
        err = espnow_sec_ks_import(&k, k_ctl, ESPNOW_SEC_V2_TAG_CTL);
    }
    espnow_sec_memzero(k_ctl, sizeof(k_ctl));
    if (err != ESP_OK) {
        return ESPNOW_SEC_DROP_STATE;
    }
    uint8_t pt[ESPNOW_SEC_V2_CTRL_KEY_PT];
    size_t pt_len = rx->len - ESPNOW_SEC_V2_SEC_HDR_LEN - ESPNOW_SEC_V2_TAG_CTL;
    espnow_sec_drop_reason_t out = ESPNOW_SEC_V2_ACCEPT;
    uint64_t c = rx->hdr.counter;
    if (espnow_sec_ks_open(&k, rx->src, rx->dst, rx->data, rx->len, pt) != ESP_OK) {
        out = ESPNOW_SEC_DROP_AUTH; /* no reply, no state change */
        goto done;
    }
    ctrl_req_t q;
    uint8_t st = parse_ctrl(pt, pt_len, &q);
    if (lingering) {
        /* Un-provisioned: only re-ACK the UNPROVISION we accepted (an authentic CTRL with its
         * counter is that request); any other counter is a REPLAY drop (§5.3). */
        if (c != rs->linger_c) {
            out = ESPNOW_SEC_DROP_REPLAY;
            goto done;
        }
        send_ack(node, &k, rx->src, c, pt[0], ESPNOW_SEC_V2_ST_OK, NULL);
        out = ESPNOW_SEC_DROP_DUPLICATE;
        goto done;
    }
    bool newcomer = s != NULL && !rs->provisioned;
    bool repair = s != NULL && rs->provisioned;
    if (s == NULL && c < rs->ctl_floor) {
        out = ESPNOW_SEC_DROP_REPLAY;
        goto done;
    }
    key_effect_t fx = KEY_NONE;
    if (st == ESPNOW_SEC_V2_ST_OK && q.op == ESPNOW_SEC_V2_OP_KEY) {
        st = eval_key(node, &q, newcomer, &fx);
    }
    uint8_t check[ESPNOW_SEC_V2_CHECK_LEN] = {0};
    if (s == NULL && c == rs->ctl_floor) {
        /* Duplicate of the last request (its ACK was lost): answer again, write nothing. */
        if (st == ESPNOW_SEC_V2_ST_OK && q.op == ESPNOW_SEC_V2_OP_KEY) {
            key_check_stored(node, q.epoch, check);
        }
        send_ack(node, &k, rx->src, c, q.op, st, check);
        out = ESPNOW_SEC_DROP_DUPLICATE;
        goto done;
    }
    if (st == ESPNOW_SEC_V2_ST_BAD_OP) {
        send_ack(node, &k, rx->src, c, q.op, st, NULL);
        out = ESPNOW_SEC_DROP_MALFORMED;
        goto done;
    }
    if (q.op == ESPNOW_SEC_V2_OP_UNPROVISION) {
        if (rs->provisioned && s == NULL) {
            err = node->env->store_erase(node->env->ctx, ESPNOW_SEC_V2_REC_RESP);
            if (err != ESP_OK) {
                send_ack(node, &k, rx->src, c, q.op, ESPNOW_SEC_V2_ST_STORE_FAIL, NULL);
                goto done;
            }
            rs->linger = true;
            rs->linger_until = now + ESPNOW_SEC_LINGER_MS;
            memcpy(rs->linger_mac, rs->mac_i, ESPNOW_SEC_ADDR_LEN);
            memcpy(rs->linger_k_dev, rs->k_dev, sizeof(rs->k_dev));
            rs->linger_c = c;
            become_unprovisioned(node);
            espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "un-provisioned by " ESPNOW_SEC_MACSTR ": keys erased",
                           ESPNOW_SEC_MAC2STR(rx->src));
            espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_UNPROVISIONED, rx->src, ESPNOW_SEC_FAIL_NONE);
        } else if (s != NULL) {
            wipe_session(s);
        }
        send_ack(node, &k, rx->src, c, q.op, ESPNOW_SEC_V2_ST_OK, NULL);
        goto done;
    }
    if (newcomer && q.op != ESPNOW_SEC_V2_OP_KEY) {
        send_ack(node, &k, rx->src, c, q.op, ESPNOW_SEC_V2_ST_BAD_OP, NULL);
        out = ESPNOW_SEC_DROP_MALFORMED;
        goto done;
    }
    /* Evaluate, then one atomic write of ctl_floor = c and the new key state (§5.3). */
    espnow_sec_v2_resp_rec_t r;
    fill_record(node, &r);
    if (st == ESPNOW_SEC_V2_ST_OK) {
        apply_to_record(&r, &q, fx);
    }
    bool rebind = (newcomer || repair) && st == ESPNOW_SEC_V2_ST_OK && q.op == ESPNOW_SEC_V2_OP_KEY;
    if (rebind) {
        memcpy(r.mac_i, rx->src, ESPNOW_SEC_ADDR_LEN);
        memcpy(r.k_dev, s->keys.k_dev, sizeof(r.k_dev));
    }
    if (s == NULL || rebind) {
        r.ctl_floor = c;
        err = ESP_OK;
        if (!rs->provisioned) {
            /* The counter record must exist before any key record does (§7.3 boot rule). */
            uint8_t cr[ESPNOW_SEC_V2_CTR_LEN];
            espnow_sec_v2_ctr_encode(node->v2.reserved, cr);
            err = node->env->store_save(node->env->ctx, ESPNOW_SEC_V2_REC_CTR, cr, sizeof(cr));
        }
        if (err == ESP_OK) {
            err = save_record(node, &r);
        }
    } else {
        err = ESP_OK; /* a session CTRL that changes nothing stored (e.g. STALE) */
    }
    if (err != ESP_OK) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "cannot store the key record: %s", espnow_sec_err_to_name(err));
        espnow_sec_memzero(&r, sizeof(r));
        send_ack(node, &k, rx->src, c, q.op, ESPNOW_SEC_V2_ST_STORE_FAIL, NULL); /* session stays CONFIRMED */
        goto done;
    }
    espnow_sec_memzero(&r, sizeof(r));
    /* Apply in RAM. */
    if (s == NULL || rebind) {
        rs->ctl_floor = c;
    }
    if (st == ESPNOW_SEC_V2_ST_OK && q.op == ESPNOW_SEC_V2_OP_KEY) {
        bool first = !rs->provisioned;
        if (apply_key(node, &q, fx) != ESP_OK) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "stored key could not be installed (PSA key slots?)");
        }
        if (rebind) {
            memcpy(rs->mac_i, rx->src, ESPNOW_SEC_ADDR_LEN);
            memcpy(rs->k_dev, s->keys.k_dev, sizeof(rs->k_dev));
            rs->provisioned = true;
            rs->repair_open = false;
            wipe_session(s);
        }
        key_check_stored(node, q.epoch, check);
        if (first) {
            node->stats.hs_secured++;
            espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "secured by " ESPNOW_SEC_MACSTR ", key epoch %u",
                           ESPNOW_SEC_MAC2STR(rx->src), node->v2.ep.cur.epoch);
            espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_SECURED, rx->src, ESPNOW_SEC_FAIL_NONE);
            espnow_sec_v2_announce(node, ESPNOW_SEC_SYNC_SPREAD_MS);
        }
    } else if (st == ESPNOW_SEC_V2_ST_OK && q.op == ESPNOW_SEC_V2_OP_RESET) {
        rs->repair_open = true;
        rs->repair_until = now + (uint32_t)q.window_s * 1000u;
        espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "re-pair window open for %u s", q.window_s);
    }
    send_ack(node, &k, rx->src, c, q.op, st, check);
    /* Freshness: c proves the initiator's counter (§5.3). */
    espnow_sec_v2_sync_peer(node, rx->src, c);
done:
    espnow_sec_crypto_ccm_key_destroy(&k);
    espnow_sec_memzero(pt, sizeof(pt));
    return out;
}

uint32_t espnow_sec_v2r_tick(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_v2_rsp_t *rs = RSP(node);
    uint32_t next = UINT32_MAX;
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        espnow_sec_v2_rsess_t *s = &rs->sess[i];
        if (s->state == ESPNOW_SEC_V2S_FREE) {
            continue;
        }
        uint32_t end = s->t_last + ESPNOW_SEC_SESSION_TIMEOUT_MS;
        if (espnow_sec_time_reached(now, end)) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "session with " ESPNOW_SEC_MACSTR " expired",
                           ESPNOW_SEC_MAC2STR(s->mac));
            wipe_session(s);
        } else if (end - now < next) {
            next = end - now;
        }
    }
    if (rs->linger) {
        if (espnow_sec_time_reached(now, rs->linger_until)) {
            rs->linger = false;
            espnow_sec_memzero(rs->linger_k_dev, sizeof(rs->linger_k_dev));
        } else if (rs->linger_until - now < next) {
            next = rs->linger_until - now;
        }
    }
    if (rs->repair_open) {
        if (espnow_sec_time_reached(now, rs->repair_until)) {
            rs->repair_open = false;
        } else if (rs->repair_until - now < next) {
            next = rs->repair_until - now;
        }
    }
    return next;
}

/*
 * datapath.c - protect / unprotect compat data frames (datapath.h), and the node's
 * data send and receive policy.
 */
#include "datapath.h"

#include <string.h>

#include "node_priv.h"

esp_err_t espnow_sec_data_key_import(espnow_sec_ccm_key_t *k, const uint8_t app_key[ESPNOW_SEC_APP_KEY_LEN])
{
    /* §2.6: the AES-128 key is app_key[0..16) used directly; bytes 16..31 unused. */
    return espnow_sec_crypto_ccm_key_import(k, app_key, 16, ESPNOW_SEC_DATA_TAG_LEN);
}

esp_err_t espnow_sec_data_seal(const espnow_sec_ccm_key_t *k, const uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN],
                               const uint8_t *pt, size_t len, uint8_t *out)
{
    if (len > ESPNOW_SEC_MAX_PAYLOAD_COMPAT) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    /* C || T from CCM, then the nonce appended after the tag (§2.7). No AAD. */
    esp_err_t err = espnow_sec_crypto_ccm_seal(k, nonce, ESPNOW_SEC_DATA_NONCE_LEN, NULL, 0, pt, len, out);
    if (err == ESP_OK) {
        memcpy(&out[len + ESPNOW_SEC_DATA_TAG_LEN], nonce, ESPNOW_SEC_DATA_NONCE_LEN);
    }
    return err;
}

esp_err_t espnow_sec_data_open(const espnow_sec_ccm_key_t *k, const uint8_t *payload, size_t len,
                               uint8_t *pt, size_t *pt_len)
{
    if (payload == NULL || len < ESPNOW_SEC_DATA_OVERHEAD || len > ESPNOW_SEC_PAYLOAD_MAX) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    size_t n = len - ESPNOW_SEC_DATA_OVERHEAD;
    const uint8_t *nonce = &payload[len - ESPNOW_SEC_DATA_NONCE_LEN];
    esp_err_t err = espnow_sec_crypto_ccm_open(k, nonce, ESPNOW_SEC_DATA_NONCE_LEN, NULL, 0, payload,
                                               n + ESPNOW_SEC_DATA_TAG_LEN, pt);
    if (err == ESP_OK) {
        *pt_len = n;
    } else if (err != ESP_ERR_ESPNOW_SEC_AUTH) {
        err = ESP_ERR_ESPNOW_SEC_AUTH; /* any failure to authenticate is "not authentic" */
    }
    return err;
}

esp_err_t espnow_sec_data_frame_build(const espnow_sec_hdr_t *hdr, const espnow_sec_ccm_key_t *k,
                                      const uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN],
                                      const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                                      size_t *out_len)
{
    if (hdr == NULL || out == NULL || out_len == NULL || (pt == NULL && len != 0) ||
        (k != NULL && nonce == NULL)) {
        return ESP_ERR_INVALID_ARG;
    }
    if (len > ESPNOW_SEC_MAX_PAYLOAD_COMPAT) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    size_t plen = len + (k != NULL ? ESPNOW_SEC_DATA_OVERHEAD : 0);
    if (cap < ESPNOW_SEC_HDR_LEN + plen) {
        return ESP_ERR_INVALID_SIZE;
    }
    espnow_sec_hdr_t h = *hdr;
    h.type = ESPNOW_SEC_T_DATA;
    h.version = ESPNOW_SEC_WIRE_VERSION;
    h.security = k != NULL;
    h.size = (uint8_t)(plen & 0xFF); /* (n + 12) & 0xFF, §2.7 */
    espnow_sec_hdr_encode(&h, out);
    esp_err_t err = ESP_OK;
    if (k != NULL) {
        err = espnow_sec_data_seal(k, nonce, pt, len, &out[ESPNOW_SEC_HDR_LEN]);
    } else if (len != 0) {
        memcpy(&out[ESPNOW_SEC_HDR_LEN], pt, len);
    }
    if (err != ESP_OK) {
        return err;
    }
    *out_len = ESPNOW_SEC_HDR_LEN + plen;
    return ESP_OK;
}

esp_err_t espnow_sec_data_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data,
                               size_t len)
{
    if (data == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    /* One limit whatever the key state, so an app does not see it change at "secured". */
    if (len > ESPNOW_SEC_MAX_PAYLOAD_COMPAT) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    bool bcast = dst == NULL || espnow_sec_mac_is_broadcast(dst);
    const uint8_t *to = bcast ? espnow_sec_broadcast_mac : dst;
    if (!node->has_key) {
        return espnow_sec_tx(node, to, ESPNOW_SEC_T_DATA, to, bcast, false, false, data, len);
    }
    uint8_t payload[ESPNOW_SEC_PAYLOAD_MAX];
    uint8_t nonce[ESPNOW_SEC_DATA_NONCE_LEN];
    node->env->random(node->env->ctx, nonce, sizeof(nonce)); /* fresh per frame (bug B6) */
    esp_err_t err = espnow_sec_data_seal(&node->data_key, nonce, data, len, payload);
    if (err == ESP_OK) {
        err = espnow_sec_tx(node, to, ESPNOW_SEC_T_DATA, to, bcast, false, true, payload,
                            len + ESPNOW_SEC_DATA_OVERHEAD);
    }
    espnow_sec_memzero(payload, sizeof(payload));
    return err;
}

esp_err_t espnow_sec_data_on_frame(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    espnow_sec_rx_info_t info;
    memcpy(info.src, rx->hdr.src, ESPNOW_SEC_ADDR_LEN);
    memcpy(info.dst, rx->hdr.dest, ESPNOW_SEC_ADDR_LEN);
    info.channel = rx->channel;
    info.rssi = rx->rssi;
    info.broadcast = rx->hdr.broadcast || espnow_sec_mac_is_broadcast(rx->hdr.dest);

    if (!rx->hdr.security) {
        node->stats.rx_plaintext++;
        if (node->has_key) {
            /* A secured network never hands cleartext to the app as if authentic (bug B2). */
            node->stats.rx_plaintext_dropped++;
            espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "plaintext data dropped: this node is secured");
            return ESP_OK;
        }
        info.protection = ESPNOW_SEC_RX_PLAINTEXT;
        node->stats.rx_delivered++;
        if (node->env->deliver != NULL) {
            node->env->deliver(node->env->ctx, &info, rx->payload, rx->len);
        }
        return ESP_OK;
    }
    if (rx->len < ESPNOW_SEC_DATA_OVERHEAD) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (!node->has_key) {
        return ESP_ERR_ESPNOW_SEC_AUTH; /* cannot be verified without a key */
    }
    uint8_t pt[ESPNOW_SEC_PAYLOAD_MAX];
    size_t n = 0;
    esp_err_t err = espnow_sec_data_open(&node->data_key, rx->payload, rx->len, pt, &n);
    if (err == ESP_OK) {
        info.protection = ESPNOW_SEC_RX_ENCRYPTED;
        node->stats.rx_delivered++;
        if (node->env->deliver != NULL) {
            node->env->deliver(node->env->ctx, &info, pt, n);
        }
    }
    espnow_sec_memzero(pt, sizeof(pt));
    return err;
}

/* ==== protocol v2: counters (§7.3), secured frames, DATA / DATA_PLAIN (§7, §10), SYNC (§8) ==== */

uint32_t espnow_sec_v2_jitter(espnow_sec_node_t *node, uint32_t j)
{
    uint8_t r[2];
    node->env->random(node->env->ctx, r, sizeof(r));
    return (uint32_t)espnow_sec_get_be16(r) % (j + 1);
}

void espnow_sec_v2_draw_nonzero(espnow_sec_node_t *node, uint8_t *buf, size_t len)
{
    do {
        node->env->random(node->env->ctx, buf, len);
    } while (espnow_sec_ct_is_zero(buf, len));
}

static void bucket_refill(espnow_sec_bucket_t *b, uint16_t cap, uint32_t period, uint32_t now)
{
    if (b->tokens >= cap) {
        b->tokens = cap;
        b->t = now;
        return;
    }
    uint32_t n = (now - b->t) / period;
    if (n >= (uint32_t)(cap - b->tokens)) {
        b->tokens = cap;
        b->t = now;
    } else {
        b->tokens = (uint16_t)(b->tokens + n);
        b->t += n * period;
    }
}

bool espnow_sec_bucket_take(espnow_sec_bucket_t *b, uint16_t cap, uint32_t period, uint32_t now)
{
    bucket_refill(b, cap, period, now);
    if (b->tokens == 0) {
        return false;
    }
    b->tokens--;
    return true;
}

uint32_t espnow_sec_bucket_wait(const espnow_sec_bucket_t *b, uint16_t cap, uint32_t period, uint32_t now)
{
    espnow_sec_bucket_t c = *b;
    bucket_refill(&c, cap, period, now);
    return c.tokens > 0 ? 0 : period - (now - c.t);
}

void espnow_sec_bucket_refund(espnow_sec_bucket_t *b, uint16_t cap)
{
    if (b->tokens < cap) {
        b->tokens++;
    }
}

esp_err_t espnow_sec_v2_ctr_boot(espnow_sec_node_t *node, bool keyed)
{
    uint8_t rec[ESPNOW_SEC_V2_CTR_LEN];
    uint64_t r = 0;
    esp_err_t err = espnow_sec_v2_rec_load(node->env, ESPNOW_SEC_V2_REC_CTR, rec, sizeof(rec));
    if (err == ESP_OK) {
        err = espnow_sec_v2_ctr_decode(rec, sizeof(rec), &r);
    } else if (err == ESP_ERR_NOT_FOUND && !keyed && node->role == ESPNOW_SEC_ROLE_INITIATOR) {
        /* Initiator's first start: write R = 0 before the group record, so a key record never
         * exists without a counter record (STORE_CORRUPT at the next boot). A responder writes
         * its first block when it answers its first KEY, before any key is used. */
        espnow_sec_v2_ctr_encode(0, rec);
        err = node->env->store_save(node->env->ctx, ESPNOW_SEC_V2_REC_CTR, rec, sizeof(rec));
    } else if (err == ESP_ERR_NOT_FOUND && !keyed) {
        err = ESP_OK;
    } else if (err == ESP_ERR_NOT_FOUND) {
        err = ESP_ERR_ESPNOW_SEC_STORE_CORRUPT; /* keys but no counter: it may have been used */
    }
    if (err != ESP_OK) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "frame counter record \"%s\": %s", ESPNOW_SEC_V2_REC_CTR,
                       espnow_sec_err_to_name(err));
        return err;
    }
    /* Jump to the block boundary after everything we may have used (§7.3). */
    node->v2.next = r;
    node->v2.reserved = r;
    return ESP_OK;
}

esp_err_t espnow_sec_v2_ctr_take(espnow_sec_node_t *node, uint64_t *c)
{
    espnow_sec_v2_t *v = &node->v2;
    if (v->next > ESPNOW_SEC_V2_CTR_MAX) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "frame counter exhausted: erase every node and re-provision");
        return ESP_ERR_ESPNOW_SEC_COUNTER;
    }
    if (v->next >= v->reserved) {
        uint64_t r = v->reserved + ESPNOW_SEC_COUNTER_BLOCK;
        if (r > ESPNOW_SEC_V2_CTR_MAX + 1) {
            r = ESPNOW_SEC_V2_CTR_MAX + 1;
        }
        uint8_t rec[ESPNOW_SEC_V2_CTR_LEN];
        espnow_sec_v2_ctr_encode(r, rec);
        esp_err_t err = node->env->store_save(node->env->ctx, ESPNOW_SEC_V2_REC_CTR, rec, sizeof(rec));
        if (err != ESP_OK) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR,
                           "cannot reserve frame counters in the key store (\"%s\": %s): nothing sent",
                           ESPNOW_SEC_V2_REC_CTR, espnow_sec_err_to_name(err));
            return ESP_ERR_ESPNOW_SEC_COUNTER;
        }
        v->reserved = r;
    }
    *c = v->next++;
    return ESP_OK;
}

esp_err_t espnow_sec_v2_send_raw(espnow_sec_node_t *node, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], const uint8_t *frame,
                                 size_t len)
{
    esp_err_t err = node->env->send(node->env->ctx, dst, frame, len);
    if (err == ESP_OK) {
        node->stats.tx_frames++;
        return ESP_OK;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "send of v2 type 0x%02x failed: %s", len > 2 ? frame[2] : 0,
                   espnow_sec_err_to_name(err));
    return ESP_ERR_ESPNOW_SEC_RADIO;
}

esp_err_t espnow_sec_v2_build(espnow_sec_node_t *node, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint8_t type,
                              uint16_t epoch, const espnow_sec_ccm_key_t *k, const uint8_t *pt, size_t pt_len,
                              uint8_t *out, size_t *out_len, uint64_t *ctr)
{
    uint64_t c = 0;
    if (pt_len + ESPNOW_SEC_V2_SEC_HDR_LEN + k->tag_len > ESPNOW_SEC_V2_FRAME_MAX) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    esp_err_t err = espnow_sec_v2_ctr_take(node, &c);
    if (err != ESP_OK) {
        return err;
    }
    espnow_sec_v2_sec_hdr(out, type, epoch, c);
    err = espnow_sec_ks_seal(k, node->self, dst, out, pt, pt_len, out_len);
    if (ctr != NULL) {
        *ctr = c;
    }
    return err;
}

static esp_err_t send_sync(espnow_sec_node_t *node, const uint8_t dst[ESPNOW_SEC_ADDR_LEN],
                           const uint8_t challenge[ESPNOW_SEC_CHALLENGE_LEN], const uint8_t echo[ESPNOW_SEC_CHALLENGE_LEN])
{
    espnow_sec_gkey_t *g = &node->v2.ep.cur;
    if (g->epoch == 0) {
        return ESP_ERR_ESPNOW_SEC_NO_KEY;
    }
    uint8_t pt[ESPNOW_SEC_V2_SYNC_PT];
    uint8_t frame[ESPNOW_SEC_V2_SYNC_LEN];
    size_t len = 0;
    memcpy(pt, challenge, ESPNOW_SEC_CHALLENGE_LEN);
    memcpy(&pt[ESPNOW_SEC_CHALLENGE_LEN], echo, ESPNOW_SEC_CHALLENGE_LEN);
    esp_err_t err = espnow_sec_v2_build(node, dst, ESPNOW_SEC_V2_T_SYNC, g->epoch, &g->key, pt, sizeof(pt), frame,
                                        &len, NULL);
    if (err == ESP_OK) {
        err = espnow_sec_v2_send_raw(node, dst, frame, len);
    }
    return err;
}

static espnow_sec_defer_t *defer_slot(espnow_sec_node_t *node)
{
    for (size_t i = 0; i < ESPNOW_SEC_V2_DEFER_MAX; i++) {
        if (node->v2.defer[i].kind == ESPNOW_SEC_DEFER_FREE) {
            return &node->v2.defer[i];
        }
    }
    return NULL;
}

static void defer_sync(espnow_sec_node_t *node, const uint8_t dst[ESPNOW_SEC_ADDR_LEN], uint32_t delay,
                       const uint8_t challenge[ESPNOW_SEC_CHALLENGE_LEN], const uint8_t echo[ESPNOW_SEC_CHALLENGE_LEN])
{
    espnow_sec_defer_t *d = defer_slot(node);
    if (d == NULL) {
        /* Full: send now rather than not at all. */
        (void)send_sync(node, dst, challenge, echo);
        return;
    }
    d->kind = ESPNOW_SEC_DEFER_SYNC;
    d->due = espnow_sec_now(node) + delay;
    memcpy(d->dst, dst, ESPNOW_SEC_ADDR_LEN);
    memcpy(d->challenge, challenge, ESPNOW_SEC_CHALLENGE_LEN);
    memcpy(d->echo, echo, ESPNOW_SEC_CHALLENGE_LEN);
}

void espnow_sec_v2_announce(espnow_sec_node_t *node, uint32_t spread_ms)
{
    static const uint8_t zero[ESPNOW_SEC_CHALLENGE_LEN] = {0};
    if (!ESPNOW_SEC_SYNC_ON_JOIN || node->v2.ep.cur.epoch == 0) {
        return;
    }
    uint8_t ch[ESPNOW_SEC_CHALLENGE_LEN];
    /* §4.5 order of draws for a broadcast SYNC: the delay r first, then the challenge. */
    uint32_t delay = spread_ms ? espnow_sec_v2_jitter(node, spread_ms) : 0;
    espnow_sec_v2_draw_nonzero(node, ch, sizeof(ch));
    /* The broadcast challenge is valid from when it is sent (common_tick sets bcast_t). */
    defer_sync(node, espnow_sec_broadcast_mac, delay, ch, zero);
}

static void deliver(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx, espnow_sec_protection_t prot,
                    const uint8_t *data, size_t len)
{
    espnow_sec_rx_info_t info = {
        .channel = rx->channel,
        .rssi = rx->rssi,
        .broadcast = rx->broadcast,
        .protection = prot,
    };
    memcpy(info.src, rx->src, ESPNOW_SEC_ADDR_LEN);
    memcpy(info.dst, rx->dst, ESPNOW_SEC_ADDR_LEN);
    node->stats.rx_delivered++;
    if (node->env->deliver != NULL) {
        node->env->deliver(node->env->ctx, &info, data, len);
    }
}

/* §8.3: an authentic frame from an unknown sender: create PENDING and challenge it. */
static espnow_sec_drop_reason_t start_sync(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN])
{
    static const uint8_t zero[ESPNOW_SEC_CHALLENGE_LEN] = {0};
    uint32_t now = espnow_sec_now(node);
    espnow_sec_rp_entry_t *e = espnow_sec_rp_alloc(&node->v2.ep.t_cur, src, now);
    if (e == NULL) {
        return ESPNOW_SEC_DROP_TABLE_FULL;
    }
    e->state = ESPNOW_SEC_RP_PENDING;
    espnow_sec_v2_draw_nonzero(node, e->challenge, sizeof(e->challenge));
    e->tries = 1;
    e->t_sent = now;
    (void)send_sync(node, src, e->challenge, zero);
    return ESPNOW_SEC_DROP_UNSYNCED;
}

void espnow_sec_v2_sync_peer(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], uint64_t c)
{
    uint32_t now = espnow_sec_now(node);
    if (node->v2.ep.cur.epoch == 0) {
        return;
    }
    espnow_sec_rp_entry_t *e = espnow_sec_rp_find(&node->v2.ep.t_cur, mac);
    if (e == NULL) {
        e = espnow_sec_rp_alloc(&node->v2.ep.t_cur, mac, now);
    }
    if (e != NULL) {
        espnow_sec_rp_sync(e, c, now);
    }
}

esp_err_t espnow_sec_v2_activate(espnow_sec_node_t *node)
{
    espnow_sec_epochs_t *ep = &node->v2.ep;
    if (node->role == ESPNOW_SEC_ROLE_INITIATOR && node->u.v2i.rollout) {
        /* A member already uses the new epoch: end the rollout now (§9.3 trigger b). */
        espnow_sec_v2i_rollout_finish(node);
        return ESP_OK;
    }
    uint16_t grace = node->role == ESPNOW_SEC_ROLE_INITIATOR ? node->u.v2i.grace_s : ep->grace_s;
    esp_err_t err = espnow_sec_ep_activate(ep, grace, espnow_sec_now(node));
    if (err != ESP_OK) {
        return err;
    }
    err = node->role == ESPNOW_SEC_ROLE_INITIATOR ? espnow_sec_v2i_save_grp(node) : espnow_sec_v2r_save(node);
    if (err != ESP_OK) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "epoch %u active but not stored: %s", ep->cur.epoch,
                       espnow_sec_err_to_name(err));
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "key epoch %u active (epoch %u accepted for %u s)", ep->cur.epoch,
                   ep->prev.epoch, ep->grace_s);
    if (node->role == ESPNOW_SEC_ROLE_RESPONDER) {
        espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_REKEY_DONE};
        ev.data.rekey.epoch = ep->cur.epoch;
        espnow_sec_emit(node, &ev);
        espnow_sec_v2_announce(node, ESPNOW_SEC_SYNC_SPREAD_MS);
    }
    return ESP_OK;
}

/* §8.2 step 1 / §9.4, shared by DATA and SYNC: which key, or why not. */
static espnow_sec_drop_reason_t select_key(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx,
                                           espnow_sec_ep_slot_t *slot)
{
    if (node->v2.ep.cur.epoch == 0) {
        return ESPNOW_SEC_DROP_FOREIGN; /* we hold no group key */
    }
    *slot = espnow_sec_ep_select(&node->v2.ep, rx->hdr.epoch, espnow_sec_now(node));
    if (*slot == ESPNOW_SEC_EP_NONE) {
        if (node->role == ESPNOW_SEC_ROLE_INITIATOR && rx->hdr.epoch < node->v2.ep.cur.epoch) {
            espnow_sec_v2i_heard(node, rx->src); /* a straggler, perhaps (§9.2 step 4) */
        }
        return ESPNOW_SEC_DROP_EPOCH;
    }
    return ESPNOW_SEC_V2_ACCEPT;
}

espnow_sec_drop_reason_t espnow_sec_v2_on_data(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_ep_slot_t slot = ESPNOW_SEC_EP_NONE;
    espnow_sec_drop_reason_t why = select_key(node, rx, &slot);
    if (why != ESPNOW_SEC_V2_ACCEPT) {
        return why;
    }
    espnow_sec_epochs_t *ep = &node->v2.ep;
    uint64_t c = rx->hdr.counter;
    /* 2. check, before any crypto (a staged epoch has no table yet: nothing to check) */
    espnow_sec_rp_table_t *t = slot == ESPNOW_SEC_EP_PREV ? &ep->t_prev : slot == ESPNOW_SEC_EP_CUR ? &ep->t_cur : NULL;
    espnow_sec_rp_entry_t *e = t != NULL ? espnow_sec_rp_find(t, rx->src) : NULL;
    if (e != NULL && e->state == ESPNOW_SEC_RP_SYNCED && !espnow_sec_rp_check(e, c)) {
        return ESPNOW_SEC_DROP_REPLAY;
    }
    /* 3. authenticate */
    uint8_t pt[ESPNOW_SEC_V2_MAX_PAYLOAD];
    size_t n = rx->len - ESPNOW_SEC_V2_DATA_OVERHEAD;
    esp_err_t err = espnow_sec_ks_open(&espnow_sec_ep_key(ep, slot)->key, rx->src, rx->dst, rx->data, rx->len, pt);
    if (err != ESP_OK) {
        return ESPNOW_SEC_DROP_AUTH;
    }
    if (node->role == ESPNOW_SEC_ROLE_INITIATOR && slot == ESPNOW_SEC_EP_PREV) {
        espnow_sec_v2i_heard(node, rx->src);
    }
    /* 4. accept */
    if (slot == ESPNOW_SEC_EP_STG) {
        (void)espnow_sec_v2_activate(node); /* only holders of G' can produce this frame */
        t = &ep->t_cur;
    }
    e = espnow_sec_rp_find(t, rx->src);
    espnow_sec_drop_reason_t out = ESPNOW_SEC_V2_ACCEPT;
    if (e == NULL) {
        out = t->frozen ? ESPNOW_SEC_DROP_UNSYNCED : start_sync(node, rx->src);
    } else if (e->state != ESPNOW_SEC_RP_SYNCED) {
        out = ESPNOW_SEC_DROP_UNSYNCED; /* its retry timer keeps the challenge going */
    } else if (!espnow_sec_rp_check(e, c)) {
        out = ESPNOW_SEC_DROP_REPLAY;
    }
    if (out != ESPNOW_SEC_V2_ACCEPT) {
        espnow_sec_memzero(pt, n);
        return out;
    }
    /* 5. commit, 6. deliver */
    espnow_sec_rp_commit(e, c, espnow_sec_now(node));
    deliver(node, rx, ESPNOW_SEC_RX_ENCRYPTED, pt, n);
    espnow_sec_memzero(pt, n);
    return ESPNOW_SEC_V2_ACCEPT;
}

espnow_sec_drop_reason_t espnow_sec_v2_on_plain(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    if (node->v2.ep.cur.epoch != 0) {
        return ESPNOW_SEC_DROP_PLAINTEXT; /* §10: never delivered as if authentic */
    }
    node->stats.rx_plaintext++;
    deliver(node, rx, ESPNOW_SEC_RX_PLAINTEXT, &rx->data[ESPNOW_SEC_V2_CLEAR_HDR_LEN],
            rx->len - ESPNOW_SEC_V2_CLEAR_HDR_LEN);
    return ESPNOW_SEC_V2_ACCEPT;
}

espnow_sec_drop_reason_t espnow_sec_v2_on_sync(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    static const uint8_t zero[ESPNOW_SEC_CHALLENGE_LEN] = {0};
    espnow_sec_ep_slot_t slot = ESPNOW_SEC_EP_NONE;
    espnow_sec_drop_reason_t why = select_key(node, rx, &slot);
    if (why != ESPNOW_SEC_V2_ACCEPT) {
        return why;
    }
    if (slot == ESPNOW_SEC_EP_PREV) {
        return ESPNOW_SEC_DROP_EPOCH; /* SYNC only under the current or staged epoch */
    }
    espnow_sec_epochs_t *ep = &node->v2.ep;
    uint8_t pt[ESPNOW_SEC_V2_SYNC_PT];
    if (espnow_sec_ks_open(&espnow_sec_ep_key(ep, slot)->key, rx->src, rx->dst, rx->data, rx->len, pt) != ESP_OK) {
        return ESPNOW_SEC_DROP_AUTH;
    }
    if (slot == ESPNOW_SEC_EP_STG) {
        (void)espnow_sec_v2_activate(node);
    }
    uint32_t now = espnow_sec_now(node);
    const uint8_t *challenge = pt;
    const uint8_t *echo = &pt[ESPNOW_SEC_CHALLENGE_LEN];
    espnow_sec_rp_entry_t *e = espnow_sec_rp_find(&ep->t_cur, rx->src);
    /* 1. an answer to our challenge (unicast PENDING or our broadcast one) */
    if (!espnow_sec_ct_is_zero(echo, ESPNOW_SEC_CHALLENGE_LEN)) {
        bool mine = e != NULL && e->state == ESPNOW_SEC_RP_PENDING &&
                    espnow_sec_ct_equal(echo, e->challenge, ESPNOW_SEC_CHALLENGE_LEN);
        bool bcast = node->v2.bcast_valid && now - node->v2.bcast_t < ESPNOW_SEC_SYNC_BCAST_VALID_MS &&
                     espnow_sec_ct_equal(echo, node->v2.bcast_challenge, ESPNOW_SEC_CHALLENGE_LEN);
        if (mine || bcast) {
            if (e == NULL) {
                e = espnow_sec_rp_alloc(&ep->t_cur, rx->src, now);
            }
            if (e != NULL) {
                espnow_sec_rp_sync(e, rx->hdr.counter, now);
            }
        }
    }
    /* 2. a challenge to answer, with ours if we still need S's counter */
    if (!espnow_sec_ct_is_zero(challenge, ESPNOW_SEC_CHALLENGE_LEN)) {
        /* §4.5 / §8.4: the SYNC limiter first; a refused reply creates no PENDING entry and
         * draws no challenge. */
        if (!espnow_sec_bucket_take(&node->v2.sync_lim, 8, 25, now)) {
            return ESPNOW_SEC_DROP_RATE_LIMITED;
        }
        const uint8_t *ours = zero;
        if (e == NULL) {
            e = espnow_sec_rp_alloc(&ep->t_cur, rx->src, now);
            if (e != NULL) {
                e->state = ESPNOW_SEC_RP_PENDING;
                espnow_sec_v2_draw_nonzero(node, e->challenge, sizeof(e->challenge));
            }
        }
        if (e != NULL && e->state == ESPNOW_SEC_RP_PENDING) {
            e->tries = e->tries ? e->tries : 1;
            e->t_sent = now;
            ours = e->challenge;
        }
        if (rx->broadcast) {
            defer_sync(node, rx->src, espnow_sec_v2_jitter(node, ESPNOW_SEC_SYNC_JITTER_MS), ours, challenge);
        } else {
            (void)send_sync(node, rx->src, ours, challenge);
        }
    }
    return ESPNOW_SEC_V2_ACCEPT;
}

esp_err_t espnow_sec_v2_data_send(espnow_sec_node_t *node, const uint8_t *dst, const uint8_t *data, size_t len)
{
    if (data == NULL) {
        return ESP_ERR_INVALID_ARG;
    }
    if (len == 0 || len > ESPNOW_SEC_V2_MAX_PAYLOAD) {
        return ESP_ERR_ESPNOW_SEC_TOO_LONG;
    }
    const uint8_t *to = dst != NULL ? dst : espnow_sec_broadcast_mac;
    uint8_t frame[ESPNOW_SEC_V2_FRAME_MAX];
    size_t n = 0;
    esp_err_t err;
    espnow_sec_gkey_t *g = &node->v2.ep.cur;
    if (g->epoch != 0) {
        err = espnow_sec_v2_build(node, to, ESPNOW_SEC_V2_T_DATA, g->epoch, &g->key, data, len, frame, &n, NULL);
    } else {
        espnow_sec_v2_clear_hdr(frame, ESPNOW_SEC_V2_T_DATA_PLAIN);
        memcpy(&frame[ESPNOW_SEC_V2_CLEAR_HDR_LEN], data, len);
        n = ESPNOW_SEC_V2_CLEAR_HDR_LEN + len;
        err = ESP_OK;
    }
    if (err == ESP_OK) {
        err = espnow_sec_v2_send_raw(node, to, frame, n);
    }
    espnow_sec_memzero(frame, sizeof(frame));
    return err;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

uint32_t espnow_sec_v2_common_tick(espnow_sec_node_t *node, uint32_t now)
{
    static const uint8_t zero[ESPNOW_SEC_CHALLENGE_LEN] = {0};
    espnow_sec_v2_t *v = &node->v2;
    uint32_t next = espnow_sec_ep_expire(&v->ep, now);
    for (size_t i = 0; i < ESPNOW_SEC_V2_DEFER_MAX; i++) {
        espnow_sec_defer_t *d = &v->defer[i];
        if (d->kind == ESPNOW_SEC_DEFER_FREE) {
            continue;
        }
        if (!espnow_sec_time_reached(now, d->due)) {
            next = min_u32(next, d->due - now);
            continue;
        }
        espnow_sec_defer_t copy = *d;
        memset(d, 0, sizeof(*d)); /* free first: sending may defer again */
        if (copy.kind == ESPNOW_SEC_DEFER_RAW) {
            (void)espnow_sec_v2_send_raw(node, copy.dst, copy.frame, copy.len);
        } else if (espnow_sec_mac_is_broadcast(copy.dst) && espnow_sec_ct_is_zero(copy.echo, sizeof(copy.echo))) {
            memcpy(v->bcast_challenge, copy.challenge, sizeof(copy.challenge));
            v->bcast_t = now;
            v->bcast_valid = true;
            (void)send_sync(node, copy.dst, copy.challenge, zero);
        } else {
            (void)send_sync(node, copy.dst, copy.challenge, copy.echo);
        }
    }
    if (v->ep.cur.epoch != 0) {
        for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS; i++) {
            espnow_sec_rp_entry_t *e = &v->ep.t_cur.e[i];
            if (e->state != ESPNOW_SEC_RP_PENDING) {
                continue;
            }
            uint32_t due = e->t_sent + ESPNOW_SEC_SYNC_RETRY_MS;
            if (!espnow_sec_time_reached(now, due)) {
                next = min_u32(next, due - now);
                continue;
            }
            if (e->tries > ESPNOW_SEC_SYNC_RETRIES) {
                memset(e, 0, sizeof(*e)); /* give up; a later frame starts again */
                continue;
            }
            e->tries++;
            e->t_sent = now;
            (void)send_sync(node, e->mac, e->challenge, zero);
            next = min_u32(next, ESPNOW_SEC_SYNC_RETRY_MS);
        }
    }
    return next;
}

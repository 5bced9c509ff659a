/*
 * v2_initiator.c - protocol v2 initiator (docs/PROTOCOL.md §3, §4, §5, §6.1, §9):
 * scan, the handshake with each responder, key delivery over the pairwise control channel,
 * device records, re-key rollouts, add and remove.
 *
 * One handler per received message. Every per-responder failure ends in fail_peer(), the
 * only place that emits PEER_FAILED; PEER_SECURED is emitted only by the W_ACK -> DONE
 * transition, so a duplicated or retried confirmation reports success exactly once.
 */
#include <stdio.h>
#include <string.h>

#include "node_priv.h"

#define INI(node) (&(node)->u.v2i)
#define NO_INDEX 0xFF

/* ---- records ---- */

static void dev_name(size_t i, char out[16])
{
    snprintf(out, 16, ESPNOW_SEC_V2_REC_DEV_FMT, (unsigned)i);
}

static esp_err_t dev_save(espnow_sec_node_t *node, size_t i)
{
    char name[16];
    uint8_t buf[ESPNOW_SEC_V2_DEV_LEN];
    dev_name(i, name);
    espnow_sec_v2_dev_encode(&INI(node)->devs[i].rec, buf);
    esp_err_t err = node->env->store_save(node->env->ctx, name, buf, sizeof(buf));
    espnow_sec_memzero(buf, sizeof(buf));
    return err;
}

static esp_err_t dev_delete(espnow_sec_node_t *node, size_t i)
{
    char name[16];
    dev_name(i, name);
    esp_err_t err = node->env->store_erase(node->env->ctx, name);
    espnow_sec_memzero(&INI(node)->devs[i], sizeof(INI(node)->devs[i]));
    return err;
}

esp_err_t espnow_sec_v2i_save_grp(espnow_sec_node_t *node)
{
    espnow_sec_v2_grp_rec_t g = {0};
    uint8_t buf[ESPNOW_SEC_V2_GRP_LEN];
    const espnow_sec_epochs_t *ep = &node->v2.ep;
    g.cur.epoch = ep->cur.epoch;
    memcpy(g.cur.g, ep->cur.g, sizeof(g.cur.g));
    g.stg.epoch = ep->stg.epoch;
    memcpy(g.stg.g, ep->stg.g, sizeof(g.stg.g));
    g.grace_s = INI(node)->grace_s;
    g.rollout = INI(node)->rollout;
    espnow_sec_v2_grp_encode(&g, buf);
    esp_err_t err = node->env->store_save(node->env->ctx, ESPNOW_SEC_V2_REC_GRP, buf, sizeof(buf));
    espnow_sec_memzero(buf, sizeof(buf));
    espnow_sec_memzero(&g, sizeof(g));
    return err;
}

static espnow_sec_v2_dev_t *dev_find(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], size_t *idx)
{
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        espnow_sec_v2_dev_t *d = &INI(node)->devs[i];
        if (d->rec.state != ESPNOW_SEC_DEV_FREE && espnow_sec_mac_eq(d->rec.mac, mac)) {
            if (idx != NULL) {
                *idx = i;
            }
            return d;
        }
    }
    return NULL;
}

/* A re-pair left a new key waiting for its confirmation (§6.1, §12: zeros = none). */
static bool has_pending(const espnow_sec_v2_dev_t *d)
{
    uint8_t acc = 0;
    for (size_t k = 0; k < sizeof(d->rec.k_dev_pending); k++) {
        acc |= d->rec.k_dev_pending[k];
    }
    return acc != 0;
}

uint32_t espnow_sec_v2i_active_devices(const espnow_sec_node_t *node)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        n += node->u.v2i.devs[i].rec.state == ESPNOW_SEC_DEV_ACTIVE;
    }
    return n;
}

static void start_rollout_sends(espnow_sec_node_t *node);

esp_err_t espnow_sec_v2i_init(espnow_sec_node_t *node)
{
    espnow_sec_v2_ini_t *in = INI(node);
    uint8_t buf[ESPNOW_SEC_V2_GRP_LEN];
    espnow_sec_v2_grp_rec_t g = {0};
    uint32_t now = espnow_sec_now(node);
    in->grace_s = ESPNOW_SEC_EPOCH_GRACE_S;
    esp_err_t err = espnow_sec_v2_rec_load(node->env, ESPNOW_SEC_V2_REC_GRP, buf, sizeof(buf));
    if (err == ESP_OK) {
        err = espnow_sec_v2_grp_decode(buf, sizeof(buf), &g);
        if (err == ESP_OK && g.cur.epoch == 0) {
            err = ESP_ERR_ESPNOW_SEC_STORE_CORRUPT;
        }
        if (err == ESP_OK) {
            err = espnow_sec_v2_ctr_boot(node, true);
        }
    } else if (err == ESP_ERR_NOT_FOUND) {
        /* First start: the initiator owns the group; G_1 is drawn and persisted once (§4.5). */
        err = espnow_sec_v2_ctr_boot(node, false);
        if (err == ESP_OK) {
            node->env->random(node->env->ctx, g.cur.g, sizeof(g.cur.g));
            g.cur.epoch = 1;
            g.grace_s = in->grace_s;
            espnow_sec_v2_grp_encode(&g, buf);
            err = node->env->store_save(node->env->ctx, ESPNOW_SEC_V2_REC_GRP, buf, sizeof(buf));
        }
    }
    if (err == ESP_OK) {
        err = espnow_sec_ep_install(&node->v2.ep, g.cur.epoch, g.cur.g, in->grace_s, now);
    }
    if (err == ESP_OK && g.stg.epoch != 0) {
        err = espnow_sec_ep_stage(&node->v2.ep, g.stg.epoch, g.stg.g);
    }
    espnow_sec_memzero(buf, sizeof(buf));
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES && err == ESP_OK; i++) {
        char name[16];
        uint8_t rec[ESPNOW_SEC_V2_DEV_LEN];
        dev_name(i, name);
        esp_err_t e = espnow_sec_v2_rec_load(node->env, name, rec, sizeof(rec));
        if (e == ESP_OK) {
            e = espnow_sec_v2_dev_decode(rec, sizeof(rec), &in->devs[i].rec);
        }
        if (e != ESP_OK && e != ESP_ERR_NOT_FOUND) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "device record \"%s\" is damaged: %s", name,
                           espnow_sec_err_to_name(e));
            err = e;
        }
        espnow_sec_memzero(rec, sizeof(rec));
    }
    if (err == ESP_OK && g.rollout && node->v2.ep.stg.epoch != 0) {
        /* Rebooted during a re-key: resume step 2 for devices without staged_acked (§9.2). */
        in->rollout = true;
        in->rollout_epoch = node->v2.ep.stg.epoch;
        in->rollout_t = now;
        start_rollout_sends(node);
    }
    if (err == ESP_OK) {
        espnow_sec_v2_announce(node, ESPNOW_SEC_SYNC_SPREAD_MS);
    }
    espnow_sec_memzero(&g, sizeof(g));
    return err;
}

esp_err_t espnow_sec_v2i_erase(espnow_sec_node_t *node)
{
    esp_err_t err = node->env->store_erase(node->env->ctx, ESPNOW_SEC_V2_REC_GRP);
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES && err == ESP_OK; i++) {
        err = dev_delete(node, i);
    }
    if (err == ESP_OK) {
        espnow_sec_ep_wipe(&node->v2.ep);
        INI(node)->rollout = false;
    }
    return err;
}

/* ---- sending ---- */

static void arm(uint8_t *tries, uint32_t *timeout, uint32_t *deadline, uint32_t now)
{
    *tries = 0;
    *timeout = ESPNOW_SEC_RETRY_BASE_MS;
    *deadline = now + *timeout;
}

/* §6: the k-th timeout is min(BASE * 2^k, CAP). */
static bool rearm(uint8_t *tries, uint32_t *timeout, uint32_t *deadline, uint32_t now)
{
    if (*tries >= ESPNOW_SEC_RETRY_MAX) {
        return false;
    }
    (*tries)++;
    uint64_t t = (uint64_t)ESPNOW_SEC_RETRY_BASE_MS << *tries;
    *timeout = t > ESPNOW_SEC_RETRY_CAP_MS ? ESPNOW_SEC_RETRY_CAP_MS : (uint32_t)t;
    *deadline = now + *timeout;
    return true;
}

/* Build, remember and send one CTRL to device i (its bytes are resent verbatim). */
static esp_err_t ctl_send(espnow_sec_node_t *node, size_t i, uint8_t kind, const uint8_t *pt, size_t pt_len,
                          const uint8_t *k_dev)
{
    espnow_sec_v2_dev_t *d = &INI(node)->devs[i];
    uint8_t k_ctl[ESPNOW_SEC_V2_AES_LEN];
    espnow_sec_ccm_key_t k = {0};
    size_t n = 0;
    esp_err_t err = espnow_sec_ks_ctl_key(k_dev, node->self, d->rec.mac, k_ctl);
    if (err == ESP_OK) {
        err = espnow_sec_ks_import(&k, k_ctl, ESPNOW_SEC_V2_TAG_CTL);
    }
    espnow_sec_memzero(k_ctl, sizeof(k_ctl));
    if (err == ESP_OK) {
        err = espnow_sec_v2_build(node, d->rec.mac, ESPNOW_SEC_V2_T_CTRL, 0, &k, pt, pt_len, d->tx, &n, &d->req_ctr);
    }
    espnow_sec_crypto_ccm_key_destroy(&k);
    if (err != ESP_OK) {
        d->ctl = ESPNOW_SEC_CTL_NONE;
        d->ctl_pending = false;
        return err;
    }
    d->ctl = kind;
    d->ctl_pending = k_dev == d->rec.k_dev_pending;
    d->tx_len = (uint8_t)n;
    arm(&d->tries, &d->timeout, &d->deadline, espnow_sec_now(node));
    (void)espnow_sec_v2_send_raw(node, d->rec.mac, d->tx, n);
    return ESP_OK;
}

/* CTRL KEY {flags, epoch, grace, G} under k_dev, or under k_dev_pending for a re-pair (§6.1);
 * remembers the key_check the ACK must carry. */
static esp_err_t send_key(espnow_sec_node_t *node, size_t i, uint8_t kind, bool activate, const espnow_sec_gkey_t *g,
                          bool pending)
{
    espnow_sec_v2_dev_t *d = &INI(node)->devs[i];
    const uint8_t *k_dev = pending ? d->rec.k_dev_pending : d->rec.k_dev;
    uint8_t pt[ESPNOW_SEC_V2_CTRL_KEY_PT];
    pt[0] = ESPNOW_SEC_V2_OP_KEY;
    pt[1] = activate ? ESPNOW_SEC_V2_KEY_ACTIVATE : 0;
    espnow_sec_put_be16(&pt[2], g->epoch);
    espnow_sec_put_be16(&pt[4], INI(node)->grace_s);
    memcpy(&pt[6], g->g, ESPNOW_SEC_V2_KEY_LEN);
    d->req_epoch = g->epoch;
    esp_err_t err = espnow_sec_ks_key_check(k_dev, g->epoch, g->g, d->expect_check);
    if (err == ESP_OK) {
        err = ctl_send(node, i, kind, pt, sizeof(pt), k_dev);
    }
    espnow_sec_memzero(pt, sizeof(pt));
    return err;
}

/* ---- run bookkeeping ---- */

static void fail_peer(espnow_sec_node_t *node, espnow_sec_v2_peer_t *p, espnow_sec_fail_reason_t reason)
{
    espnow_sec_v2_ini_t *in = INI(node);
    if (p->state < ESPNOW_SEC_V2P_W_ACK && p->sess != NO_INDEX) {
        espnow_sec_memzero(&in->sess[p->sess], sizeof(in->sess[p->sess]));
    }
    p->sess = NO_INDEX;
    p->state = ESPNOW_SEC_V2P_FAILED;
    in->failed++;
    node->stats.hs_failed++;
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "peer " ESPNOW_SEC_MACSTR " failed: %s", ESPNOW_SEC_MAC2STR(p->mac),
                   espnow_sec_fail_reason_str(reason));
    espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_FAILED, p->mac, reason);
}

static espnow_sec_v2_peer_t *peer_find(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    espnow_sec_v2_ini_t *in = INI(node);
    for (uint32_t i = 0; i < in->n_peers; i++) {
        if (espnow_sec_mac_eq(in->peers[i].mac, mac)) {
            return &in->peers[i];
        }
    }
    return NULL;
}

/* The attempt ended without success: start over after `wait`, or fail (§6.1). */
static void restart_or_fail(espnow_sec_node_t *node, espnow_sec_v2_peer_t *p, uint32_t wait,
                            espnow_sec_fail_reason_t reason)
{
    espnow_sec_v2_ini_t *in = INI(node);
    if (p->sess != NO_INDEX) {
        espnow_sec_memzero(&in->sess[p->sess], sizeof(in->sess[p->sess]));
        p->sess = NO_INDEX;
    }
    if (p->attempts >= ESPNOW_SEC_HS_ATTEMPTS) {
        fail_peer(node, p, reason);
        return;
    }
    p->state = ESPNOW_SEC_V2P_FOUND;
    p->not_before = espnow_sec_now(node) + wait;
}

static void maybe_done(espnow_sec_node_t *node)
{
    espnow_sec_v2_ini_t *in = INI(node);
    if (in->phase != ESPNOW_SEC_RUN_HANDSHAKE) {
        return;
    }
    for (uint32_t i = 0; i < in->n_peers; i++) {
        if (in->peers[i].state < ESPNOW_SEC_V2P_DONE) {
            return;
        }
    }
    in->phase = ESPNOW_SEC_RUN_IDLE;
    espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_PROVISION_DONE};
    ev.data.done.succeeded = in->succeeded;
    ev.data.done.unfinished = in->failed;
    ev.data.done.spend_ms = espnow_sec_now(node) - in->t_start;
    ev.data.done.scan_ms = in->scan_ms;
    espnow_sec_emit(node, &ev);
}

/* ---- §9.2 re-key ---- */

static void start_rollout_sends(espnow_sec_node_t *node)
{
    espnow_sec_v2_ini_t *in = INI(node);
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        espnow_sec_v2_dev_t *d = &in->devs[i];
        if (d->rec.state == ESPNOW_SEC_DEV_ACTIVE && d->rec.staged_acked != in->rollout_epoch &&
            d->ctl == ESPNOW_SEC_CTL_NONE) {
            (void)send_key(node, i, ESPNOW_SEC_CTL_STAGE, false, &node->v2.ep.stg, false);
        }
    }
}

/* Step 1: draw G', persist it staged before sending anything; step 2 starts. */
static esp_err_t rekey_begin(espnow_sec_node_t *node)
{
    espnow_sec_v2_ini_t *in = INI(node);
    espnow_sec_epochs_t *ep = &node->v2.ep;
    if (ep->cur.epoch == 0 || ep->cur.epoch == 0xFFFF) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "epoch space exhausted: erase every node and re-provision");
        return ESP_ERR_INVALID_STATE;
    }
    uint8_t g[ESPNOW_SEC_V2_KEY_LEN];
    node->env->random(node->env->ctx, g, sizeof(g));
    esp_err_t err = espnow_sec_ep_stage(ep, (uint16_t)(ep->cur.epoch + 1), g);
    espnow_sec_memzero(g, sizeof(g));
    if (err != ESP_OK) {
        return err;
    }
    in->rollout = true;
    err = espnow_sec_v2i_save_grp(node);
    if (err != ESP_OK) {
        in->rollout = false;
        espnow_sec_ep_clear(&ep->stg);
        espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "cannot store the new group key: %s", espnow_sec_err_to_name(err));
        return ESP_FAIL;
    }
    in->rollout_epoch = ep->stg.epoch;
    in->rollout_t = espnow_sec_now(node);
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        in->devs[i].rec.staged_acked = 0;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "re-key: rolling out epoch %u to %u devices", in->rollout_epoch,
                   (unsigned)espnow_sec_v2i_active_devices(node));
    start_rollout_sends(node);
    return ESP_OK;
}

/* Step 3: activate, persist, announce. */
void espnow_sec_v2i_rollout_finish(espnow_sec_node_t *node)
{
    espnow_sec_v2_ini_t *in = INI(node);
    uint32_t acked = 0, stragglers = 0;
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        espnow_sec_v2_dev_t *d = &in->devs[i];
        if (d->rec.state != ESPNOW_SEC_DEV_ACTIVE) {
            continue;
        }
        if (d->ctl == ESPNOW_SEC_CTL_STAGE) {
            d->ctl = ESPNOW_SEC_CTL_NONE; /* a straggler now: it gets the key when heard */
        }
        if (d->rec.staged_acked == in->rollout_epoch) {
            d->rec.acked_epoch = in->rollout_epoch;
            acked++;
        } else {
            stragglers++;
        }
        (void)dev_save(node, i);
    }
    in->rollout = false;
    (void)espnow_sec_v2_activate(node); /* saves v2_grp with rollout = 0 */
    in->announce_left = ESPNOW_SEC_ANNOUNCE_REPEAT;
    in->announce_at = espnow_sec_now(node);
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "re-key done: epoch %u, %u devices acknowledged, %u stragglers",
                   node->v2.ep.cur.epoch, (unsigned)acked, (unsigned)stragglers);
    espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_REKEY_DONE};
    ev.data.rekey.epoch = node->v2.ep.cur.epoch;
    ev.data.rekey.acked = acked;
    ev.data.rekey.stragglers = stragglers;
    espnow_sec_emit(node, &ev);
}

static void rollout_check(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_v2_ini_t *in = INI(node);
    if (!in->rollout) {
        return;
    }
    bool all = true;
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        const espnow_sec_v2_dev_t *d = &in->devs[i];
        if (d->rec.state == ESPNOW_SEC_DEV_ACTIVE && d->rec.staged_acked != in->rollout_epoch) {
            all = false;
        }
        if (d->ctl == ESPNOW_SEC_CTL_PROVISION && d->req_epoch == in->rollout_epoch) {
            all = false; /* a rejoiner is getting the new epoch */
        }
    }
    if (all || now - in->rollout_t >= ESPNOW_SEC_REKEY_TIMEOUT_MS) {
        espnow_sec_v2i_rollout_finish(node);
    }
}

bool espnow_sec_v2i_busy(const espnow_sec_node_t *node)
{
    const espnow_sec_v2_ini_t *in = &node->u.v2i;
    if (in->phase != ESPNOW_SEC_RUN_IDLE || in->rollout) {
        return true;
    }
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        if (in->devs[i].ctl == ESPNOW_SEC_CTL_UNPROVISION) {
            return true;
        }
    }
    return false;
}

esp_err_t espnow_sec_v2i_rekey(espnow_sec_node_t *node)
{
    if (espnow_sec_v2i_busy(node)) {
        return ESP_ERR_INVALID_STATE;
    }
    return rekey_begin(node);
}

esp_err_t espnow_sec_v2i_remove(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    size_t i = 0;
    espnow_sec_v2_dev_t *d = dev_find(node, mac, &i);
    if (d == NULL) {
        return ESP_ERR_NOT_FOUND;
    }
    if (espnow_sec_v2i_busy(node)) {
        return ESP_ERR_INVALID_STATE;
    }
    d->rec.state = ESPNOW_SEC_DEV_REMOVING;
    d->ctl = ESPNOW_SEC_CTL_NONE;
    if (dev_save(node, i) != ESP_OK) {
        return ESP_FAIL;
    }
    uint8_t pt[ESPNOW_SEC_V2_CTRL_UNPROV_PT] = {ESPNOW_SEC_V2_OP_UNPROVISION};
    (void)ctl_send(node, i, ESPNOW_SEC_CTL_UNPROVISION, pt, sizeof(pt), d->rec.k_dev);
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "removing " ESPNOW_SEC_MACSTR ": un-provision it and re-key the others",
                   ESPNOW_SEC_MAC2STR(mac));
    esp_err_t err = rekey_begin(node);
    return err == ESP_OK ? ESP_OK : err;
}

/* §9.2 step 4: anything heard from a straggler gets it the current key, rate limited. */
void espnow_sec_v2i_heard(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    espnow_sec_v2_ini_t *in = INI(node);
    size_t i = 0;
    espnow_sec_v2_dev_t *d = dev_find(node, mac, &i);
    uint32_t now = espnow_sec_now(node);
    if (d == NULL || in->rollout || d->rec.state != ESPNOW_SEC_DEV_ACTIVE || d->ctl != ESPNOW_SEC_CTL_NONE ||
        d->rec.acked_epoch >= node->v2.ep.cur.epoch ||
        (d->t_straggler != 0 && now - d->t_straggler < ESPNOW_SEC_STRAGGLER_GAP_MS)) {
        return;
    }
    d->t_straggler = now | 1;
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "straggler " ESPNOW_SEC_MACSTR ": sending epoch %u",
                   ESPNOW_SEC_MAC2STR(mac), node->v2.ep.cur.epoch);
    (void)send_key(node, i, ESPNOW_SEC_CTL_PUSH, true, &node->v2.ep.cur, false);
}

/* ---- §3 scan ---- */

static void send_scan_req(espnow_sec_node_t *node)
{
    uint8_t f[ESPNOW_SEC_V2_SCAN_REQ_LEN];
    espnow_sec_v2_clear_hdr(f, ESPNOW_SEC_V2_T_SCAN_REQ);
    espnow_sec_put_be32(&f[4], INI(node)->scan_id);
    (void)espnow_sec_v2_send_raw(node, espnow_sec_broadcast_mac, f, sizeof(f));
}

esp_err_t espnow_sec_v2i_provision(espnow_sec_node_t *node, uint32_t scan_ms)
{
    espnow_sec_v2_ini_t *in = INI(node);
    if (node->v2.ep.cur.epoch == 0 || espnow_sec_v2i_busy(node)) {
        return ESP_ERR_INVALID_STATE;
    }
    uint8_t id[4];
    espnow_sec_v2_draw_nonzero(node, id, sizeof(id));
    in->scan_id = espnow_sec_get_be32(id);
    in->phase = ESPNOW_SEC_RUN_SCAN;
    in->t_start = espnow_sec_now(node);
    in->scan_window = scan_ms;
    in->next_scan_req = in->t_start + ESPNOW_SEC_SCAN_INTERVAL_MS;
    in->n_peers = 0;
    in->scan_overflow = 0;
    in->succeeded = 0;
    in->failed = 0;
    memset(in->peers, 0, sizeof(in->peers));
    send_scan_req(node);
    return ESP_OK;
}

espnow_sec_drop_reason_t espnow_sec_v2i_on_scan_resp(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_ini_t *in = INI(node);
    const uint8_t *b = rx->data;
    espnow_sec_v2i_heard(node, rx->src);
    if (in->phase != ESPNOW_SEC_RUN_SCAN || espnow_sec_get_be32(&b[4]) != in->scan_id) {
        return ESPNOW_SEC_DROP_STATE;
    }
    if (b[8] > ESPNOW_SEC_V2_SCAN_REPAIR_OPEN || (b[11] & 0xFC) != 0) {
        return ESPNOW_SEC_DROP_MALFORMED;
    }
    if (peer_find(node, rx->src) != NULL) {
        return ESPNOW_SEC_DROP_DUPLICATE; /* the first answer per MAC counts */
    }
    espnow_sec_v2_dev_t *d = dev_find(node, rx->src, NULL);
    uint8_t st = b[8];
    bool handshake = st == ESPNOW_SEC_V2_SCAN_UNPROVISIONED || st == ESPNOW_SEC_V2_SCAN_REPAIR_OPEN;
    bool key_only = false;
    bool via_pending = false;
    if (st == ESPNOW_SEC_V2_SCAN_PROVISIONED_BY_YOU) {
        if (d == NULL) {
            espnow_sec_log(node, ESPNOW_SEC_LOG_WARN,
                           "responder " ESPNOW_SEC_MACSTR " says we provisioned it but we have no record: erase it locally",
                           ESPNOW_SEC_MAC2STR(rx->src));
        } else if (d->rec.state == ESPNOW_SEC_DEV_PENDING_KEY ||
                   (d->rec.state == ESPNOW_SEC_DEV_ACTIVE &&
                    (has_pending(d) || espnow_sec_get_be16(&b[9]) < node->v2.ep.cur.epoch))) {
            /* An unfinished record (§6.1): pick the stored key whose pair_id matches, k_dev_pending
             * first. The choice is committed (promote or drop the pending key) only when the
             * responder's CTRL_ACK under that key authenticates; SCAN_RESP itself is not. */
            uint8_t pid[ESPNOW_SEC_V2_PAIR_ID_LEN];
            if (has_pending(d) && espnow_sec_ks_pair_id(d->rec.k_dev_pending, pid) == ESP_OK &&
                espnow_sec_ct_equal(pid, &b[12], sizeof(pid))) {
                key_only = true;
                via_pending = true;
            } else if (espnow_sec_ks_pair_id(d->rec.k_dev, pid) == ESP_OK &&
                       espnow_sec_ct_equal(pid, &b[12], sizeof(pid))) {
                key_only = true;
            } else {
                espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "responder " ESPNOW_SEC_MACSTR " holds a pairing we do not know",
                               ESPNOW_SEC_MAC2STR(rx->src));
            }
        }
    }
    if (!handshake && !key_only) {
        return ESPNOW_SEC_V2_ACCEPT; /* seen, nothing to do with it */
    }
    if (d == NULL && handshake && espnow_sec_v2i_active_devices(node) + in->n_peers >= ESPNOW_SEC_MAX_DEVICES) {
        in->scan_overflow++;
        node->stats.scan_overflow++;
        espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "no device record left for " ESPNOW_SEC_MACSTR " (MAX_DEVICES)",
                       ESPNOW_SEC_MAC2STR(rx->src));
        return ESPNOW_SEC_DROP_TABLE_FULL;
    }
    if (in->n_peers >= ESPNOW_SEC_MAX_RESPONDERS) {
        in->scan_overflow++;
        node->stats.scan_overflow++;
        return ESPNOW_SEC_DROP_TABLE_FULL;
    }
    espnow_sec_v2_peer_t *p = &in->peers[in->n_peers++];
    memset(p, 0, sizeof(*p));
    memcpy(p->mac, rx->src, ESPNOW_SEC_ADDR_LEN);
    p->state = ESPNOW_SEC_V2P_FOUND;
    p->sess = NO_INDEX;
    p->dev = NO_INDEX;
    p->via_key = key_only;
    p->via_pending = via_pending;
    p->repair = st == ESPNOW_SEC_V2_SCAN_REPAIR_OPEN && d != NULL && d->rec.state != ESPNOW_SEC_DEV_REMOVING;
    return ESPNOW_SEC_V2_ACCEPT;
}

/* ---- §4 handshake ---- */

static void start_attempt(espnow_sec_node_t *node, espnow_sec_v2_peer_t *p, size_t si)
{
    espnow_sec_v2_isess_t *s = &INI(node)->sess[si];
    uint8_t sid[4];
    memset(s, 0, sizeof(*s));
    p->attempts++;
    espnow_sec_v2_draw_nonzero(node, sid, sizeof(sid));
    node->env->random(node->env->ctx, s->e_priv, sizeof(s->e_priv));
    s->used = true;
    s->peer = (uint8_t)(p - INI(node)->peers);
    s->sid = espnow_sec_get_be32(sid);
    espnow_sec_v2_clear_hdr(s->hs1, ESPNOW_SEC_V2_T_HS1);
    memcpy(&s->hs1[4], sid, 4);
    s->hs1[8] = 0x01; /* suite 1 */
    if (espnow_sec_crypto_x25519_public(s->e_priv, &s->hs1[9]) != ESP_OK) {
        espnow_sec_memzero(s, sizeof(*s));
        fail_peer(node, p, ESPNOW_SEC_FAIL_CRYPTO);
        return;
    }
    p->sess = (uint8_t)si;
    p->state = ESPNOW_SEC_V2P_W_HS2;
    s->tx_type = ESPNOW_SEC_V2_T_HS1;
    arm(&s->tries, &s->timeout, &s->deadline, espnow_sec_now(node));
    (void)espnow_sec_v2_send_raw(node, p->mac, s->hs1, sizeof(s->hs1));
}

/* The session of `src` waiting in `state` for `sid`, or NULL. */
static espnow_sec_v2_isess_t *sess_for(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx, espnow_sec_v2_peer_t **pp)
{
    espnow_sec_v2_peer_t *p = peer_find(node, rx->src);
    if (p == NULL || p->sess == NO_INDEX || (p->state != ESPNOW_SEC_V2P_W_HS2 && p->state != ESPNOW_SEC_V2P_W_HS4)) {
        return NULL;
    }
    espnow_sec_v2_isess_t *s = &INI(node)->sess[p->sess];
    if (!s->used || s->sid != espnow_sec_get_be32(&rx->data[4])) {
        return NULL;
    }
    *pp = p;
    return s;
}

espnow_sec_drop_reason_t espnow_sec_v2i_on_hs2(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_peer_t *p = NULL;
    espnow_sec_v2_isess_t *s = sess_for(node, rx, &p);
    if (s == NULL) {
        return ESPNOW_SEC_DROP_STATE;
    }
    if (p->state == ESPNOW_SEC_V2P_W_HS4) {
        if (memcmp(s->hs2, rx->data, ESPNOW_SEC_V2_HS_LEN) == 0) {
            (void)espnow_sec_v2_send_raw(node, p->mac, s->hs3, sizeof(s->hs3)); /* our HS3 was lost */
            return ESPNOW_SEC_DROP_DUPLICATE;
        }
        return ESPNOW_SEC_DROP_STATE;
    }
    uint8_t dh[ESPNOW_SEC_X25519_LEN];
    uint8_t th2[ESPNOW_SEC_SHA256_LEN];
    memcpy(s->hs2, rx->data, ESPNOW_SEC_V2_HS_LEN);
    esp_err_t err = espnow_sec_crypto_x25519(s->e_priv, &s->hs2[8], dh);
    espnow_sec_memzero(s->e_priv, sizeof(s->e_priv));
    if (err != ESP_OK) {
        restart_or_fail(node, p, 0, ESPNOW_SEC_FAIL_BAD_KEY);
        return ESPNOW_SEC_DROP_MALFORMED;
    }
    err = espnow_sec_ks_th2(node->self, p->mac, s->hs1, s->hs2, th2);
    if (err == ESP_OK) {
        err = espnow_sec_ks_hs_keys(th2, dh, node->pop_hash, &s->keys);
    }
    espnow_sec_memzero(dh, sizeof(dh));
    espnow_sec_v2_clear_hdr(s->hs3, ESPNOW_SEC_V2_T_HS3);
    espnow_sec_put_be32(&s->hs3[4], s->sid);
    if (err == ESP_OK) {
        err = espnow_sec_ks_conf(s->keys.k_conf_i, th2, &s->hs3[8]);
    }
    if (err == ESP_OK) {
        err = espnow_sec_ks_th3(th2, s->hs3, s->th3);
    }
    espnow_sec_memzero(s->keys.k_conf_i, sizeof(s->keys.k_conf_i));
    if (err != ESP_OK) {
        fail_peer(node, p, ESPNOW_SEC_FAIL_CRYPTO);
        return ESPNOW_SEC_DROP_STATE;
    }
    p->state = ESPNOW_SEC_V2P_W_HS4;
    s->tx_type = ESPNOW_SEC_V2_T_HS3;
    arm(&s->tries, &s->timeout, &s->deadline, espnow_sec_now(node));
    (void)espnow_sec_v2_send_raw(node, p->mac, s->hs3, sizeof(s->hs3));
    return ESPNOW_SEC_V2_ACCEPT;
}

/* A free device slot for `mac` (its existing one for a known MAC). */
static espnow_sec_v2_dev_t *dev_slot(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], size_t *idx,
                                     bool *known)
{
    espnow_sec_v2_dev_t *d = dev_find(node, mac, idx);
    *known = d != NULL && d->rec.state != ESPNOW_SEC_DEV_PENDING_KEY;
    if (d != NULL) {
        return d;
    }
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        if (INI(node)->devs[i].rec.state == ESPNOW_SEC_DEV_FREE) {
            *idx = i;
            return &INI(node)->devs[i];
        }
    }
    return NULL;
}

espnow_sec_drop_reason_t espnow_sec_v2i_on_hs4(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_ini_t *in = INI(node);
    espnow_sec_v2_peer_t *p = NULL;
    espnow_sec_v2_isess_t *s = sess_for(node, rx, &p);
    if (s == NULL || p->state != ESPNOW_SEC_V2P_W_HS4) {
        return ESPNOW_SEC_DROP_STATE;
    }
    if (espnow_sec_ks_conf_verify(s->keys.k_conf_r, s->th3, &rx->data[8]) != ESP_OK) {
        fail_peer(node, p, ESPNOW_SEC_FAIL_POP_MISMATCH);
        return ESPNOW_SEC_DROP_AUTH;
    }
    /* Write-ahead: the device record exists before the key leaves (§6.1). */
    size_t i = 0;
    bool known = false;
    espnow_sec_v2_dev_t *d = dev_slot(node, p->mac, &i, &known);
    if (d == NULL) {
        fail_peer(node, p, ESPNOW_SEC_FAIL_STORE);
        return ESPNOW_SEC_V2_ACCEPT;
    }
    /* Re-pair (REPAIR_OPEN with a record): the new key waits in k_dev_pending (replacing an
     * older pending one) and the old k_dev and state stay until the ACK, because the responder
     * keeps the old pairing until it installs the KEY (§5.3 RESET). Newcomer or rejoin: a fresh
     * record, wiping whatever the slot held. */
    bool repair = p->repair && d->rec.state != ESPNOW_SEC_DEV_FREE && d->rec.state != ESPNOW_SEC_DEV_REMOVING;
    espnow_sec_v2_dev_t saved = *d;
    if (repair) {
        memcpy(d->rec.k_dev_pending, s->keys.k_dev, sizeof(d->rec.k_dev_pending));
    } else {
        espnow_sec_memzero(&d->rec, sizeof(d->rec));
        memcpy(d->rec.mac, p->mac, ESPNOW_SEC_ADDR_LEN);
        memcpy(d->rec.k_dev, s->keys.k_dev, sizeof(d->rec.k_dev));
        d->rec.state = ESPNOW_SEC_DEV_PENDING_KEY;
    }
    d->ctl = ESPNOW_SEC_CTL_NONE;
    d->ctl_pending = false;
    espnow_sec_memzero(s, sizeof(*s));
    p->sess = NO_INDEX;
    if (dev_save(node, i) != ESP_OK) {
        *d = saved;
        fail_peer(node, p, ESPNOW_SEC_FAIL_STORE);
        return ESPNOW_SEC_V2_ACCEPT;
    }
    espnow_sec_memzero(&saved, sizeof(saved));
    const espnow_sec_gkey_t *g = &node->v2.ep.cur;
    if (known && !repair) {
        /* A rejoin (§9.5): it may have lost its counter, so it must never send under an epoch
         * it used before: it gets a fresh epoch, and everyone else is re-keyed to it. */
        if (!in->rollout && rekey_begin(node) != ESP_OK) {
            fail_peer(node, p, ESPNOW_SEC_FAIL_STORE);
            return ESPNOW_SEC_V2_ACCEPT;
        }
        g = &node->v2.ep.stg;
    }
    p->state = ESPNOW_SEC_V2P_W_ACK;
    p->dev = (uint8_t)i;
    if (send_key(node, i, ESPNOW_SEC_CTL_PROVISION, true, g, repair) != ESP_OK) {
        fail_peer(node, p, ESPNOW_SEC_FAIL_CRYPTO);
    }
    return ESPNOW_SEC_V2_ACCEPT;
}

espnow_sec_drop_reason_t espnow_sec_v2i_on_hs_err(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    espnow_sec_v2_peer_t *p = NULL;
    espnow_sec_v2_isess_t *s = sess_for(node, rx, &p);
    if (s == NULL) {
        return ESPNOW_SEC_DROP_STATE;
    }
    uint8_t code = rx->data[8];
    uint32_t retry = espnow_sec_get_be16(&rx->data[9]);
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "HS_ERR %u from " ESPNOW_SEC_MACSTR, code, ESPNOW_SEC_MAC2STR(p->mac));
    switch (code) {
    case ESPNOW_SEC_V2_ERR_BUSY:
        restart_or_fail(node, p, retry > ESPNOW_SEC_RETRY_BASE_MS ? retry : ESPNOW_SEC_RETRY_BASE_MS,
                        ESPNOW_SEC_FAIL_TIMEOUT);
        break;
    case ESPNOW_SEC_V2_ERR_BAD_KEY:
    case ESPNOW_SEC_V2_ERR_NO_SESSION:
        restart_or_fail(node, p, 0, ESPNOW_SEC_FAIL_TIMEOUT);
        break;
    case ESPNOW_SEC_V2_ERR_POP_MISMATCH:
        fail_peer(node, p, ESPNOW_SEC_FAIL_POP_MISMATCH);
        break;
    case ESPNOW_SEC_V2_ERR_PROVISIONED:
    case ESPNOW_SEC_V2_ERR_UNSUPPORTED:
        fail_peer(node, p, ESPNOW_SEC_FAIL_MALFORMED);
        break;
    default:
        return ESPNOW_SEC_DROP_MALFORMED;
    }
    return ESPNOW_SEC_V2_ACCEPT;
}

/* ---- §5 control answers ---- */

static void ctl_done(espnow_sec_node_t *node, size_t i, bool ok, espnow_sec_fail_reason_t why)
{
    espnow_sec_v2_ini_t *in = INI(node);
    espnow_sec_v2_dev_t *d = &in->devs[i];
    uint8_t kind = d->ctl;
    bool under_pending = d->ctl_pending;
    d->ctl = ESPNOW_SEC_CTL_NONE;
    d->ctl_pending = false;
    espnow_sec_v2_peer_t *p = peer_find(node, d->rec.mac);
    if (p != NULL && p->state != ESPNOW_SEC_V2P_W_ACK) {
        p = NULL;
    }
    switch (kind) {
    case ESPNOW_SEC_CTL_PROVISION:
    case ESPNOW_SEC_CTL_PUSH:
        if (ok) {
            /* The responder proved which pairing it holds: the other one is superseded (§6.1
             * W_ACK re-pair: k_dev := k_dev_pending; unfinished record: keep the matching key). */
            if (under_pending) {
                memcpy(d->rec.k_dev, d->rec.k_dev_pending, sizeof(d->rec.k_dev));
            }
            espnow_sec_memzero(d->rec.k_dev_pending, sizeof(d->rec.k_dev_pending));
            d->rec.state = ESPNOW_SEC_DEV_ACTIVE;
            d->rec.acked_epoch = d->req_epoch;
            if (in->rollout && d->req_epoch == in->rollout_epoch) {
                d->rec.staged_acked = d->req_epoch;
            }
            (void)dev_save(node, i);
        }
        if (p != NULL) {
            if (ok) {
                p->state = ESPNOW_SEC_V2P_DONE;
                in->succeeded++;
                node->stats.hs_secured++;
                espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_SECURED, p->mac, ESPNOW_SEC_FAIL_NONE);
            } else {
                fail_peer(node, p, why); /* record kept unfinished (PENDING_KEY, or k_dev_pending of a re-pair) */
            }
        }
        break;
    case ESPNOW_SEC_CTL_STAGE:
        if (ok) {
            d->rec.staged_acked = d->req_epoch;
            (void)dev_save(node, i);
        }
        break;
    case ESPNOW_SEC_CTL_UNPROVISION: {
        uint8_t mac[ESPNOW_SEC_ADDR_LEN];
        memcpy(mac, d->rec.mac, sizeof(mac));
        (void)dev_delete(node, i);
        espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "device " ESPNOW_SEC_MACSTR " removed (%s)", ESPNOW_SEC_MAC2STR(mac),
                       ok ? "it erased its keys" : "no answer; cut off by the re-key");
        espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_DEVICE_REMOVED, mac, ok ? ESPNOW_SEC_FAIL_NONE : ESPNOW_SEC_FAIL_TIMEOUT);
        break;
    }
    default:
        break;
    }
    rollout_check(node, espnow_sec_now(node));
    maybe_done(node);
}

espnow_sec_drop_reason_t espnow_sec_v2i_on_ctrl_ack(espnow_sec_node_t *node, const espnow_sec_v2_rx_t *rx)
{
    size_t i = 0;
    espnow_sec_v2_dev_t *d = dev_find(node, rx->src, &i);
    if (d == NULL) {
        return ESPNOW_SEC_DROP_STATE;
    }
    uint8_t k_ctl[ESPNOW_SEC_V2_AES_LEN];
    espnow_sec_ccm_key_t k = {0};
    uint8_t pt[ESPNOW_SEC_V2_CTRL_ACK_PT];
    /* The answer comes under the key the outstanding request was sealed with (§6.1 re-pair). */
    const uint8_t *k_dev = d->ctl != ESPNOW_SEC_CTL_NONE && d->ctl_pending ? d->rec.k_dev_pending : d->rec.k_dev;
    esp_err_t err = espnow_sec_ks_ctl_key(k_dev, node->self, rx->src, k_ctl);
    if (err == ESP_OK) {
        err = espnow_sec_ks_import(&k, k_ctl, ESPNOW_SEC_V2_TAG_CTL);
    }
    espnow_sec_memzero(k_ctl, sizeof(k_ctl));
    if (err == ESP_OK) {
        err = espnow_sec_ks_open(&k, rx->src, rx->dst, rx->data, rx->len, pt);
        if (err != ESP_OK) {
            err = ESP_ERR_ESPNOW_SEC_AUTH;
        }
    }
    espnow_sec_crypto_ccm_key_destroy(&k);
    if (err == ESP_ERR_ESPNOW_SEC_AUTH) {
        return ESPNOW_SEC_DROP_AUTH;
    }
    if (err != ESP_OK) {
        return ESPNOW_SEC_DROP_STATE;
    }
    uint64_t req = espnow_sec_get_be48(pt);
    uint8_t op = pt[6];
    uint8_t status = pt[7];
    if (d->ctl == ESPNOW_SEC_CTL_NONE || req != d->req_ctr) {
        espnow_sec_memzero(pt, sizeof(pt));
        return ESPNOW_SEC_DROP_STATE; /* a late answer to a request already settled */
    }
    /* Freshness: this answers our outstanding request (§5.3). */
    espnow_sec_v2_sync_peer(node, rx->src, rx->hdr.counter);
    bool ok = status == ESPNOW_SEC_V2_ST_OK;
    espnow_sec_fail_reason_t why = status == ESPNOW_SEC_V2_ST_STORE_FAIL ? ESPNOW_SEC_FAIL_STORE : ESPNOW_SEC_FAIL_KEY_ECHO;
    if (op == ESPNOW_SEC_V2_OP_KEY && ok) {
        /* Success only if the responder proves it installed exactly our key (§5.2). */
        ok = espnow_sec_ct_equal(&pt[12], d->expect_check, ESPNOW_SEC_V2_CHECK_LEN);
    } else if ((op == ESPNOW_SEC_V2_OP_KEY) != (d->ctl != ESPNOW_SEC_CTL_UNPROVISION)) {
        ok = false;
    }
    espnow_sec_memzero(pt, sizeof(pt));
    if (!ok) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "device " ESPNOW_SEC_MACSTR " answered status %u", ESPNOW_SEC_MAC2STR(rx->src),
                       status);
    }
    ctl_done(node, i, ok, why);
    return ESPNOW_SEC_V2_ACCEPT;
}

/* ---- timers ---- */

static uint32_t until(uint32_t next, uint32_t deadline, uint32_t now)
{
    uint32_t d = espnow_sec_time_reached(now, deadline) ? 0 : deadline - now;
    return d < next ? d : next;
}

uint32_t espnow_sec_v2i_tick(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_v2_ini_t *in = INI(node);
    uint32_t next = UINT32_MAX;
    if (in->phase == ESPNOW_SEC_RUN_SCAN) {
        if (now - in->t_start >= in->scan_window) {
            in->scan_ms = now - in->t_start;
            in->phase = ESPNOW_SEC_RUN_HANDSHAKE;
            espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_SCAN_DONE};
            ev.data.scan.found = in->n_peers;
            ev.data.scan.scan_ms = in->scan_ms;
            espnow_sec_emit(node, &ev);
            for (uint32_t i = 0; i < in->n_peers; i++) {
                espnow_sec_v2_peer_t *p = &in->peers[i];
                size_t di = 0;
                if (p->via_key && dev_find(node, p->mac, &di) != NULL && in->devs[di].ctl == ESPNOW_SEC_CTL_NONE) {
                    p->state = ESPNOW_SEC_V2P_W_ACK;
                    p->dev = (uint8_t)di;
                    bool pending = p->via_pending && has_pending(&in->devs[di]); /* (not settled meanwhile) */
                    if (send_key(node, di, ESPNOW_SEC_CTL_PROVISION, true, &node->v2.ep.cur, pending) != ESP_OK) {
                        fail_peer(node, p, ESPNOW_SEC_FAIL_CRYPTO);
                    }
                } else if (p->via_key) {
                    fail_peer(node, p, ESPNOW_SEC_FAIL_MALFORMED);
                }
            }
            maybe_done(node);
        } else {
            if (espnow_sec_time_reached(now, in->next_scan_req)) {
                send_scan_req(node);
                in->next_scan_req = now + ESPNOW_SEC_SCAN_INTERVAL_MS;
            }
            next = until(next, in->next_scan_req, now);
            next = until(next, in->t_start + in->scan_window, now);
        }
    }
    if (in->phase == ESPNOW_SEC_RUN_HANDSHAKE) {
        /* timeouts of running attempts */
        for (size_t si = 0; si < ESPNOW_SEC_MAX_HANDSHAKES; si++) {
            espnow_sec_v2_isess_t *s = &in->sess[si];
            if (!s->used) {
                continue;
            }
            espnow_sec_v2_peer_t *p = &in->peers[s->peer];
            if (espnow_sec_time_reached(now, s->deadline)) {
                if (rearm(&s->tries, &s->timeout, &s->deadline, now)) {
                    node->stats.tx_retransmits++;
                    const uint8_t *f = s->tx_type == ESPNOW_SEC_V2_T_HS1 ? s->hs1 : s->hs3;
                    (void)espnow_sec_v2_send_raw(node, p->mac, f, s->tx_type == ESPNOW_SEC_V2_T_HS1 ? sizeof(s->hs1)
                                                                                                   : sizeof(s->hs3));
                } else {
                    restart_or_fail(node, p, 0, ESPNOW_SEC_FAIL_TIMEOUT);
                    continue;
                }
            }
            next = until(next, s->deadline, now);
        }
        /* new attempts while slots are free */
        for (uint32_t i = 0; i < in->n_peers; i++) {
            espnow_sec_v2_peer_t *p = &in->peers[i];
            if (p->state != ESPNOW_SEC_V2P_FOUND) {
                continue;
            }
            if (!espnow_sec_time_reached(now, p->not_before)) {
                next = until(next, p->not_before, now);
                continue;
            }
            size_t si = 0;
            while (si < ESPNOW_SEC_MAX_HANDSHAKES && in->sess[si].used) {
                si++;
            }
            if (si == ESPNOW_SEC_MAX_HANDSHAKES) {
                break;
            }
            start_attempt(node, p, si);
            next = 0;
        }
    }
    /* outstanding control requests */
    for (size_t i = 0; i < ESPNOW_SEC_MAX_DEVICES; i++) {
        espnow_sec_v2_dev_t *d = &in->devs[i];
        if (d->ctl == ESPNOW_SEC_CTL_NONE) {
            continue;
        }
        if (espnow_sec_time_reached(now, d->deadline)) {
            if (rearm(&d->tries, &d->timeout, &d->deadline, now)) {
                node->stats.tx_retransmits++;
                (void)espnow_sec_v2_send_raw(node, d->rec.mac, d->tx, d->tx_len);
            } else {
                ctl_done(node, i, false, ESPNOW_SEC_FAIL_TIMEOUT);
                continue;
            }
        }
        next = until(next, d->deadline, now);
    }
    if (in->rollout) {
        rollout_check(node, now);
        if (in->rollout) {
            next = until(next, in->rollout_t + ESPNOW_SEC_REKEY_TIMEOUT_MS, now);
        }
    }
    if (in->announce_left > 0) {
        if (espnow_sec_time_reached(now, in->announce_at)) {
            in->announce_left--;
            in->announce_at = now + ESPNOW_SEC_ANNOUNCE_GAP_MS;
            espnow_sec_v2_announce(node, 0);
        }
        if (in->announce_left > 0) {
            next = until(next, in->announce_at, now);
        }
    }
    maybe_done(node);
    return next;
}

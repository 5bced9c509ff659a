/*
 * compat_responder.c - answers scans, runs the security1 server side and installs the app key
 * (reference/upstream-espnow-security.md §2.3-2.5; protocomm-security.md §4.1, §4.4).
 *
 * Differences from upstream, all on purpose:
 *  - two tables keyed by the initiator's MAC. pend[] (ESPNOW_SEC_RESPONDER_PENDING, small
 *    entries) holds half-open handshakes: Resp0 sent, no valid Cmd1 yet. sess[]
 *    (RESPONDER_SESSIONS) holds handshakes whose Cmd1 verified, i.e. whose initiator proved
 *    the PoP (WAIT_KEY, DONE). A Cmd0 - anyone can send one, from any MAC - only ever takes
 *    a pend[] entry: a free one, else the oldest (counted in stats.hs_evicted). It can never
 *    push out a proven session. pend[] is large enough that a stranger flooding Cmd0s from
 *    rotating MACs must send more than ESPNOW_SEC_RESPONDER_PENDING of them within one
 *    Resp0 -> Cmd1 round trip of the real initiator to displace it; the initiator also
 *    restarts with a fresh Cmd0 when Cmd1 goes unanswered (compat_initiator.c). Against a faster
 *    flood compat has no defence (no cookies, no rate limit): protocol v2 (§11).
 *    A valid Cmd1 moves the handshake to sess[]: the slot of the same MAC, else a free one,
 *    else the oldest DONE, else the oldest WAIT_KEY (all proven; counted as evictions).
 *  - a Cmd0 from the MAC of a proven session (the initiator restarting, or a forgery) opens
 *    a new half-open entry and leaves the proven session alone until the new one verifies;
 *  - idempotent answers: a repeated Cmd0 (same client key) gets the same Resp0, a repeated
 *    Cmd1 the cached Resp1, a repeated KEY (same bytes) the cached KEY_RESP, so a lost answer
 *    never strands a device half-provisioned;
 *  - wrong verifier (Cmd1 fails its check): no answer, stats.hs_auth_fail, and the entry
 *    STAYS: the sender MAC is unauthenticated, so one forged Cmd1 must not end the real
 *    initiator's handshake. PEER_FAILED(POP_MISMATCH) is reported at the first failed Cmd1
 *    of an entry (N = 1: a real initiator with another PoP never sends a valid one, and the
 *    app should hear about it at once); the entry keeps waiting, so the report can be followed
 *    by PEER_SECURED for the same MAC when a forged Cmd1 came before the real one. A failed
 *    check reads the CTR stream at fixed offsets (hs_compat: _ctr_at, const): it changes
 *    nothing in the entry;
 *  - the key is stored before KEY_RESP is sent; a failed store sends nothing.
 *
 * Handshake: (Cmd0) -> pend[] -(Cmd1 ok)-> sess[] WAIT_KEY -(KEY stored)-> DONE
 */
#include <string.h>

#include "keystore.h"
#include "node_priv.h"

static espnow_sec_responder_t *R(espnow_sec_node_t *node)
{
    return &node->u.rsp;
}

void espnow_sec_rsp_reset(espnow_sec_node_t *node)
{
    espnow_sec_rsp_wipe(node);
}

void espnow_sec_rsp_wipe(espnow_sec_node_t *node)
{
    espnow_sec_memzero(&node->u.rsp, sizeof(node->u.rsp));
}

bool espnow_sec_rsp_accepts_dest(const espnow_sec_node_t *node, const espnow_sec_hdr_t *hdr)
{
    if (hdr->group) {
        return espnow_sec_mac_eq(hdr->dest, espnow_sec_group_sec) && node->u.rsp.in_sec_group;
    }
    return espnow_sec_mac_eq(hdr->dest, node->self) || espnow_sec_mac_is_broadcast(hdr->dest);
}

static espnow_sec_rsession_t *find(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    espnow_sec_responder_t *rsp = R(node);
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        if (rsp->sess[i].state != ESPNOW_SEC_RS_FREE && espnow_sec_mac_eq(rsp->sess[i].peer, mac)) {
            return &rsp->sess[i];
        }
    }
    return NULL;
}

static espnow_sec_rpending_t *find_pending(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    espnow_sec_responder_t *rsp = R(node);
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_PENDING; i++) {
        if (rsp->pend[i].used && espnow_sec_mac_eq(rsp->pend[i].peer, mac)) {
            return &rsp->pend[i];
        }
    }
    return NULL;
}

static bool older(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* Entry for a new half-open handshake: a free one, else the oldest (evicted). */
static espnow_sec_rpending_t *alloc_pending(espnow_sec_node_t *node)
{
    espnow_sec_responder_t *rsp = R(node);
    espnow_sec_rpending_t *oldest = NULL;
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_PENDING; i++) {
        espnow_sec_rpending_t *p = &rsp->pend[i];
        if (!p->used) {
            return p;
        }
        if (oldest == NULL || older(p->born, oldest->born)) {
            oldest = p;
        }
    }
    node->stats.hs_evicted++;
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "half-open handshake of " ESPNOW_SEC_MACSTR " dropped for a new one",
                   ESPNOW_SEC_MAC2STR(oldest->peer));
    return oldest;
}

/* Slot for a proven handshake: the same MAC's, else free, else the oldest DONE, else the oldest. */
static espnow_sec_rsession_t *alloc_session(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    espnow_sec_responder_t *rsp = R(node);
    espnow_sec_rsession_t *done = NULL;
    espnow_sec_rsession_t *open = NULL;
    espnow_sec_rsession_t *same = find(node, mac);
    if (same != NULL) {
        return same; /* the same initiator proved the PoP again: its new handshake wins */
    }
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        if (rsp->sess[i].state == ESPNOW_SEC_RS_FREE) {
            return &rsp->sess[i];
        }
    }
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        espnow_sec_rsession_t *s = &rsp->sess[i];
        espnow_sec_rsession_t **pick = s->state == ESPNOW_SEC_RS_DONE ? &done : &open;
        if (*pick == NULL || older(s->born, (*pick)->born)) {
            *pick = s;
        }
    }
    espnow_sec_rsession_t *victim = done != NULL ? done : open;
    if (victim->state != ESPNOW_SEC_RS_DONE) {
        node->stats.hs_evicted++;
    }
    return victim;
}

static void close_session(espnow_sec_rsession_t *s)
{
    espnow_sec_memzero(s, sizeof(*s));
}

static void close_pending(espnow_sec_rpending_t *p)
{
    espnow_sec_memzero(p, sizeof(*p));
}

/* A failure: event, counter, the session (if given) gone, nothing stored. */
static void fail(espnow_sec_node_t *node, espnow_sec_rsession_t *s, const uint8_t mac[ESPNOW_SEC_ADDR_LEN],
                 espnow_sec_fail_reason_t reason)
{
    uint8_t peer[ESPNOW_SEC_ADDR_LEN];
    memcpy(peer, mac, sizeof(peer));
    if (s != NULL) {
        close_session(s);
    }
    node->stats.hs_failed++;
    espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "handshake from " ESPNOW_SEC_MACSTR " failed: %s",
                   ESPNOW_SEC_MAC2STR(peer), espnow_sec_fail_reason_str(reason));
    espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_FAILED, peer, reason);
}

static void reply(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN], const uint8_t *rec, size_t len)
{
    espnow_sec_tx(node, mac, ESPNOW_SEC_T_SECURITY, mac, false, false, false, rec, len);
}

/* ---- scan ---- */

static esp_err_t on_request(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    if (rx->len != 1) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    /* INFO says whether we hold a key and from whom, so that initiator skips us (§2.3). */
    espnow_sec_info_t info = {.sec_ver = node->has_key ? 1 : 0};
    if (node->has_key) {
        memcpy(info.client_mac, node->provisioner, ESPNOW_SEC_ADDR_LEN);
    }
    uint8_t out[ESPNOW_SEC_INFO_LEN];
    espnow_sec_info_build(&info, out);
    espnow_sec_tx(node, rx->hdr.src, ESPNOW_SEC_T_SECURITY_STATUS, rx->hdr.src, false, false, false, out,
                  sizeof(out));
    return ESP_OK;
}

/* ---- handshake messages, one handler each ---- */

/* Resp0 of a half-open entry, rebuilt byte for byte (device_random is the CTR IV). */
static size_t build_resp0(const espnow_sec_rpending_t *p, uint8_t rec[ESPNOW_SEC_HS_RECORD_MAX])
{
    espnow_sec_sec1_t r0 = {.msg = ESPNOW_SEC_SEC1_RESP0};
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    size_t mlen = 0;
    memcpy(r0.pub, p->dev_pub, sizeof(r0.pub));
    memcpy(r0.random, p->ctr.iv, sizeof(r0.random));
    if (espnow_sec_compat_build(&r0, msg, sizeof(msg), &mlen) != ESP_OK) {
        return 0;
    }
    return espnow_sec_record_build(rec, ESPNOW_SEC_HS_RECORD_MAX, ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
}

static esp_err_t on_cmd0(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN], const espnow_sec_sec1_t *m)
{
    uint8_t rec[ESPNOW_SEC_HS_RECORD_MAX];
    size_t n = 0;
    espnow_sec_rpending_t *p = find_pending(node, src);
    if (p != NULL && memcmp(p->cli_pub, m->pub, ESPNOW_SEC_X25519_LEN) == 0) {
        n = build_resp0(p, rec); /* our Resp0 was lost: same answer */
        if (n != 0) {
            reply(node, src, rec, n);
        }
        return ESP_OK;
    }
    espnow_sec_rsession_t *s = find(node, src);
    if (s != NULL && memcmp(s->cli_pub, m->pub, ESPNOW_SEC_X25519_LEN) == 0) {
        return ESP_ERR_INVALID_STATE; /* a stale copy of a Cmd0 we are past */
    }
    /* A new client key: a new half-open handshake (protocomm restarts on Cmd0, §4.4).
     * Everything is computed before an entry is taken, so a junk Cmd0 evicts nothing. */
    uint8_t priv[ESPNOW_SEC_X25519_LEN];
    uint8_t sym[32];
    uint8_t dev_pub[ESPNOW_SEC_X25519_LEN];
    uint8_t random[ESPNOW_SEC_COMPAT_RANDOM_LEN];
    node->env->random(node->env->ctx, priv, sizeof(priv));
    esp_err_t err = espnow_sec_crypto_x25519_public(priv, dev_pub);
    if (err == ESP_OK) {
        err = espnow_sec_compat_derive(priv, m->pub, node->has_pop ? node->pop_hash : NULL, sym);
    }
    espnow_sec_memzero(priv, sizeof(priv));
    if (err != ESP_OK) {
        espnow_sec_memzero(sym, sizeof(sym));
        fail(node, NULL, src, err == ESP_ERR_INVALID_ARG ? ESPNOW_SEC_FAIL_BAD_KEY : ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    node->env->random(node->env->ctx, random, sizeof(random));
    espnow_sec_rpending_t fresh = {.used = true};
    memcpy(fresh.peer, src, ESPNOW_SEC_ADDR_LEN);
    memcpy(fresh.cli_pub, m->pub, ESPNOW_SEC_X25519_LEN);
    memcpy(fresh.dev_pub, dev_pub, ESPNOW_SEC_X25519_LEN);
    espnow_sec_log_secret(node, "sym_key", sym, sizeof(sym));
    espnow_sec_compat_ctr_init(&fresh.ctr, sym, random);
    espnow_sec_memzero(sym, sizeof(sym));
    n = build_resp0(&fresh, rec);
    if (n == 0) {
        espnow_sec_memzero(&fresh, sizeof(fresh));
        fail(node, NULL, src, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    if (p == NULL) {
        p = alloc_pending(node);
    }
    fresh.born = R(node)->seq++;
    *p = fresh;
    espnow_sec_memzero(&fresh, sizeof(fresh));
    reply(node, src, rec, n);
    return ESP_OK;
}

static esp_err_t on_cmd1(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN], const espnow_sec_sec1_t *m)
{
    espnow_sec_rsession_t *s = find(node, src);
    if (s != NULL && espnow_sec_ct_equal(s->cmd1_verify, m->verify, sizeof(s->cmd1_verify))) {
        reply(node, s->peer, s->resp1, s->resp1_len); /* our Resp1 was lost */
        return ESP_OK;
    }
    espnow_sec_rpending_t *p = find_pending(node, src);
    if (p == NULL) {
        return ESP_ERR_INVALID_STATE; /* Cmd1 without Cmd0, or for a session we are past */
    }
    /* Cmd1 proves the initiator derived the same key, i.e. holds the PoP (§4.1 step 4). */
    esp_err_t err = espnow_sec_compat_check_verify(&p->ctr, ESPNOW_SEC_COMPAT_OFF_CMD1, m->verify, p->dev_pub);
    if (err == ESP_ERR_ESPNOW_SEC_AUTH) {
        /* Wrong PoP, or a forgery under the initiator's MAC: the entry stays (file header). */
        node->stats.hs_auth_fail++;
        if (!p->pop_failed) {
            p->pop_failed = true;
            fail(node, NULL, src, ESPNOW_SEC_FAIL_POP_MISMATCH);
        }
        return ESP_OK;
    }
    espnow_sec_sec1_t r1 = {.msg = ESPNOW_SEC_SEC1_RESP1};
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    uint8_t rec[ESPNOW_SEC_HS_RECORD_MAX];
    size_t mlen = 0;
    size_t n = 0;
    if (err == ESP_OK) {
        err = espnow_sec_compat_device_verify(&p->ctr, p->cli_pub, r1.verify);
    }
    if (err == ESP_OK) {
        err = espnow_sec_compat_build(&r1, msg, sizeof(msg), &mlen);
    }
    if (err == ESP_OK) {
        n = espnow_sec_record_build(rec, sizeof(rec), ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
    }
    if (n == 0) {
        close_pending(p);
        fail(node, NULL, src, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    /* Proven: into sess[], where no Cmd0 can reach it. */
    s = alloc_session(node, src);
    close_session(s);
    s->state = ESPNOW_SEC_RS_WAIT_KEY;
    s->born = p->born;
    memcpy(s->peer, p->peer, ESPNOW_SEC_ADDR_LEN);
    memcpy(s->cli_pub, p->cli_pub, ESPNOW_SEC_X25519_LEN);
    memcpy(s->dev_pub, p->dev_pub, ESPNOW_SEC_X25519_LEN);
    s->ctr = p->ctr;
    memcpy(s->cmd1_verify, m->verify, sizeof(s->cmd1_verify));
    memcpy(s->resp1, rec, n);
    s->resp1_len = (uint8_t)n;
    close_pending(p);
    reply(node, s->peer, s->resp1, s->resp1_len);
    return ESP_OK;
}

static esp_err_t on_key(espnow_sec_node_t *node, espnow_sec_rsession_t *s, const espnow_sec_record_t *r)
{
    if (s->state == ESPNOW_SEC_RS_DONE) {
        if (espnow_sec_ct_equal(s->key_ct, r->data, sizeof(s->key_ct))) {
            /* Our KEY_RESP was lost: answer again instead of going silent (§6.2 item 1). */
            reply(node, s->peer, s->key_resp, sizeof(s->key_resp));
            return ESP_OK;
        }
        return ESP_ERR_INVALID_STATE;
    }
    if (s->state != ESPNOW_SEC_RS_WAIT_KEY) {
        return ESP_ERR_INVALID_STATE;
    }
    espnow_sec_key_record_t rec;
    uint8_t peer[ESPNOW_SEC_ADDR_LEN];
    memcpy(peer, s->peer, sizeof(peer));
    esp_err_t err = espnow_sec_compat_open_key(&s->ctr, r->data, rec.key);
    if (err == ESP_OK) {
        err = espnow_sec_compat_key_resp_record(&s->ctr, rec.key, s->key_resp);
    }
    if (err != ESP_OK) {
        espnow_sec_memzero(&rec, sizeof(rec));
        fail(node, s, peer, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    memcpy(rec.provisioner, peer, ESPNOW_SEC_ADDR_LEN);
    /* Store first: a KEY_RESP must mean "installed and persisted". */
    err = espnow_sec_keystore_save(node->env, &rec);
    if (err != ESP_OK) {
        espnow_sec_memzero(&rec, sizeof(rec));
        fail(node, s, peer, ESPNOW_SEC_FAIL_STORE);
        return ESP_OK;
    }
    err = espnow_sec_install_key(node, rec.key, rec.provisioner);
    espnow_sec_memzero(&rec, sizeof(rec));
    if (err != ESP_OK) {
        fail(node, s, peer, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    memcpy(s->key_ct, r->data, sizeof(s->key_ct));
    espnow_sec_compat_ctr_wipe(&s->ctr); /* session key no longer needed */
    s->state = ESPNOW_SEC_RS_DONE;
    reply(node, peer, s->key_resp, sizeof(s->key_resp));
    node->stats.hs_secured++;
    /* Not upstream's "Get APP key": that seed-README line is the app's (main/app.c), and the
     * core saying it too would show it twice and match log checks for the wrong tag. */
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "app key installed from " ESPNOW_SEC_MACSTR " (provisioner)",
                   ESPNOW_SEC_MAC2STR(peer));
    espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_SECURED, peer, ESPNOW_SEC_FAIL_NONE);
    return ESP_OK;
}

static esp_err_t on_handshake(espnow_sec_node_t *node, const espnow_sec_rx_t *rx, const espnow_sec_record_t *r)
{
    if (!espnow_sec_rsp_accepts_dest(node, &rx->hdr)) {
        return ESP_ERR_INVALID_STATE;
    }
    espnow_sec_sec1_t m;
    if (espnow_sec_compat_parse(r->data, r->len, &m) != ESP_OK) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (m.msg == ESPNOW_SEC_SEC1_CMD0) {
        return on_cmd0(node, rx->hdr.src, &m);
    }
    if (m.msg != ESPNOW_SEC_SEC1_CMD1) {
        return ESP_ERR_INVALID_STATE; /* a response sent to us */
    }
    return on_cmd1(node, rx->hdr.src, &m);
}

esp_err_t espnow_sec_rsp_on_security(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    if (rx->len == 0) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    uint8_t type = rx->payload[0];
    /* Unknown type, then a type not for a responder, then lengths (STYLE.md example 3). */
    if (type > ESPNOW_SEC_R_REST) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (type == ESPNOW_SEC_R_INFO || type == ESPNOW_SEC_R_KEY_RESP || type == ESPNOW_SEC_R_REST) {
        /* REST is an unauthenticated reset (§6.1 item 10): never honoured. */
        return ESP_ERR_INVALID_STATE;
    }
    if (espnow_sec_mac_is_broadcast(rx->hdr.src)) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED; /* no station sends from the broadcast address */
    }
    if (type == ESPNOW_SEC_R_REQUEST) {
        return on_request(node, rx);
    }
    espnow_sec_record_t r;
    if (espnow_sec_record_parse(rx->payload, rx->len, &r) != ESP_OK) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (type == ESPNOW_SEC_R_HANDSHAKE) {
        return on_handshake(node, rx, &r);
    }
    /* KEY */
    if (!espnow_sec_mac_eq(rx->hdr.dest, node->self)) {
        return ESP_ERR_INVALID_STATE;
    }
    espnow_sec_rsession_t *s = find(node, rx->hdr.src);
    if (s == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    if (r.len != ESPNOW_SEC_COMPAT_KEY_LEN) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    return on_key(node, s, &r);
}

esp_err_t espnow_sec_rsp_on_group(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    espnow_sec_group_t g;
    if (espnow_sec_group_parse(rx->payload, rx->len, &g) != ESP_OK) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (!espnow_sec_mac_eq(g.group, espnow_sec_group_sec) || !espnow_sec_group_contains(&g, node->self)) {
        return ESP_OK; /* another group, or not about us */
    }
    /* GROUP frames are unauthenticated (§2.4 step 1); joining only widens which Cmd0
     * destinations we accept, and Cmd0 itself is checked by the PoP later. */
    R(node)->in_sec_group = g.op == ESPNOW_SEC_GROUP_OP_ADD;
    return ESP_OK;
}

/*
 * responder.c - answers scans, runs the security1 server side and installs the app key
 * (reference/upstream-espnow-security.md §2.3-2.5; protocomm-security.md §4.1, §4.4).
 *
 * Differences from upstream, all on purpose:
 *  - a bounded table of sessions keyed by the initiator's MAC, so a stranger's Cmd0
 *    cannot lock out the real initiator (the oldest incomplete session is replaced);
 *  - idempotent answers: a repeated Cmd0 (same client key) gets the cached Resp0, a
 *    repeated Cmd1 the cached Resp1, a repeated KEY (same bytes) the cached KEY_RESP,
 *    so a lost answer never strands a device half-provisioned;
 *  - wrong verifier (PoP): no answer, PEER_FAILED(POP_MISMATCH), session closed;
 *  - the key is stored before KEY_RESP is sent; a failed store sends nothing.
 *
 * Session: (Cmd0) -> WAIT_CMD1 -(Cmd1 ok)-> WAIT_KEY -(KEY stored)-> DONE
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

/* Slot for a new session: a free one, else the oldest finished, else the oldest incomplete. */
static espnow_sec_rsession_t *alloc_session(espnow_sec_node_t *node)
{
    espnow_sec_responder_t *rsp = R(node);
    espnow_sec_rsession_t *done = NULL;
    espnow_sec_rsession_t *open = NULL;
    for (size_t i = 0; i < ESPNOW_SEC_RESPONDER_SESSIONS; i++) {
        espnow_sec_rsession_t *s = &rsp->sess[i];
        if (s->state == ESPNOW_SEC_RS_FREE) {
            return s;
        }
        espnow_sec_rsession_t **pick = s->state == ESPNOW_SEC_RS_DONE ? &done : &open;
        if (*pick == NULL || (int32_t)(s->born - (*pick)->born) < 0) {
            *pick = s;
        }
    }
    return done != NULL ? done : open;
}

static void close_session(espnow_sec_rsession_t *s)
{
    espnow_sec_memzero(s, sizeof(*s));
}

/* The one failure path of the responder: event, counter, session gone, nothing stored. */
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

static esp_err_t on_cmd0(espnow_sec_node_t *node, const uint8_t src[ESPNOW_SEC_ADDR_LEN], const espnow_sec_sec1_t *m)
{
    espnow_sec_rsession_t *s = find(node, src);
    if (s != NULL && memcmp(s->cli_pub, m->pub, ESPNOW_SEC_X25519_LEN) == 0) {
        if (s->state == ESPNOW_SEC_RS_WAIT_CMD1) {
            reply(node, src, s->resp0, s->resp0_len); /* our Resp0 was lost: same answer */
            return ESP_OK;
        }
        return ESP_ERR_INVALID_STATE; /* a stale copy of a Cmd0 we are past */
    }
    /* A new client key: a new session (protocomm restarts on Cmd0, §4.4). Everything is
     * computed before a slot is taken, so a junk Cmd0 cannot evict a working session. */
    uint8_t priv[ESPNOW_SEC_X25519_LEN];
    uint8_t sym[32];
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    uint8_t rec[ESPNOW_SEC_HS_RECORD_MAX];
    size_t mlen = 0;
    size_t n = 0;
    espnow_sec_sec1_t r0 = {.msg = ESPNOW_SEC_SEC1_RESP0};
    node->env->random(node->env->ctx, priv, sizeof(priv));
    esp_err_t err = espnow_sec_crypto_x25519_public(priv, r0.pub);
    if (err == ESP_OK) {
        err = espnow_sec_compat_derive(priv, m->pub, node->has_pop ? node->pop_hash : NULL, sym);
    }
    espnow_sec_memzero(priv, sizeof(priv));
    if (err == ESP_OK) {
        node->env->random(node->env->ctx, r0.random, sizeof(r0.random));
        err = espnow_sec_compat_build(&r0, msg, sizeof(msg), &mlen);
    }
    if (err == ESP_OK) {
        n = espnow_sec_record_build(rec, sizeof(rec), ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
        err = n != 0 ? ESP_OK : ESP_ERR_INVALID_SIZE;
    }
    if (err != ESP_OK) {
        espnow_sec_memzero(sym, sizeof(sym));
        fail(node, NULL, src, err == ESP_ERR_INVALID_ARG ? ESPNOW_SEC_FAIL_BAD_KEY : ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    if (s == NULL) {
        s = alloc_session(node);
    }
    close_session(s);
    espnow_sec_log_secret(node, "sym_key", sym, sizeof(sym));
    espnow_sec_compat_ctr_init(&s->ctr, sym, r0.random);
    espnow_sec_memzero(sym, sizeof(sym));
    memcpy(s->resp0, rec, n);
    s->resp0_len = (uint8_t)n;
    s->state = ESPNOW_SEC_RS_WAIT_CMD1;
    s->born = R(node)->seq++;
    memcpy(s->peer, src, ESPNOW_SEC_ADDR_LEN);
    memcpy(s->cli_pub, m->pub, ESPNOW_SEC_X25519_LEN);
    memcpy(s->dev_pub, r0.pub, ESPNOW_SEC_X25519_LEN);
    reply(node, src, s->resp0, s->resp0_len);
    return ESP_OK;
}

static esp_err_t on_cmd1(espnow_sec_node_t *node, espnow_sec_rsession_t *s, const espnow_sec_sec1_t *m)
{
    if (s->state != ESPNOW_SEC_RS_WAIT_CMD1) {
        if (memcmp(s->cmd1_verify, m->verify, sizeof(s->cmd1_verify)) == 0) {
            reply(node, s->peer, s->resp1, s->resp1_len); /* our Resp1 was lost */
            return ESP_OK;
        }
        return ESP_ERR_INVALID_STATE;
    }
    /* Cmd1 proves the initiator derived the same key, i.e. holds the PoP (§4.1 step 4). */
    esp_err_t err = espnow_sec_compat_check_verify(&s->ctr, ESPNOW_SEC_COMPAT_OFF_CMD1, m->verify, s->dev_pub);
    if (err != ESP_OK) {
        fail(node, s, s->peer, err == ESP_ERR_ESPNOW_SEC_AUTH ? ESPNOW_SEC_FAIL_POP_MISMATCH : ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    espnow_sec_sec1_t r1 = {.msg = ESPNOW_SEC_SEC1_RESP1};
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    size_t mlen = 0;
    err = espnow_sec_compat_device_verify(&s->ctr, s->cli_pub, r1.verify);
    if (err == ESP_OK) {
        err = espnow_sec_compat_build(&r1, msg, sizeof(msg), &mlen);
    }
    size_t n = err == ESP_OK ? espnow_sec_record_build(s->resp1, sizeof(s->resp1), ESPNOW_SEC_R_HANDSHAKE, msg, mlen)
                             : 0;
    if (n == 0) {
        fail(node, s, s->peer, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    s->resp1_len = (uint8_t)n;
    memcpy(s->cmd1_verify, m->verify, sizeof(s->cmd1_verify));
    s->state = ESPNOW_SEC_RS_WAIT_KEY;
    reply(node, s->peer, s->resp1, s->resp1_len);
    return ESP_OK;
}

static esp_err_t on_key(espnow_sec_node_t *node, espnow_sec_rsession_t *s, const espnow_sec_record_t *r)
{
    if (s->state == ESPNOW_SEC_RS_DONE) {
        if (memcmp(s->key_ct, r->data, sizeof(s->key_ct)) == 0) {
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
    espnow_sec_rsession_t *s = find(node, rx->hdr.src);
    if (m.msg != ESPNOW_SEC_SEC1_CMD1 || s == NULL) {
        return ESP_ERR_INVALID_STATE; /* a response sent to us, or Cmd1 without Cmd0 */
    }
    return on_cmd1(node, s, &m);
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

/*
 * compat_initiator.c - the provisioning run: scan, security1 client sessions, app-key push
 * (reference/upstream-espnow-security.md §2.3-2.5), without upstream's bugs:
 * bounded tables, real per-message retries with backoff resending the same bytes,
 * the KEY_RESP echo verified before a responder counts as secured.
 *
 * Run:      IDLE -> SCAN -> HANDSHAKE -> IDLE (PROVISION_DONE exactly once)
 * Session:  WAIT_RESP0 -(Resp0 ok, send Cmd1)-> WAIT_RESP1 -(Resp1 ok, send KEY)->
 *           WAIT_KEY_RESP -(echo ok)-> secured; timeouts resend, RETRY_MAX then TIMEOUT.
 *
 * Forged answers: every answer's sender MAC is unauthenticated, so an answer that fails its
 * check (Resp0 with a bad key, Resp1 whose verifier does not match, KEY_RESP with a wrong
 * echo) is counted (stats.hs_auth_fail) and remembered for the final reason, and the session
 * keeps waiting. Checks read the CTR stream at fixed offsets (hs_compat: _ctr_at on a const
 * stream), so a failed one leaves the session unchanged. The first Resp0 of an attempt is
 * kept; a forged one that came first (or a responder that dropped our session, e.g. evicted
 * by a Cmd0 flood) shows as a Cmd1 without Resp1: after ESPNOW_SEC_INI_CMD1_TRIES Cmd1
 * retransmissions the responder gets a fresh Cmd0 (new client key), at most
 * ESPNOW_SEC_INI_RESTARTS times; the last attempt retries Cmd1 RETRY_MAX times and then
 * ends with NO_RESP1 (a responder with another PoP answers Resp0 but never Resp1).
 *
 * Lost store: compat INFO names only the provisioner's MAC, not the key. When this boot
 * generated the app key (the store was empty), a responder that names us holds a key we no
 * longer have: it is provisioned again, once per boot (key_generated / rekeyed[]).
 */
#include <string.h>

#include "keystore.h"
#include "node_priv.h"

static espnow_sec_initiator_t *I(espnow_sec_node_t *node)
{
    return &node->u.ini;
}

void espnow_sec_ini_reset(espnow_sec_node_t *node)
{
    espnow_sec_ini_wipe(node);
}

void espnow_sec_ini_wipe(espnow_sec_node_t *node)
{
    espnow_sec_memzero(&node->u.ini, sizeof(node->u.ini));
}

bool espnow_sec_ini_busy(const espnow_sec_node_t *node)
{
    return node->role == ESPNOW_SEC_ROLE_INITIATOR && node->u.ini.phase != ESPNOW_SEC_RUN_IDLE;
}

static void send_scan_request(espnow_sec_node_t *node)
{
    /* REQUEST is the single byte 0x00, broadcast, fresh magic each time so every
     * responder answers each request (§2.3; upstream reused one magic, §6.2 item 2). */
    static const uint8_t req = ESPNOW_SEC_R_REQUEST;
    espnow_sec_tx(node, espnow_sec_broadcast_mac, ESPNOW_SEC_T_SECURITY, espnow_sec_broadcast_mac,
                  true, false, false, &req, 1);
    I(node)->scan_reqs++;
}

static esp_err_t ensure_app_key(espnow_sec_node_t *node)
{
    if (node->has_key) {
        return ESP_OK;
    }
    I(node)->key_generated = true; /* a new key: responders that name us hold the old one */
    I(node)->n_rekeyed = 0;
    espnow_sec_key_record_t rec;
    node->env->random(node->env->ctx, rec.key, sizeof(rec.key));
    memcpy(rec.provisioner, node->self, ESPNOW_SEC_ADDR_LEN);
    esp_err_t err = espnow_sec_keystore_save(node->env, &rec);
    if (err == ESP_OK) {
        err = espnow_sec_install_key(node, rec.key, rec.provisioner);
    }
    espnow_sec_memzero(&rec, sizeof(rec));
    return err;
}

esp_err_t espnow_sec_ini_provision(espnow_sec_node_t *node, uint32_t scan_ms)
{
    if (node->role != ESPNOW_SEC_ROLE_INITIATOR || espnow_sec_ini_busy(node)) {
        return ESP_ERR_INVALID_STATE;
    }
    esp_err_t err = ensure_app_key(node);
    if (err != ESP_OK) {
        espnow_sec_log(node, ESPNOW_SEC_LOG_ERROR, "no app key and none could be stored (%s)",
                       espnow_sec_err_to_name(err));
        return err;
    }
    espnow_sec_initiator_t *ini = I(node);
    /* A run starts clean, except for what this boot knows about its key (node_priv.h). */
    bool key_generated = ini->key_generated;
    uint32_t n_rekeyed = ini->n_rekeyed;
    uint8_t rekeyed[ESPNOW_SEC_MAX_RESPONDERS][ESPNOW_SEC_ADDR_LEN];
    memcpy(rekeyed, ini->rekeyed, sizeof(rekeyed));
    espnow_sec_ini_wipe(node);
    ini->key_generated = key_generated;
    ini->n_rekeyed = n_rekeyed;
    memcpy(ini->rekeyed, rekeyed, sizeof(rekeyed));
    uint32_t now = espnow_sec_now(node);
    ini->phase = ESPNOW_SEC_RUN_SCAN;
    ini->t_start = now;
    ini->scan_window = scan_ms != 0 ? scan_ms : ESPNOW_SEC_SCAN_DURATION_MS;
    ini->scan_interval = ini->scan_window / ESPNOW_SEC_SCAN_REQUESTS;
    if (ini->scan_interval == 0) {
        ini->scan_interval = 1;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "scan for responders, %u ms", (unsigned)ini->scan_window);
    send_scan_request(node);
    ini->next_scan_req = now + ini->scan_interval;
    return ESP_OK;
}

/* ---- INFO (scan answers) ---- */

static bool rekeyed_this_boot(const espnow_sec_initiator_t *ini, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    for (uint32_t i = 0; i < ini->n_rekeyed; i++) {
        if (espnow_sec_mac_eq(ini->rekeyed[i], mac)) {
            return true;
        }
    }
    return false;
}

esp_err_t espnow_sec_ini_on_status(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    espnow_sec_initiator_t *ini = I(node);
    espnow_sec_info_t info;
    if (rx->len == 0 || rx->payload[0] != ESPNOW_SEC_R_INFO) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (ini->phase != ESPNOW_SEC_RUN_SCAN) {
        return ESP_ERR_INVALID_STATE;
    }
    if (espnow_sec_info_parse(rx->payload, rx->len, &info) != ESP_OK) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (espnow_sec_mac_is_broadcast(rx->hdr.src)) {
        /* The broadcast address is no station: counted as malformed. Other group (multicast)
         * addresses are not refused yet: vectors/compat.json uses such a MAC for a responder. */
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (info.sec_ver != 0 && espnow_sec_mac_eq(info.client_mac, node->self)) {
        if (!ini->key_generated || rekeyed_this_boot(ini, rx->hdr.src)) {
            return ESP_OK; /* already holds our key (§2.3 step 4) */
        }
        /* Provisioned by us, but with a key this boot no longer has (file header). */
        espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, ESPNOW_SEC_MACSTR " names us as provisioner, but "
                       "our app key is new since this boot: provisioning it again",
                       ESPNOW_SEC_MAC2STR(rx->hdr.src));
    }
    for (uint32_t i = 0; i < ini->n_peers; i++) {
        if (espnow_sec_mac_eq(ini->peers[i].mac, rx->hdr.src)) {
            return ESP_OK; /* one entry per MAC however often it answers */
        }
    }
    /* INFO is unauthenticated: spoofed answers from made-up MACs ("ghosts") are taken like real
     * ones. The table bound caps the cost: each ghost holds a session slot for its Cmd0
     * retries (about 4.8 s with the defaults) and can crowd real responders out of a run. */
    if (ini->n_peers >= ESPNOW_SEC_MAX_RESPONDERS) {
        ini->scan_overflow++;
        node->stats.scan_overflow++;
        espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "scan table full (%d): responder ignored",
                       ESPNOW_SEC_MAX_RESPONDERS);
        return ESP_OK;
    }
    espnow_sec_peer_t *p = &ini->peers[ini->n_peers++];
    memcpy(p->mac, rx->hdr.src, ESPNOW_SEC_ADDR_LEN);
    p->rssi = rx->rssi;
    p->channel = rx->channel;
    p->state = ESPNOW_SEC_PEER_PENDING;
    return ESP_OK;
}

/* ---- sessions ---- */

static espnow_sec_csession_t *find_session(espnow_sec_node_t *node, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    espnow_sec_initiator_t *ini = I(node);
    for (size_t i = 0; i < ESPNOW_SEC_MAX_HANDSHAKES; i++) {
        espnow_sec_csession_t *s = &ini->sess[i];
        if (s->state != ESPNOW_SEC_CS_FREE && espnow_sec_mac_eq(ini->peers[s->peer].mac, mac)) {
            return s;
        }
    }
    return NULL;
}

static const uint8_t *peer_mac(espnow_sec_node_t *node, const espnow_sec_csession_t *s)
{
    return I(node)->peers[s->peer].mac;
}

/* The one way a session ends: secured (reason NONE) or failed. */
static void session_end(espnow_sec_node_t *node, espnow_sec_csession_t *s, espnow_sec_fail_reason_t reason)
{
    espnow_sec_initiator_t *ini = I(node);
    espnow_sec_peer_t *p = &ini->peers[s->peer];
    if (reason == ESPNOW_SEC_FAIL_NONE) {
        p->state = ESPNOW_SEC_PEER_SECURED;
        if (ini->key_generated && !rekeyed_this_boot(ini, p->mac) && ini->n_rekeyed < ESPNOW_SEC_MAX_RESPONDERS) {
            memcpy(ini->rekeyed[ini->n_rekeyed++], p->mac, ESPNOW_SEC_ADDR_LEN);
        }
        ini->succeeded++;
        node->stats.hs_secured++;
        espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "secured " ESPNOW_SEC_MACSTR, ESPNOW_SEC_MAC2STR(p->mac));
        espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_SECURED, p->mac, reason);
    } else {
        p->state = ESPNOW_SEC_PEER_FAILED;
        ini->failed++;
        node->stats.hs_failed++;
        espnow_sec_log(node, ESPNOW_SEC_LOG_WARN, "handshake with " ESPNOW_SEC_MACSTR " failed: %s",
                       ESPNOW_SEC_MAC2STR(p->mac), espnow_sec_fail_reason_str(reason));
        espnow_sec_emit_peer(node, ESPNOW_SEC_EVENT_PEER_FAILED, p->mac, reason);
    }
    espnow_sec_memzero(s, sizeof(*s)); /* session keys wiped once done */
}

static void arm(espnow_sec_csession_t *s, uint32_t now)
{
    s->tries = 0;
    s->bad = ESPNOW_SEC_FAIL_NONE;
    s->timeout = ESPNOW_SEC_RETRY_BASE_MS;
    s->deadline = now + s->timeout;
}

static esp_err_t send_unicast(espnow_sec_node_t *node, espnow_sec_csession_t *s)
{
    const uint8_t *mac = peer_mac(node, s);
    return espnow_sec_tx(node, mac, ESPNOW_SEC_T_SECURITY, mac, false, false, false, s->tx, s->tx_len);
}

/* Keep the record to resend it verbatim: the CTR stream must not advance again. */
static esp_err_t set_tx(espnow_sec_csession_t *s, uint8_t type, const uint8_t *data, size_t len)
{
    size_t n = espnow_sec_record_build(s->tx, sizeof(s->tx), type, data, len);
    if (n == 0) {
        return ESP_ERR_INVALID_SIZE;
    }
    s->tx_len = (uint8_t)n;
    return ESP_OK;
}

/* A fresh Cmd0 (new client key) to one responder: a new attempt of the same session. */
static void restart(espnow_sec_node_t *node, espnow_sec_csession_t *s, uint32_t now)
{
    espnow_sec_sec1_t m = {.msg = ESPNOW_SEC_SEC1_CMD0};
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    size_t mlen = 0;
    espnow_sec_compat_ctr_wipe(&s->ctr);
    node->env->random(node->env->ctx, s->cli_priv, sizeof(s->cli_priv));
    esp_err_t err = espnow_sec_crypto_x25519_public(s->cli_priv, m.pub);
    if (err == ESP_OK) {
        err = espnow_sec_compat_build(&m, msg, sizeof(msg), &mlen);
    }
    if (err == ESP_OK) {
        err = set_tx(s, ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
    }
    if (err != ESP_OK) {
        session_end(node, s, ESPNOW_SEC_FAIL_CRYPTO);
        return;
    }
    memcpy(s->cli_pub, m.pub, sizeof(m.pub));
    s->restarts++;
    s->state = ESPNOW_SEC_CS_WAIT_RESP0;
    arm(s, now);
    node->stats.tx_retransmits++;
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "no SessionResp1 from " ESPNOW_SEC_MACSTR ": new SessionCmd0 (%u/%u)",
                   ESPNOW_SEC_MAC2STR(peer_mac(node, s)), (unsigned)s->restarts, (unsigned)ESPNOW_SEC_INI_RESTARTS);
    send_unicast(node, s);
}

/* An answer that failed its check: counted, kept for the final reason; the session waits on. */
static esp_err_t bad_answer(espnow_sec_node_t *node, espnow_sec_csession_t *s, espnow_sec_fail_reason_t why)
{
    node->stats.hs_auth_fail++;
    s->bad = (uint8_t)why;
    espnow_sec_log(node, ESPNOW_SEC_LOG_DEBUG, "answer from " ESPNOW_SEC_MACSTR " failed its check (%s): ignored",
                   ESPNOW_SEC_MAC2STR(peer_mac(node, s)), espnow_sec_fail_reason_str(why));
    return ESP_OK;
}

static void send_group(espnow_sec_node_t *node, uint8_t op, const uint8_t (*macs)[ESPNOW_SEC_ADDR_LEN],
                       size_t n)
{
    uint8_t buf[ESPNOW_SEC_GROUP_HDR_LEN + ESPNOW_SEC_GROUP_MAX_MACS * ESPNOW_SEC_ADDR_LEN];
    for (size_t off = 0; off < n; off += ESPNOW_SEC_GROUP_MAX_MACS) {
        size_t chunk = n - off < ESPNOW_SEC_GROUP_MAX_MACS ? n - off : ESPNOW_SEC_GROUP_MAX_MACS;
        size_t len = espnow_sec_group_build(buf, sizeof(buf), op, espnow_sec_group_sec, &macs[off], chunk);
        espnow_sec_tx(node, espnow_sec_broadcast_mac, ESPNOW_SEC_T_GROUP, espnow_sec_broadcast_mac, true,
                      false, false, buf, len);
    }
}

/*
 * Start sessions for pending responders, as many as free slots allow. A wave shares one
 * client X25519 key (as upstream, §2.4 step 0). Several responders: GROUP join, one Cmd0
 * broadcast to the SEC group, GROUP delete (§2.4 steps 1-2); one responder: unicast.
 */
static void start_wave(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_initiator_t *ini = I(node);
    espnow_sec_csession_t *wave[ESPNOW_SEC_MAX_HANDSHAKES];
    uint8_t macs[ESPNOW_SEC_MAX_HANDSHAKES][ESPNOW_SEC_ADDR_LEN];
    size_t n = 0;
    uint32_t next_peer = 0;
    for (size_t i = 0; i < ESPNOW_SEC_MAX_HANDSHAKES; i++) {
        if (ini->sess[i].state != ESPNOW_SEC_CS_FREE) {
            continue;
        }
        while (next_peer < ini->n_peers && ini->peers[next_peer].state != ESPNOW_SEC_PEER_PENDING) {
            next_peer++;
        }
        if (next_peer >= ini->n_peers) {
            break;
        }
        espnow_sec_csession_t *s = &ini->sess[i];
        s->peer = (uint8_t)next_peer;
        ini->peers[next_peer].state = ESPNOW_SEC_PEER_ACTIVE;
        memcpy(macs[n], ini->peers[next_peer].mac, ESPNOW_SEC_ADDR_LEN);
        wave[n++] = s;
        next_peer++;
    }
    if (n == 0) {
        return;
    }

    uint8_t priv[ESPNOW_SEC_X25519_LEN];
    espnow_sec_sec1_t m = {.msg = ESPNOW_SEC_SEC1_CMD0};
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    size_t mlen = 0;
    node->env->random(node->env->ctx, priv, sizeof(priv));
    esp_err_t err = espnow_sec_crypto_x25519_public(priv, m.pub);
    if (err == ESP_OK) {
        err = espnow_sec_compat_build(&m, msg, sizeof(msg), &mlen);
    }
    for (size_t i = 0; i < n; i++) {
        espnow_sec_csession_t *s = wave[i];
        s->state = ESPNOW_SEC_CS_WAIT_RESP0;
        if (err == ESP_OK) {
            memcpy(s->cli_priv, priv, sizeof(priv));
            memcpy(s->cli_pub, m.pub, sizeof(m.pub));
            err = set_tx(s, ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
        }
        arm(s, now);
    }
    espnow_sec_memzero(priv, sizeof(priv));
    if (err != ESP_OK) {
        for (size_t i = 0; i < n; i++) {
            session_end(node, wave[i], ESPNOW_SEC_FAIL_CRYPTO);
        }
        return;
    }
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "handshake with %u responder(s)", (unsigned)n);
    if (n == 1) {
        send_unicast(node, wave[0]);
        return;
    }
    send_group(node, ESPNOW_SEC_GROUP_OP_ADD, (const uint8_t (*)[ESPNOW_SEC_ADDR_LEN])macs, n);
    espnow_sec_tx(node, espnow_sec_broadcast_mac, ESPNOW_SEC_T_SECURITY, espnow_sec_group_sec, true, true,
                  false, wave[0]->tx, wave[0]->tx_len);
    send_group(node, ESPNOW_SEC_GROUP_OP_DEL, (const uint8_t (*)[ESPNOW_SEC_ADDR_LEN])macs, n);
}

static void finish_run(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_initiator_t *ini = I(node);
    espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_PROVISION_DONE};
    ev.data.done.succeeded = ini->succeeded;
    ev.data.done.unfinished = ini->n_peers - ini->succeeded;
    ev.data.done.spend_ms = now - ini->t_start;
    ev.data.done.scan_ms = ini->scan_ms;
    ini->phase = ESPNOW_SEC_RUN_IDLE;
    espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "provisioning done: %u secured, %u unfinished",
                   (unsigned)ev.data.done.succeeded, (unsigned)ev.data.done.unfinished);
    espnow_sec_emit(node, &ev);
}

/* Refill free slots, or end the run when nothing is left. */
static void advance(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_initiator_t *ini = I(node);
    if (ini->phase != ESPNOW_SEC_RUN_HANDSHAKE) {
        return;
    }
    start_wave(node, now);
    for (size_t i = 0; i < ESPNOW_SEC_MAX_HANDSHAKES; i++) {
        if (ini->sess[i].state != ESPNOW_SEC_CS_FREE) {
            return;
        }
    }
    for (uint32_t i = 0; i < ini->n_peers; i++) {
        if (ini->peers[i].state == ESPNOW_SEC_PEER_PENDING) {
            return;
        }
    }
    finish_run(node, now);
}

/* ---- handshake messages, one handler each ---- */

static esp_err_t on_resp0(espnow_sec_node_t *node, espnow_sec_csession_t *s, const espnow_sec_sec1_t *m)
{
    uint8_t sym[32];
    esp_err_t err = espnow_sec_compat_derive(s->cli_priv, m->pub, node->has_pop ? node->pop_hash : NULL, sym);
    if (err != ESP_OK) {
        espnow_sec_memzero(sym, sizeof(sym));
        if (err == ESP_ERR_INVALID_ARG) {
            return bad_answer(node, s, ESPNOW_SEC_FAIL_BAD_KEY); /* maybe forged: wait for another */
        }
        session_end(node, s, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    espnow_sec_log_secret(node, "sym_key", sym, sizeof(sym));
    espnow_sec_compat_ctr_init(&s->ctr, sym, m->random);
    espnow_sec_memzero(sym, sizeof(sym));
    espnow_sec_memzero(s->cli_priv, sizeof(s->cli_priv));
    espnow_sec_sec1_t c1 = {.msg = ESPNOW_SEC_SEC1_CMD1};
    uint8_t msg[ESPNOW_SEC_COMPAT_MSG_MAX];
    size_t mlen = 0;
    err = espnow_sec_compat_client_verify(&s->ctr, m->pub, c1.verify);
    if (err == ESP_OK) {
        err = espnow_sec_compat_build(&c1, msg, sizeof(msg), &mlen);
    }
    if (err == ESP_OK) {
        err = set_tx(s, ESPNOW_SEC_R_HANDSHAKE, msg, mlen);
    }
    if (err != ESP_OK) {
        session_end(node, s, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    s->state = ESPNOW_SEC_CS_WAIT_RESP1;
    arm(s, espnow_sec_now(node));
    send_unicast(node, s);
    return ESP_OK;
}

static esp_err_t on_resp1(espnow_sec_node_t *node, espnow_sec_csession_t *s, const espnow_sec_sec1_t *m)
{
    /* Resp1 proves the responder derived the same key, i.e. knows the PoP (§4.1 step 5). */
    esp_err_t err = espnow_sec_compat_check_verify(&s->ctr, ESPNOW_SEC_COMPAT_OFF_RESP1, m->verify,
                                                   s->cli_pub);
    if (err == ESP_ERR_ESPNOW_SEC_AUTH) {
        return bad_answer(node, s, ESPNOW_SEC_FAIL_POP_MISMATCH);
    }
    if (err != ESP_OK) {
        session_end(node, s, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    uint8_t rec[ESPNOW_SEC_COMPAT_KEY_RECORD_LEN];
    err = espnow_sec_compat_key_record(&s->ctr, node->app_key, rec);
    if (err == ESP_OK) {
        memcpy(s->tx, rec, sizeof(rec));
        s->tx_len = sizeof(rec);
    }
    espnow_sec_memzero(rec, sizeof(rec));
    if (err != ESP_OK) {
        session_end(node, s, ESPNOW_SEC_FAIL_CRYPTO);
        return ESP_OK;
    }
    s->state = ESPNOW_SEC_CS_WAIT_KEY_RESP;
    arm(s, espnow_sec_now(node));
    send_unicast(node, s);
    return ESP_OK;
}

static esp_err_t on_key_resp(espnow_sec_node_t *node, espnow_sec_csession_t *s, const espnow_sec_record_t *r)
{
    /* Upstream counted any type-4 frame as success (§2.5); we check the echo. */
    esp_err_t err = espnow_sec_compat_check_key_resp(&s->ctr, r->data, node->app_key);
    if (err == ESP_ERR_ESPNOW_SEC_AUTH) {
        return bad_answer(node, s, ESPNOW_SEC_FAIL_KEY_ECHO);
    }
    session_end(node, s, err == ESP_OK ? ESPNOW_SEC_FAIL_NONE : ESPNOW_SEC_FAIL_CRYPTO);
    return ESP_OK;
}

static esp_err_t on_handshake(espnow_sec_node_t *node, const espnow_sec_rx_t *rx, const espnow_sec_record_t *r)
{
    espnow_sec_csession_t *s = find_session(node, rx->hdr.src);
    if (s == NULL) {
        return ESP_ERR_INVALID_STATE;
    }
    espnow_sec_sec1_t m;
    if (espnow_sec_compat_parse(r->data, r->len, &m) != ESP_OK) {
        /* Not failing the session: src is unauthenticated, anyone can send junk "from" it. */
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (m.msg == ESPNOW_SEC_SEC1_RESP0 && s->state == ESPNOW_SEC_CS_WAIT_RESP0) {
        return on_resp0(node, s, &m);
    }
    if (m.msg == ESPNOW_SEC_SEC1_RESP1 && s->state == ESPNOW_SEC_CS_WAIT_RESP1) {
        return on_resp1(node, s, &m);
    }
    return ESP_ERR_INVALID_STATE; /* a late duplicate, or a command sent to us */
}

esp_err_t espnow_sec_ini_on_security(espnow_sec_node_t *node, const espnow_sec_rx_t *rx)
{
    espnow_sec_record_t r;
    if (rx->len >= 1 && rx->payload[0] > ESPNOW_SEC_R_REST) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED; /* unknown type */
    }
    if (rx->len >= 1 && rx->payload[0] != ESPNOW_SEC_R_HANDSHAKE && rx->payload[0] != ESPNOW_SEC_R_KEY_RESP) {
        return ESP_ERR_INVALID_STATE; /* REQUEST/INFO/KEY/REST are not for an initiator */
    }
    if (espnow_sec_record_parse(rx->payload, rx->len, &r) != ESP_OK) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    if (I(node)->phase != ESPNOW_SEC_RUN_HANDSHAKE) {
        return ESP_ERR_INVALID_STATE;
    }
    if (r.type == ESPNOW_SEC_R_HANDSHAKE) {
        esp_err_t err = on_handshake(node, rx, &r);
        advance(node, espnow_sec_now(node));
        return err;
    }
    espnow_sec_csession_t *s = find_session(node, rx->hdr.src);
    if (s == NULL || s->state != ESPNOW_SEC_CS_WAIT_KEY_RESP) {
        return ESP_ERR_INVALID_STATE;
    }
    if (r.len != ESPNOW_SEC_COMPAT_KEY_LEN) {
        return ESP_ERR_ESPNOW_SEC_MALFORMED;
    }
    esp_err_t err = on_key_resp(node, s, &r);
    advance(node, espnow_sec_now(node));
    return err;
}

/* ---- time ---- */

static uint32_t until(uint32_t now, uint32_t deadline, uint32_t best)
{
    uint32_t d = espnow_sec_time_reached(now, deadline) ? 0 : deadline - now;
    return d < best ? d : best;
}

uint32_t espnow_sec_ini_tick(espnow_sec_node_t *node, uint32_t now)
{
    espnow_sec_initiator_t *ini = I(node);
    if (ini->phase == ESPNOW_SEC_RUN_SCAN) {
        uint32_t end = ini->t_start + ini->scan_window;
        if (espnow_sec_time_reached(now, end)) {
            ini->scan_ms = now - ini->t_start;
            espnow_sec_event_t ev = {.id = ESPNOW_SEC_EVENT_SCAN_DONE};
            ev.data.scan.found = ini->n_peers;
            ev.data.scan.scan_ms = ini->scan_ms;
            espnow_sec_log(node, ESPNOW_SEC_LOG_INFO, "scan done: %u responder(s) found in %u ms",
                           (unsigned)ini->n_peers, (unsigned)ini->scan_ms);
            ini->phase = ESPNOW_SEC_RUN_HANDSHAKE;
            espnow_sec_emit(node, &ev);
            advance(node, now); /* no responder: PROVISION_DONE at once */
        } else {
            if (ini->scan_reqs < ESPNOW_SEC_SCAN_REQUESTS && espnow_sec_time_reached(now, ini->next_scan_req)) {
                send_scan_request(node);
                ini->next_scan_req += ini->scan_interval;
            }
            uint32_t best = until(now, end, UINT32_MAX);
            if (ini->scan_reqs < ESPNOW_SEC_SCAN_REQUESTS) {
                best = until(now, ini->next_scan_req, best);
            }
            return best;
        }
    }
    if (ini->phase != ESPNOW_SEC_RUN_HANDSHAKE) {
        return UINT32_MAX;
    }
    for (size_t i = 0; i < ESPNOW_SEC_MAX_HANDSHAKES; i++) {
        espnow_sec_csession_t *s = &ini->sess[i];
        if (s->state == ESPNOW_SEC_CS_FREE || !espnow_sec_time_reached(now, s->deadline)) {
            continue;
        }
        if (s->state == ESPNOW_SEC_CS_WAIT_RESP1 && s->tries >= ESPNOW_SEC_INI_CMD1_TRIES &&
            s->restarts < ESPNOW_SEC_INI_RESTARTS) {
            restart(node, s, now);
            continue;
        }
        if (s->tries >= ESPNOW_SEC_RETRY_MAX) {
            /* A security1 device that rejects our verifier stays silent (protocomm §4.4). An
             * answer that failed its check in this state names the reason instead. */
            espnow_sec_fail_reason_t why = s->state == ESPNOW_SEC_CS_WAIT_RESP1 ? ESPNOW_SEC_FAIL_NO_RESP1
                                                                                : ESPNOW_SEC_FAIL_TIMEOUT;
            session_end(node, s, s->bad != ESPNOW_SEC_FAIL_NONE ? (espnow_sec_fail_reason_t)s->bad : why);
            continue;
        }
        /* Retries go unicast, also for a Cmd0 first sent to the group (§2.4 decision). */
        s->tries++;
        s->timeout = s->timeout * 2 > ESPNOW_SEC_RETRY_CAP_MS ? ESPNOW_SEC_RETRY_CAP_MS : s->timeout * 2;
        s->deadline = now + s->timeout;
        node->stats.tx_retransmits++;
        send_unicast(node, s);
    }
    advance(node, now);
    uint32_t best = UINT32_MAX;
    for (size_t i = 0; i < ESPNOW_SEC_MAX_HANDSHAKES; i++) {
        if (ini->sess[i].state != ESPNOW_SEC_CS_FREE) {
            best = until(now, ini->sess[i].deadline, best);
        }
    }
    return best;
}

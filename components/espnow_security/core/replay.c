/*
 * replay.c - docs/PROTOCOL.md §8.1-§8.3 and §8.5, see replay.h.
 */
#include "replay.h"

#include <string.h>

void espnow_sec_rp_reset(espnow_sec_rp_table_t *t)
{
    memset(t, 0, sizeof(*t));
}

espnow_sec_rp_entry_t *espnow_sec_rp_find(espnow_sec_rp_table_t *t, const uint8_t mac[ESPNOW_SEC_ADDR_LEN])
{
    for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS; i++) {
        if (t->e[i].state != ESPNOW_SEC_RP_FREE && memcmp(t->e[i].mac, mac, ESPNOW_SEC_ADDR_LEN) == 0) {
            return &t->e[i];
        }
    }
    return NULL;
}

bool espnow_sec_rp_check(const espnow_sec_rp_entry_t *e, uint64_t c)
{
    if (e->state != ESPNOW_SEC_RP_SYNCED) {
        return false;
    }
    if (c > e->max) {
        return true;
    }
    uint64_t behind = e->max - c;
    if (behind >= ESPNOW_SEC_REPLAY_WINDOW) {
        return false; /* too old: max - 63 is the oldest still tracked */
    }
    return (e->bitmap & (1ull << behind)) == 0;
}

void espnow_sec_rp_commit(espnow_sec_rp_entry_t *e, uint64_t c, uint32_t now)
{
    if (c > e->max) {
        uint64_t shift = c - e->max;
        e->bitmap = shift >= ESPNOW_SEC_REPLAY_WINDOW ? 0 : e->bitmap << shift;
        e->bitmap |= 1;
        e->max = c;
    } else {
        e->bitmap |= 1ull << (e->max - c);
    }
    e->t_last = now;
}

void espnow_sec_rp_sync(espnow_sec_rp_entry_t *e, uint64_t c, uint32_t now)
{
    if (e->state != ESPNOW_SEC_RP_SYNCED || c > e->max) {
        e->state = ESPNOW_SEC_RP_SYNCED;
        e->max = c;
        e->bitmap = ~0ull; /* everything up to c counts as seen */
    }
    memset(e->challenge, 0, sizeof(e->challenge));
    e->tries = 0;
    e->t_last = now;
}

espnow_sec_rp_entry_t *espnow_sec_rp_alloc(espnow_sec_rp_table_t *t, const uint8_t mac[ESPNOW_SEC_ADDR_LEN],
                                           uint32_t now)
{
    espnow_sec_rp_entry_t *pick = NULL;
    for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS && pick == NULL; i++) {
        if (t->e[i].state == ESPNOW_SEC_RP_FREE) {
            pick = &t->e[i];
        }
    }
    for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS && pick == NULL; i++) {
        espnow_sec_rp_entry_t *e = &t->e[i];
        if (e->state == ESPNOW_SEC_RP_PENDING && e->tries > ESPNOW_SEC_SYNC_RETRIES) {
            pick = e; /* gave up on it */
        }
    }
    if (pick == NULL) {
        /* Oldest idle SYNCED entry: reclaiming it is safe, the sender must answer a fresh
         * challenge again and its old frames stay below the new window (§8.5). */
        for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS; i++) {
            espnow_sec_rp_entry_t *e = &t->e[i];
            if (e->state == ESPNOW_SEC_RP_SYNCED &&
                now - e->t_last >= (uint32_t)ESPNOW_SEC_REPLAY_IDLE_S * 1000u &&
                (pick == NULL || (int32_t)(e->t_last - pick->t_last) < 0)) {
                pick = e;
            }
        }
    }
    if (pick != NULL) {
        memset(pick, 0, sizeof(*pick));
        memcpy(pick->mac, mac, ESPNOW_SEC_ADDR_LEN);
        pick->t_last = now;
    }
    return pick;
}

uint32_t espnow_sec_rp_synced(const espnow_sec_rp_table_t *t)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ESPNOW_SEC_REPLAY_SENDERS; i++) {
        n += t->e[i].state == ESPNOW_SEC_RP_SYNCED;
    }
    return n;
}

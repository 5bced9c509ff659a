/*
 * replay.h - bounded per-sender replay windows (docs/PROTOCOL.md §8): check before
 * crypto, commit only after authentication, entries created only from a fresh
 * challenge-bound proof of the sender's counter (§8.3), and a full table never evicts an
 * entry in a way that re-opens a replay (§8.5).
 *
 * Pure: no crypto, no I/O. One table per accepted key epoch (epoch.h owns them).
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

#define ESPNOW_SEC_REPLAY_WINDOW 64 /* fixed by the protocol: one u64 bitmap */
#define ESPNOW_SEC_CHALLENGE_LEN 8

typedef enum {
    ESPNOW_SEC_RP_FREE = 0,
    ESPNOW_SEC_RP_PENDING, /**< challenge outstanding */
    ESPNOW_SEC_RP_SYNCED,
} espnow_sec_rp_state_t;

typedef struct {
    uint8_t mac[ESPNOW_SEC_ADDR_LEN];
    uint8_t state;   /**< espnow_sec_rp_state_t */
    uint8_t tries;   /**< PENDING: challenges sent */
    uint64_t max;    /**< SYNCED: highest counter accepted */
    uint64_t bitmap; /**< bit i set: counter max - i seen */
    uint8_t challenge[ESPNOW_SEC_CHALLENGE_LEN];
    uint32_t t_sent; /**< PENDING: last challenge */
    uint32_t t_last; /**< last authentic frame (or creation) */
} espnow_sec_rp_entry_t;

typedef struct {
    bool frozen; /**< previous epoch's table: no new entries (§9.4) */
    espnow_sec_rp_entry_t e[ESPNOW_SEC_REPLAY_SENDERS];
} espnow_sec_rp_table_t;

void espnow_sec_rp_reset(espnow_sec_rp_table_t *t);
espnow_sec_rp_entry_t *espnow_sec_rp_find(espnow_sec_rp_table_t *t, const uint8_t mac[ESPNOW_SEC_ADDR_LEN]);
/** §8.2 step 2 on a SYNCED entry: true if counter `c` may be new. Changes nothing. */
bool espnow_sec_rp_check(const espnow_sec_rp_entry_t *e, uint64_t c);
/** §8.2 step 5: mark `c` seen (call only after espnow_sec_rp_check() passed and the frame authenticated). */
void espnow_sec_rp_commit(espnow_sec_rp_entry_t *e, uint64_t c, uint32_t now);
/** §8.3 "sync S at c". */
void espnow_sec_rp_sync(espnow_sec_rp_entry_t *e, uint64_t c, uint32_t now);
/**
 * A slot for a new sender `mac` (§8.5): a free entry, else the SYNCED entry with the oldest
 * t_last idle >= REPLAY_IDLE_S, else a PENDING entry whose retries are exhausted. NULL:
 * TABLE_FULL. The entry comes back FREE with the mac set; the caller makes it PENDING.
 */
espnow_sec_rp_entry_t *espnow_sec_rp_alloc(espnow_sec_rp_table_t *t, const uint8_t mac[ESPNOW_SEC_ADDR_LEN],
                                           uint32_t now);
/** Entries in state SYNCED (status). */
uint32_t espnow_sec_rp_synced(const espnow_sec_rp_table_t *t);

#ifdef __cplusplus
}
#endif

/*
 * dedupe.h - bounded ring of recently accepted (src, type, magic) triples.
 *
 * Suppresses repeated copies of one frame (upstream §2.8 keyed only on type+magic; we
 * add the sender so two senders cannot collide). It is a duplicate filter, not replay
 * protection: the compat wire has nothing authenticated to build a window on.
 * Check first; commit only after the frame was accepted (STYLE.md example 5).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "espnow_sec.h"
#include "espnow_sec_limits.h"

typedef struct {
    uint8_t src[ESPNOW_SEC_ADDR_LEN];
    uint8_t type;
    uint8_t used;
    uint16_t magic;
} espnow_sec_dedupe_entry_t;

typedef struct {
    espnow_sec_dedupe_entry_t e[ESPNOW_SEC_DEDUPE_SIZE];
    uint16_t next;
} espnow_sec_dedupe_t;

void espnow_sec_dedupe_reset(espnow_sec_dedupe_t *d);
bool espnow_sec_dedupe_seen(const espnow_sec_dedupe_t *d, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                            uint8_t type, uint16_t magic);
/** Remember a triple, overwriting the oldest entry when full. */
void espnow_sec_dedupe_commit(espnow_sec_dedupe_t *d, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                              uint8_t type, uint16_t magic);

/*
 * dedupe.c - duplicate filter (see dedupe.h).
 */
#include "dedupe.h"

#include <string.h>

void espnow_sec_dedupe_reset(espnow_sec_dedupe_t *d)
{
    memset(d, 0, sizeof(*d));
}

bool espnow_sec_dedupe_seen(const espnow_sec_dedupe_t *d, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                            uint8_t type, uint16_t magic)
{
    for (size_t i = 0; i < ESPNOW_SEC_DEDUPE_SIZE; i++) {
        const espnow_sec_dedupe_entry_t *e = &d->e[i];
        if (e->used && e->type == type && e->magic == magic &&
            memcmp(e->src, src, ESPNOW_SEC_ADDR_LEN) == 0) {
            return true;
        }
    }
    return false;
}

void espnow_sec_dedupe_commit(espnow_sec_dedupe_t *d, const uint8_t src[ESPNOW_SEC_ADDR_LEN],
                              uint8_t type, uint16_t magic)
{
    espnow_sec_dedupe_entry_t *e = &d->e[d->next];
    memcpy(e->src, src, ESPNOW_SEC_ADDR_LEN);
    e->type = type;
    e->magic = magic;
    e->used = 1;
    d->next = (uint16_t)((d->next + 1) % ESPNOW_SEC_DEDUPE_SIZE);
}

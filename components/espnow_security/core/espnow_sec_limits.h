/*
 * espnow_sec_limits.h - compile-time limits of the core, from Kconfig (CONFIG_ESPNOW_SEC_*).
 *
 * On ESP-IDF (or a host build that generated sdkconfig.h with kconfgen) the values come
 * from sdkconfig.h; without it the #ifndef defaults below, which equal the Kconfig
 * defaults, apply, so the core also compiles stand-alone (unit tests, fuzzers).
 */
#pragma once

#if defined(ESP_PLATFORM)
#include "sdkconfig.h"
#elif defined(__has_include)
#if __has_include("sdkconfig.h")
#include "sdkconfig.h"
#endif
#endif

#ifndef CONFIG_ESPNOW_SEC_MAX_RESPONDERS
#define CONFIG_ESPNOW_SEC_MAX_RESPONDERS 32
#endif
#ifndef CONFIG_ESPNOW_SEC_MAX_HANDSHAKES
#define CONFIG_ESPNOW_SEC_MAX_HANDSHAKES 16
#endif
#ifndef CONFIG_ESPNOW_SEC_RESPONDER_SESSIONS
#define CONFIG_ESPNOW_SEC_RESPONDER_SESSIONS 2
#endif
#ifndef CONFIG_ESPNOW_SEC_SCAN_DURATION_MS
#define CONFIG_ESPNOW_SEC_SCAN_DURATION_MS 1000
#endif
#ifndef CONFIG_ESPNOW_SEC_RETRY_MAX
#define CONFIG_ESPNOW_SEC_RETRY_MAX 6
#endif
#ifndef CONFIG_ESPNOW_SEC_RETRY_BASE_MS
#define CONFIG_ESPNOW_SEC_RETRY_BASE_MS 150
#endif
#ifndef CONFIG_ESPNOW_SEC_RETRY_CAP_MS
#define CONFIG_ESPNOW_SEC_RETRY_CAP_MS 1200
#endif
#ifndef CONFIG_ESPNOW_SEC_DEDUPE_SIZE
#define CONFIG_ESPNOW_SEC_DEDUPE_SIZE 32
#endif

/* bool Kconfig symbols are undefined when "n" */
#ifdef CONFIG_ESPNOW_SEC_LOG_SECRETS
#define ESPNOW_SEC_LOG_SECRETS 1
#else
#define ESPNOW_SEC_LOG_SECRETS 0
#endif

#define ESPNOW_SEC_MAX_RESPONDERS CONFIG_ESPNOW_SEC_MAX_RESPONDERS
#define ESPNOW_SEC_MAX_HANDSHAKES CONFIG_ESPNOW_SEC_MAX_HANDSHAKES
#define ESPNOW_SEC_RESPONDER_SESSIONS CONFIG_ESPNOW_SEC_RESPONDER_SESSIONS
#define ESPNOW_SEC_SCAN_DURATION_MS CONFIG_ESPNOW_SEC_SCAN_DURATION_MS
#define ESPNOW_SEC_RETRY_MAX CONFIG_ESPNOW_SEC_RETRY_MAX
#define ESPNOW_SEC_RETRY_BASE_MS CONFIG_ESPNOW_SEC_RETRY_BASE_MS
#define ESPNOW_SEC_RETRY_CAP_MS CONFIG_ESPNOW_SEC_RETRY_CAP_MS
#define ESPNOW_SEC_DEDUPE_SIZE CONFIG_ESPNOW_SEC_DEDUPE_SIZE

/** The port calls espnow_sec_node_tick() at least this often (node.h). */
#ifndef ESPNOW_SEC_TICK_MS
#define ESPNOW_SEC_TICK_MS 50
#endif

/** Scan requests per scan window: one every scan_ms / N (upstream sends 5 bursts, §2.3). */
#define ESPNOW_SEC_SCAN_REQUESTS 5

/** Longest PoP accepted by espnow_sec_node_init (it is hashed at once; only the hash is kept). */
#define ESPNOW_SEC_POP_MAX 64

_Static_assert(ESPNOW_SEC_MAX_RESPONDERS >= 1 && ESPNOW_SEC_MAX_RESPONDERS <= 100, "Kconfig range");
_Static_assert(ESPNOW_SEC_MAX_HANDSHAKES >= 1 && ESPNOW_SEC_MAX_HANDSHAKES <= 100, "Kconfig range");
_Static_assert(ESPNOW_SEC_RESPONDER_SESSIONS >= 1 && ESPNOW_SEC_RESPONDER_SESSIONS <= 8, "Kconfig range");
_Static_assert(ESPNOW_SEC_DEDUPE_SIZE >= 8 && ESPNOW_SEC_DEDUPE_SIZE <= 256, "Kconfig range");
_Static_assert(ESPNOW_SEC_RETRY_BASE_MS >= 10 && ESPNOW_SEC_RETRY_CAP_MS >= 10, "Kconfig range");

/*
 * errors.c - names for this component's esp_err_t codes and fail reasons.
 *
 * ESP-IDF's esp_err_to_name() table is generated from IDF's own headers only, so an
 * out-of-tree component needs its own (STYLE.md "Examples to follow" 10).
 */
#include "espnow_sec.h"

#ifdef ESP_PLATFORM
#include "esp_err.h"
#endif

const char *espnow_sec_err_to_name(esp_err_t err)
{
    switch (err) {
    case ESP_OK: return "ESP_OK";
    case ESP_FAIL: return "ESP_FAIL";
    case ESP_ERR_NO_MEM: return "ESP_ERR_NO_MEM";
    case ESP_ERR_INVALID_ARG: return "ESP_ERR_INVALID_ARG";
    case ESP_ERR_INVALID_STATE: return "ESP_ERR_INVALID_STATE";
    case ESP_ERR_INVALID_SIZE: return "ESP_ERR_INVALID_SIZE";
    case ESP_ERR_NOT_FOUND: return "ESP_ERR_NOT_FOUND";
    case ESP_ERR_NOT_SUPPORTED: return "ESP_ERR_NOT_SUPPORTED";
    case ESP_ERR_TIMEOUT: return "ESP_ERR_TIMEOUT";
    case ESP_ERR_ESPNOW_SEC_TOO_LONG: return "ESP_ERR_ESPNOW_SEC_TOO_LONG";
    case ESP_ERR_ESPNOW_SEC_NO_KEY: return "ESP_ERR_ESPNOW_SEC_NO_KEY";
    case ESP_ERR_ESPNOW_SEC_AUTH: return "ESP_ERR_ESPNOW_SEC_AUTH";
    case ESP_ERR_ESPNOW_SEC_MALFORMED: return "ESP_ERR_ESPNOW_SEC_MALFORMED";
    case ESP_ERR_ESPNOW_SEC_STORE_CORRUPT: return "ESP_ERR_ESPNOW_SEC_STORE_CORRUPT";
    case ESP_ERR_ESPNOW_SEC_TABLE_FULL: return "ESP_ERR_ESPNOW_SEC_TABLE_FULL";
    case ESP_ERR_ESPNOW_SEC_RADIO: return "ESP_ERR_ESPNOW_SEC_RADIO";
    case ESP_ERR_ESPNOW_SEC_COUNTER: return "ESP_ERR_ESPNOW_SEC_COUNTER";
    default:
        break;
    }
#ifdef ESP_PLATFORM
    return esp_err_to_name(err);
#else
    return "UNKNOWN ERROR";
#endif
}

const char *espnow_sec_fail_reason_str(espnow_sec_fail_reason_t reason)
{
    switch (reason) {
    case ESPNOW_SEC_FAIL_NONE: return "none";
    case ESPNOW_SEC_FAIL_TIMEOUT: return "timeout: the peer stopped answering after every retry";
    case ESPNOW_SEC_FAIL_POP_MISMATCH: return "PoP mismatch: the peer uses a different Proof of Possession";
    case ESPNOW_SEC_FAIL_BAD_KEY: return "bad public key (wrong length, all-zero or low order)";
    case ESPNOW_SEC_FAIL_MALFORMED: return "malformed or unexpected handshake message";
    case ESPNOW_SEC_FAIL_KEY_ECHO: return "KEY_RESP did not echo the app key";
    case ESPNOW_SEC_FAIL_STORE: return "the received key could not be stored";
    case ESPNOW_SEC_FAIL_CRYPTO: return "crypto backend failure";
    case ESPNOW_SEC_FAIL_NO_RESP1:
        return "no SessionResp1 after every retry: the peer rejected our verifier (different PoP?)";
    default: return "unknown reason";
    }
}

const char *espnow_sec_protocol_str(espnow_sec_protocol_t protocol)
{
    switch (protocol) {
    case ESPNOW_SEC_PROTOCOL_COMPAT: return "compat";
    case ESPNOW_SEC_PROTOCOL_V2: return "v2";
    case ESPNOW_SEC_PROTOCOL_DEFAULT: return "default";
    default: return "unknown";
    }
}

const char *espnow_sec_drop_reason_str(espnow_sec_drop_reason_t reason)
{
    static const char *const names[ESPNOW_SEC_DROP_COUNT] = {
        [ESPNOW_SEC_DROP_MALFORMED] = "malformed",
        [ESPNOW_SEC_DROP_FOREIGN] = "foreign",
        [ESPNOW_SEC_DROP_AUTH] = "auth",
        [ESPNOW_SEC_DROP_REPLAY] = "replay",
        [ESPNOW_SEC_DROP_DUPLICATE] = "duplicate",
        [ESPNOW_SEC_DROP_UNSYNCED] = "unsynced",
        [ESPNOW_SEC_DROP_EPOCH] = "epoch",
        [ESPNOW_SEC_DROP_TABLE_FULL] = "table_full",
        [ESPNOW_SEC_DROP_STATE] = "state",
        [ESPNOW_SEC_DROP_RATE_LIMITED] = "rate_limited",
        [ESPNOW_SEC_DROP_PLAINTEXT] = "plaintext",
    };
    return (unsigned)reason < ESPNOW_SEC_DROP_COUNT ? names[reason] : "unknown";
}

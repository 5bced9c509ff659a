/*
 * esp_err.h - host stand-in for ESP-IDF's esp_common/include/esp_err.h.
 *
 * Same type and the same code values as ESP-IDF, so code and logs read the same on
 * both targets. Only the subset this project uses; esp_err_to_name() knows these.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int esp_err_t;

#define ESP_OK 0
#define ESP_FAIL -1

#define ESP_ERR_NO_MEM 0x101
#define ESP_ERR_INVALID_ARG 0x102
#define ESP_ERR_INVALID_STATE 0x103
#define ESP_ERR_INVALID_SIZE 0x104
#define ESP_ERR_NOT_FOUND 0x105
#define ESP_ERR_NOT_SUPPORTED 0x106
#define ESP_ERR_TIMEOUT 0x107
#define ESP_ERR_INVALID_RESPONSE 0x108
#define ESP_ERR_INVALID_CRC 0x109
#define ESP_ERR_INVALID_VERSION 0x10A
#define ESP_ERR_INVALID_MAC 0x10B
#define ESP_ERR_NOT_FINISHED 0x10C
#define ESP_ERR_NOT_ALLOWED 0x10D

#define ESP_ERR_WIFI_BASE 0x3000

/** Name of `code` ("ESP_ERR_NO_MEM"), or "UNKNOWN ERROR" as ESP-IDF says. Never NULL. */
const char *esp_err_to_name(esp_err_t code);

/** Like esp_err_to_name(), but unknown codes are written into `buf` as a number. */
const char *esp_err_to_name_r(esp_err_t code, char *buf, size_t buflen);

/** Abort with the failing expression, file and line when `x` is not ESP_OK (as ESP-IDF). */
void espnow_sec_host_error_check_failed(esp_err_t rc, const char *file, int line,
                                        const char *function, const char *expression);

#define ESP_ERROR_CHECK(x)                                                                   \
    do {                                                                                     \
        esp_err_t err_rc_ = (x);                                                             \
        if (err_rc_ != ESP_OK) {                                                             \
            espnow_sec_host_error_check_failed(err_rc_, __FILE__, __LINE__, __func__, #x);   \
        }                                                                                    \
    } while (0)

#ifdef __cplusplus
}
#endif

/*
 * esp_log.h - host stand-in for ESP-IDF's log component.
 *
 * Lines look exactly like ESP-IDF's without colour: `I (1234) tag: text`, the number
 * being milliseconds since the process started. One line is written with one write,
 * so threads never interleave inside a line. The level is a runtime setting per tag
 * (esp_log_level_set), default INFO as ESP-IDF's CONFIG_LOG_DEFAULT_LEVEL_INFO.
 */
#pragma once

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ESP_LOG_NONE = 0,
    ESP_LOG_ERROR = 1,
    ESP_LOG_WARN = 2,
    ESP_LOG_INFO = 3,
    ESP_LOG_DEBUG = 4,
    ESP_LOG_VERBOSE = 5,
} esp_log_level_t;

/** Set the level of `tag`; "*" sets the default for every tag not set one by one. */
void esp_log_level_set(const char *tag, esp_log_level_t level);
esp_log_level_t esp_log_level_get(const char *tag);

/** Milliseconds since the process started (ESP-IDF: since boot). */
uint32_t esp_log_timestamp(void);

/** Raw output, no prefix or newline added (as ESP-IDF's esp_log_write). */
void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void esp_log_writev(esp_log_level_t level, const char *tag, const char *format, va_list args);

/** One complete line `L (ms) tag: text\n`, if `level` is enabled for `tag`. */
void esp_log_host_line(esp_log_level_t level, const char *tag, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void esp_log_host_linev(esp_log_level_t level, const char *tag, const char *format,
                        va_list args);

#define ESP_LOG_LEVEL(level, tag, format, ...) esp_log_host_line(level, tag, format, ##__VA_ARGS__)
#define ESP_LOGE(tag, format, ...) ESP_LOG_LEVEL(ESP_LOG_ERROR, tag, format, ##__VA_ARGS__)
#define ESP_LOGW(tag, format, ...) ESP_LOG_LEVEL(ESP_LOG_WARN, tag, format, ##__VA_ARGS__)
#define ESP_LOGI(tag, format, ...) ESP_LOG_LEVEL(ESP_LOG_INFO, tag, format, ##__VA_ARGS__)
#define ESP_LOGD(tag, format, ...) ESP_LOG_LEVEL(ESP_LOG_DEBUG, tag, format, ##__VA_ARGS__)
#define ESP_LOGV(tag, format, ...) ESP_LOG_LEVEL(ESP_LOG_VERBOSE, tag, format, ##__VA_ARGS__)

#ifdef __cplusplus
}
#endif

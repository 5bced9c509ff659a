/*
 * esp_shim.c (linux) - the bodies behind include/esp_err.h and include/esp_log.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_err.h"
#include "esp_log.h"
#include "port.h"

/* ------------------------------------------------------------------ esp_err */

static const struct {
    esp_err_t code;
    const char *name;
} s_err_names[] = {
    {ESP_OK, "ESP_OK"},
    {ESP_FAIL, "ESP_FAIL"},
    {ESP_ERR_NO_MEM, "ESP_ERR_NO_MEM"},
    {ESP_ERR_INVALID_ARG, "ESP_ERR_INVALID_ARG"},
    {ESP_ERR_INVALID_STATE, "ESP_ERR_INVALID_STATE"},
    {ESP_ERR_INVALID_SIZE, "ESP_ERR_INVALID_SIZE"},
    {ESP_ERR_NOT_FOUND, "ESP_ERR_NOT_FOUND"},
    {ESP_ERR_NOT_SUPPORTED, "ESP_ERR_NOT_SUPPORTED"},
    {ESP_ERR_TIMEOUT, "ESP_ERR_TIMEOUT"},
    {ESP_ERR_INVALID_RESPONSE, "ESP_ERR_INVALID_RESPONSE"},
    {ESP_ERR_INVALID_CRC, "ESP_ERR_INVALID_CRC"},
    {ESP_ERR_INVALID_VERSION, "ESP_ERR_INVALID_VERSION"},
    {ESP_ERR_INVALID_MAC, "ESP_ERR_INVALID_MAC"},
    {ESP_ERR_NOT_FINISHED, "ESP_ERR_NOT_FINISHED"},
    {ESP_ERR_NOT_ALLOWED, "ESP_ERR_NOT_ALLOWED"},
};

const char *esp_err_to_name(esp_err_t code)
{
    for (size_t i = 0; i < sizeof(s_err_names) / sizeof(s_err_names[0]); i++) {
        if (s_err_names[i].code == code) {
            return s_err_names[i].name;
        }
    }
    return "UNKNOWN ERROR";
}

const char *esp_err_to_name_r(esp_err_t code, char *buf, size_t buflen)
{
    const char *name = esp_err_to_name(code);
    if (strcmp(name, "UNKNOWN ERROR") != 0) {
        return name;
    }
    snprintf(buf, buflen, "Unknown error 0x%x", (unsigned)code);
    return buf;
}

void espnow_sec_host_error_check_failed(esp_err_t rc, const char *file, int line,
                                        const char *function, const char *expression)
{
    fflush(stdout);
    fprintf(stderr, "ESP_ERROR_CHECK failed: esp_err_t 0x%x (%s) at %s:%d\nfile: \"%s\" line %d\n"
                    "func: %s\nexpression: %s\n",
            (unsigned)rc, esp_err_to_name(rc), file, line, file, line, function, expression);
    abort();
}

/* ------------------------------------------------------------------ esp_log */

#define TAG_SLOTS 16
#define TAG_LEN 32

static pthread_mutex_t s_log_lock = PTHREAD_MUTEX_INITIALIZER;
static esp_log_level_t s_default_level = ESP_LOG_INFO;
static struct {
    char tag[TAG_LEN];
    esp_log_level_t level;
} s_tags[TAG_SLOTS];
static size_t s_tag_count;

void esp_log_level_set(const char *tag, esp_log_level_t level)
{
    if (!tag) {
        return;
    }
    pthread_mutex_lock(&s_log_lock);
    if (strcmp(tag, "*") == 0) {
        s_default_level = level;
        s_tag_count = 0; /* as ESP-IDF: "*" resets the per-tag levels */
    } else {
        size_t i;
        for (i = 0; i < s_tag_count; i++) {
            if (strncmp(s_tags[i].tag, tag, TAG_LEN) == 0) {
                break;
            }
        }
        if (i == s_tag_count && s_tag_count < TAG_SLOTS) {
            snprintf(s_tags[i].tag, TAG_LEN, "%s", tag);
            s_tag_count++;
        }
        if (i < s_tag_count) {
            s_tags[i].level = level;
        }
    }
    pthread_mutex_unlock(&s_log_lock);
}

esp_log_level_t esp_log_level_get(const char *tag)
{
    pthread_mutex_lock(&s_log_lock);
    esp_log_level_t level = s_default_level;
    for (size_t i = 0; tag && i < s_tag_count; i++) {
        if (strncmp(s_tags[i].tag, tag, TAG_LEN) == 0) {
            level = s_tags[i].level;
            break;
        }
    }
    pthread_mutex_unlock(&s_log_lock);
    return level;
}

uint32_t esp_log_timestamp(void)
{
    return espnow_sec_port_clock_ms();
}

void esp_log_writev(esp_log_level_t level, const char *tag, const char *format, va_list args)
{
    if (level > esp_log_level_get(tag)) {
        return;
    }
    flockfile(stdout);
    vfprintf(stdout, format, args);
    funlockfile(stdout);
}

void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    esp_log_writev(level, tag, format, args);
    va_end(args);
}

void esp_log_host_linev(esp_log_level_t level, const char *tag, const char *format, va_list args)
{
    static const char letters[] = {'N', 'E', 'W', 'I', 'D', 'V'};
    if (level <= ESP_LOG_NONE || level > ESP_LOG_VERBOSE || level > esp_log_level_get(tag)) {
        return;
    }
    char stack_buf[2048];
    char *buf = stack_buf;
    int head = snprintf(buf, sizeof(stack_buf), "%c (%u) %s: ", letters[level],
                        (unsigned)esp_log_timestamp(), tag ? tag : "");
    if (head < 0 || (size_t)head >= sizeof(stack_buf)) {
        return;
    }
    va_list copy;
    va_copy(copy, args);
    int body = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (body < 0) {
        return;
    }
    size_t total = (size_t)head + (size_t)body + 2; /* newline + terminator */
    if (total > sizeof(stack_buf)) {
        buf = malloc(total);
        if (!buf) {
            return;
        }
        memcpy(buf, stack_buf, (size_t)head);
    }
    vsnprintf(buf + head, total - (size_t)head, format, args);
    buf[total - 2] = '\n';
    buf[total - 1] = '\0';
    /* One locked write per line: threads never interleave inside a line. */
    flockfile(stdout);
    fwrite(buf, 1, total - 1, stdout);
    fflush(stdout);
    funlockfile(stdout);
    if (buf != stack_buf) {
        free(buf);
    }
}

void esp_log_host_line(esp_log_level_t level, const char *tag, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    esp_log_host_linev(level, tag, format, args);
    va_end(args);
}

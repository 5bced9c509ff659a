/*
 * json.h - a small strict JSON (RFC 8259) reader for the test-vector files.
 *
 * Test code only (it allocates freely). Strict on purpose, so a vector file that is not what
 * the tests expect fails loudly instead of being half-read:
 *  - the RFC 8259 grammar exactly: no comments, no trailing commas, no leading zeros, no
 *    single quotes, nothing after the top-level value;
 *  - strings must be valid UTF-8 with no raw control characters; escapes (including \uXXXX
 *    surrogate pairs) are decoded to UTF-8; \u0000 and lone surrogates are refused;
 *  - numbers must be integers that fit in a long long: the vector schema has no fractions
 *    or exponents, so one appearing means the schema changed;
 *  - duplicate keys in an object are refused;
 *  - nesting deeper than JSON_MAX_DEPTH is refused.
 * Every value records its path ("$.handshakes[0].inputs.pop") for error messages.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 32

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type_t;

typedef struct json json_t;

struct json {
    json_type_t type;
    char *path;         /**< where this value sits, for messages */
    bool b;             /**< JSON_BOOL */
    long long i;        /**< JSON_INT */
    char *s;            /**< JSON_STRING: UTF-8, NUL-terminated (no embedded NUL) */
    size_t slen;
    size_t n;           /**< JSON_ARRAY / JSON_OBJECT: number of items */
    json_t **items;     /**< array items / object values, in file order */
    char **keys;        /**< JSON_OBJECT: keys, same order as items */
};

/**
 * Parse `len` bytes of `text`. Returns the root value, or NULL with a one-line reason
 * (byte offset, line and column included) in `err`.
 */
json_t *json_parse(const char *text, size_t len, char *err, size_t err_cap);

/** Free a tree returned by json_parse (NULL is fine). */
void json_free(json_t *v);

/** Member `key` of an object, or NULL when absent (or when `obj` is not an object). */
const json_t *json_member(const json_t *obj, const char *key);

const char *json_type_name(json_type_t t);

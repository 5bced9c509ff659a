/*
 * json.c - see json.h. A recursive-descent parser over RFC 8259 §2-§8, written for the
 * vector tests; every read is bounded by the end of the input.
 */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *start;
    const char *p;
    const char *end;
    char *err;
    size_t err_cap;
    bool failed;
} parser_t;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "json: out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xstrdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "json: formatting failed\n");
        exit(2);
    }
    char *s = xcalloc((size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void fail(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(parser_t *ps, const char *fmt, ...)
{
    if (ps->failed) {
        return; /* keep the first, innermost reason */
    }
    ps->failed = true;
    size_t line = 1, col = 1;
    for (const char *q = ps->start; q < ps->p && q < ps->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->err_cap, "JSON error at byte %zu (line %zu, column %zu): %s",
             (size_t)(ps->p - ps->start), line, col, msg);
}

static void skip_ws(parser_t *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static bool literal(parser_t *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        fail(ps, "invalid literal (expected '%s')", word);
        return false;
    }
    ps->p += n;
    return true;
}

static json_t *new_value(json_type_t type, char *path)
{
    json_t *v = xcalloc(1, sizeof(*v));
    v->type = type;
    v->path = path;
    return v;
}

/* ---- strings ---- */

typedef struct {
    char *buf;
    size_t len;
    size_t cap;
} sbuf_t;

static void sb_put(sbuf_t *b, uint8_t c)
{
    if (b->len + 1 >= b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *n = realloc(b->buf, cap);
        if (n == NULL) {
            fprintf(stderr, "json: out of memory\n");
            exit(2);
        }
        b->buf = n;
        b->cap = cap;
    }
    b->buf[b->len++] = (char)c;
    b->buf[b->len] = '\0';
}

static void sb_put_utf8(sbuf_t *b, uint32_t cp)
{
    if (cp < 0x80) {
        sb_put(b, (uint8_t)cp);
    } else if (cp < 0x800) {
        sb_put(b, (uint8_t)(0xC0 | (cp >> 6)));
        sb_put(b, (uint8_t)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        sb_put(b, (uint8_t)(0xE0 | (cp >> 12)));
        sb_put(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        sb_put(b, (uint8_t)(0x80 | (cp & 0x3F)));
    } else {
        sb_put(b, (uint8_t)(0xF0 | (cp >> 18)));
        sb_put(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
        sb_put(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
        sb_put(b, (uint8_t)(0x80 | (cp & 0x3F)));
    }
}

static bool hex4(parser_t *ps, uint32_t *out)
{
    if (ps->end - ps->p < 4) {
        fail(ps, "truncated \\u escape");
        return false;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        } else {
            fail(ps, "bad hex digit in \\u escape");
            return false;
        }
    }
    ps->p += 4;
    *out = v;
    return true;
}

/* One raw (unescaped) UTF-8 sequence, validated (RFC 3629 §4: shortest form, no surrogates). */
static bool raw_utf8(parser_t *ps, sbuf_t *b)
{
    const uint8_t *s = (const uint8_t *)ps->p;
    size_t avail = (size_t)(ps->end - ps->p);
    uint8_t c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) {
        n = 1, cp = c, min = 0;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        fail(ps, "invalid UTF-8 lead byte 0x%02x", c);
        return false;
    }
    if (avail < n) {
        fail(ps, "truncated UTF-8 sequence");
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            fail(ps, "invalid UTF-8 continuation byte");
            return false;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        fail(ps, "overlong or out-of-range UTF-8 sequence");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        sb_put(b, s[i]);
    }
    ps->p += n;
    return true;
}

static char *parse_string_raw(parser_t *ps, size_t *out_len)
{
    if (ps->p >= ps->end || *ps->p != '"') {
        fail(ps, "expected a string");
        return NULL;
    }
    ps->p++;
    sbuf_t b = {0};
    sb_put(&b, 'x'); /* make sure buf exists, then drop it */
    b.len = 0;
    b.buf[0] = '\0';
    for (;;) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            break;
        }
        uint8_t c = (uint8_t)*ps->p;
        if (c == '"') {
            ps->p++;
            *out_len = b.len;
            return b.buf;
        }
        if (c < 0x20) {
            fail(ps, "raw control character 0x%02x in a string", c);
            break;
        }
        if (c != '\\') {
            if (!raw_utf8(ps, &b)) {
                break;
            }
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            fail(ps, "unterminated escape");
            break;
        }
        char e = *ps->p++;
        uint32_t cp = 0;
        switch (e) {
        case '"': sb_put(&b, '"'); continue;
        case '\\': sb_put(&b, '\\'); continue;
        case '/': sb_put(&b, '/'); continue;
        case 'b': sb_put(&b, '\b'); continue;
        case 'f': sb_put(&b, '\f'); continue;
        case 'n': sb_put(&b, '\n'); continue;
        case 'r': sb_put(&b, '\r'); continue;
        case 't': sb_put(&b, '\t'); continue;
        case 'u':
            if (!hex4(ps, &cp)) {
                break;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = 0;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    fail(ps, "high surrogate without a low surrogate");
                    break;
                }
                ps->p += 2;
                if (!hex4(ps, &lo)) {
                    break;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(ps, "high surrogate followed by a non-low surrogate");
                    break;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(ps, "lone low surrogate");
                break;
            } else if (cp == 0) {
                fail(ps, "\\u0000 is not allowed (strings are NUL-terminated)");
                break;
            }
            sb_put_utf8(&b, cp);
            continue;
        default:
            fail(ps, "invalid escape '\\%c'", e);
            break;
        }
        break; /* only reached on failure */
    }
    free(b.buf);
    return NULL;
}

/* ---- numbers ---- */

static bool parse_int(parser_t *ps, long long *out)
{
    const char *s = ps->p;
    const char *q = s;
    if (q < ps->end && *q == '-') {
        q++;
    }
    if (q >= ps->end || *q < '0' || *q > '9') {
        fail(ps, "invalid number");
        return false;
    }
    if (*q == '0' && q + 1 < ps->end && q[1] >= '0' && q[1] <= '9') {
        fail(ps, "leading zero in a number");
        return false;
    }
    while (q < ps->end && *q >= '0' && *q <= '9') {
        q++;
    }
    if (q < ps->end && (*q == '.' || *q == 'e' || *q == 'E')) {
        fail(ps, "non-integer number: the vector schema has integers only");
        return false;
    }
    char tmp[32];
    size_t n = (size_t)(q - s);
    if (n >= sizeof(tmp)) {
        fail(ps, "integer too long");
        return false;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == ERANGE) {
        fail(ps, "integer out of range");
        return false;
    }
    ps->p = q;
    *out = v;
    return true;
}

/* ---- values ---- */

static json_t *parse_value(parser_t *ps, char *path, int depth);

static void free_partial(json_t *v)
{
    json_free(v);
}

static json_t *parse_array(parser_t *ps, char *path, int depth)
{
    json_t *v = new_value(JSON_ARRAY, path);
    size_t cap = 0;
    ps->p++; /* [ */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return v;
    }
    for (;;) {
        skip_ws(ps);
        json_t *item = parse_value(ps, xstrdup_printf("%s[%zu]", path, v->n), depth + 1);
        if (item == NULL) {
            free_partial(v);
            return NULL;
        }
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            json_t **items = realloc(v->items, cap * sizeof(*items));
            if (items == NULL) {
                fprintf(stderr, "json: out of memory\n");
                exit(2);
            }
            v->items = items;
        }
        v->items[v->n++] = item;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ']') {
                fail(ps, "trailing comma in an array");
                free_partial(v);
                return NULL;
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return v;
        }
        fail(ps, "expected ',' or ']' in an array");
        free_partial(v);
        return NULL;
    }
}

static json_t *parse_object(parser_t *ps, char *path, int depth)
{
    json_t *v = new_value(JSON_OBJECT, path);
    size_t cap = 0;
    ps->p++; /* { */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return v;
    }
    for (;;) {
        skip_ws(ps);
        size_t klen = 0;
        char *key = parse_string_raw(ps, &klen);
        if (key == NULL) {
            fail(ps, "expected an object key (a string)");
            free_partial(v);
            return NULL;
        }
        for (size_t i = 0; i < v->n; i++) {
            if (strcmp(v->keys[i], key) == 0) {
                fail(ps, "duplicate key \"%s\"", key);
                free(key);
                free_partial(v);
                return NULL;
            }
        }
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            fail(ps, "expected ':' after an object key");
            free(key);
            free_partial(v);
            return NULL;
        }
        ps->p++;
        skip_ws(ps);
        json_t *item = parse_value(ps, xstrdup_printf("%s.%s", path, key), depth + 1);
        if (item == NULL) {
            free(key);
            free_partial(v);
            return NULL;
        }
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            json_t **items = realloc(v->items, cap * sizeof(*items));
            char **keys = realloc(v->keys, cap * sizeof(*keys));
            if (items == NULL || keys == NULL) {
                fprintf(stderr, "json: out of memory\n");
                exit(2);
            }
            v->items = items;
            v->keys = keys;
        }
        v->keys[v->n] = key;
        v->items[v->n++] = item;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == '}') {
                fail(ps, "trailing comma in an object");
                free_partial(v);
                return NULL;
            }
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return v;
        }
        fail(ps, "expected ',' or '}' in an object");
        free_partial(v);
        return NULL;
    }
}

static json_t *parse_value(parser_t *ps, char *path, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nesting deeper than %d", JSON_MAX_DEPTH);
        free(path);
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        free(path);
        return NULL;
    }
    json_t *v = NULL;
    switch (*ps->p) {
    case '{':
        return parse_object(ps, path, depth);
    case '[':
        return parse_array(ps, path, depth);
    case '"': {
        size_t n = 0;
        char *s = parse_string_raw(ps, &n);
        if (s == NULL) {
            break;
        }
        v = new_value(JSON_STRING, path);
        v->s = s;
        v->slen = n;
        return v;
    }
    case 't':
    case 'f': {
        bool is_true = *ps->p == 't';
        if (!literal(ps, is_true ? "true" : "false")) {
            break;
        }
        v = new_value(JSON_BOOL, path);
        v->b = is_true;
        return v;
    }
    case 'n':
        if (!literal(ps, "null")) {
            break;
        }
        return new_value(JSON_NULL, path);
    default: {
        long long i = 0;
        if (!parse_int(ps, &i)) {
            break;
        }
        v = new_value(JSON_INT, path);
        v->i = i;
        return v;
    }
    }
    free(path);
    return NULL;
}

json_t *json_parse(const char *text, size_t len, char *err, size_t err_cap)
{
    parser_t ps = {.start = text, .p = text, .end = text + len, .err = err, .err_cap = err_cap};
    if (err_cap > 0) {
        err[0] = '\0';
    }
    json_t *root = parse_value(&ps, xstrdup_printf("$"), 0);
    if (root == NULL) {
        if (!ps.failed) {
            fail(&ps, "invalid JSON");
        }
        return NULL;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail(&ps, "unexpected data after the top-level value");
        json_free(root);
        return NULL;
    }
    return root;
}

void json_free(json_t *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        json_free(v->items[i]);
        if (v->keys != NULL) {
            free(v->keys[i]);
        }
    }
    free(v->items);
    free(v->keys);
    free(v->s);
    free(v->path);
    free(v);
}

const json_t *json_member(const json_t *obj, const char *key)
{
    if (obj == NULL || obj->type != JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < obj->n; i++) {
        if (strcmp(obj->keys[i], key) == 0) {
            return obj->items[i];
        }
    }
    return NULL;
}

const char *json_type_name(json_type_t t)
{
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "boolean";
    case JSON_INT: return "integer";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    default: return "?";
    }
}

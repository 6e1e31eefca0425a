/*
 * Helpers for Tollgate policy plugins written in C, on top of the generated bindings (plugin.h,
 * plugin.c: `wit-bindgen c` of tollgate:policy@0.2.0). Header-only; include it after plugin.h.
 *
 * A plugin defines `struct tg_rule` (one rule of the policy: whatever its configuration
 * compiles to) and the five functions of the `rule` resource:
 *
 *   bool tg_rule_create(plugin_string_t *config, tg_own_rule_t *ret, plugin_string_t *err)
 *        build a rule: malloc a struct tg_rule, fill it, `*ret = tg_rule_new(rule)`; or set
 *        *err and return false to reject the configuration
 *   void tg_rule_check_call(tg_rule_t *self, tg_call_t *call, tg_verdict_t *ret)
 *   void tg_rule_check_result(tg_rule_t *self, tg_call_t *call, plugin_string_t *result,
 *                             tg_result_verdict_t *ret)
 *   bool tg_rule_visible(tg_rule_t *self, plugin_string_t *tool, plugin_string_t *caller)
 *   void tg_rule_destroy(tg_rule_t *self)        free what create allocated
 *
 * (macros for the generated `exports_tollgate_policy_rules_…` names below).
 *
 *   tg_allow(ret) / tg_deny(ret, code, reason) / tg_deny_retry(ret, code, reason, ms)
 *   tg_ask(ret, message)                         ask a person to approve the call
 *   tg_json_string(json, len, key)   the string value of "key" in a JSON object (malloc'd, or NULL)
 *   tg_json_strings(json, len, key, &n)  the strings of the array "key" (malloc'd array, or NULL)
 *   tg_contains(haystack, len, needle)   substring search over a plugin_string_t's bytes
 *   tg_concat3(a, b, c)              a malloc'd "abc", for building reasons without printf
 *
 * The JSON helpers are deliberately small: they look the key up anywhere in the text and decode
 * \" \\ \/ \b \f \n \r \t and \u00XX escapes, which is enough for flat configurations.
 */
#ifndef TOLLGATE_H
#define TOLLGATE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "plugin.h"

/* Short names for the generated resource types and functions. */
#define tg_rule exports_tollgate_policy_rules_rule_t
typedef struct tg_rule tg_rule_t;
typedef exports_tollgate_policy_rules_own_rule_t tg_own_rule_t;
typedef tollgate_policy_types_call_t tg_call_t;
typedef tollgate_policy_types_verdict_t tg_verdict_t;
typedef tollgate_policy_types_result_verdict_t tg_result_verdict_t;
#define tg_rule_new exports_tollgate_policy_rules_rule_new
#define tg_rule_create exports_tollgate_policy_rules_static_rule_create
#define tg_rule_check_call exports_tollgate_policy_rules_method_rule_check_call
#define tg_rule_check_result exports_tollgate_policy_rules_method_rule_check_result
#define tg_rule_visible exports_tollgate_policy_rules_method_rule_visible
#define tg_rule_destroy exports_tollgate_policy_rules_rule_destructor
#define tg_call_free tollgate_policy_types_call_free

static inline void tg_allow(tg_verdict_t *ret) {
  ret->tag = TOLLGATE_POLICY_TYPES_VERDICT_ALLOW;
}

static inline void tg_ask(tg_verdict_t *ret, const char *message) {
  ret->tag = TOLLGATE_POLICY_TYPES_VERDICT_ASK;
  plugin_string_dup(&ret->val.ask.message, message);
  ret->val.ask.timeout_ms.is_some = false;
}

static inline void tg_deny_retry(tg_verdict_t *ret, const char *code, const char *reason,
                                 bool has_retry, uint64_t retry_ms) {
  ret->tag = TOLLGATE_POLICY_TYPES_VERDICT_DENY;
  plugin_string_dup(&ret->val.deny.reason, reason);
  plugin_string_dup(&ret->val.deny.code, code);
  ret->val.deny.retry_after_ms.is_some = has_retry;
  ret->val.deny.retry_after_ms.val = retry_ms;
}

static inline void tg_deny(tg_verdict_t *ret, const char *code, const char *reason) {
  tg_deny_retry(ret, code, reason, false, 0);
}

static inline bool tg_contains(const uint8_t *hay, size_t len, const char *needle) {
  size_t n = strlen(needle);
  if (n == 0) return true;
  for (size_t i = 0; i + n <= len; i++)
    if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, n) == 0) return true;
  return false;
}

static inline char *tg_concat3(const char *a, const char *b, const char *c) {
  size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
  char *out = malloc(la + lb + lc + 1);
  memcpy(out, a, la);
  memcpy(out + la, b, lb);
  memcpy(out + la + lb, c, lc + 1);
  return out;
}

/* Decode the JSON string starting at json[*pos] (which must be '"'); advances *pos past it. */
static inline char *tg__json_decode(const uint8_t *json, size_t len, size_t *pos) {
  if (*pos >= len || json[*pos] != '"') return NULL;
  char *out = malloc(len - *pos + 1);
  size_t o = 0, i = *pos + 1;
  while (i < len && json[i] != '"') {
    uint8_t c = json[i++];
    if (c == '\\' && i < len) {
      uint8_t e = json[i++];
      switch (e) {
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u':
          if (i + 4 <= len) {
            c = (uint8_t)strtol((const char[]){(char)json[i + 2], (char)json[i + 3], 0}, NULL, 16);
            i += 4;
          }
          break;
        default: c = e;
      }
    }
    out[o++] = (char)c;
  }
  out[o] = 0;
  *pos = i + 1;
  return out;
}

/* Position just after `"key"` and the following ':' (skipping spaces), or `len` if absent. */
static inline size_t tg__json_find(const uint8_t *json, size_t len, const char *key) {
  size_t k = strlen(key);
  for (size_t i = 0; i + k + 2 <= len; i++) {
    if (json[i] == '"' && memcmp(json + i + 1, key, k) == 0 && json[i + k + 1] == '"') {
      size_t j = i + k + 2;
      while (j < len && (json[j] == ' ' || json[j] == '\n' || json[j] == '\t' || json[j] == '\r')) j++;
      if (j < len && json[j] == ':') {
        j++;
        while (j < len && (json[j] == ' ' || json[j] == '\n' || json[j] == '\t' || json[j] == '\r')) j++;
        return j;
      }
    }
  }
  return len;
}

static inline char *tg_json_string(const uint8_t *json, size_t len, const char *key) {
  size_t pos = tg__json_find(json, len, key);
  return pos < len ? tg__json_decode(json, len, &pos) : NULL;
}

static inline char **tg_json_strings(const uint8_t *json, size_t len, const char *key, size_t *n) {
  size_t pos = tg__json_find(json, len, key);
  *n = 0;
  if (pos >= len || json[pos] != '[') return NULL;
  char **items = malloc(sizeof(char *) * (len - pos));
  pos++;
  while (pos < len && json[pos] != ']') {
    if (json[pos] == '"') {
      items[(*n)++] = tg__json_decode(json, len, &pos);
    } else {
      pos++;
    }
  }
  return items;
}

#endif

/*
 * __NAME__: a Tollgate policy plugin in C. It refuses every tool call whose arguments contain the
 * configured word. Edit tg_rule_check_call (and optionally check_result or visible).
 *
 * The bindings (bindings/plugin.{c,h}) are generated from tollgate:policy@0.2.0; tollgate.h adds
 * short names, verdict and JSON helpers. Each rule of the policy that uses this plugin is one
 * `struct tg_rule`, built by tg_rule_create from that rule's configuration and freed by
 * tg_rule_destroy. Strings handed in are owned by this code and must be freed.
 */
#include "tollgate.h"

struct tg_rule {
  char *forbidden;
};

bool tg_rule_create(plugin_string_t *config, tg_own_rule_t *ret, plugin_string_t *err) {
  char *forbidden = tg_json_string(config->ptr, config->len, "forbidden");
  plugin_string_free(config);
  if (forbidden == NULL || forbidden[0] == 0) {
    free(forbidden);
    plugin_string_dup(err, "`forbidden` must be a non-empty string");
    return false;
  }
  tg_rule_t *rule = malloc(sizeof(tg_rule_t));
  rule->forbidden = forbidden;
  *ret = tg_rule_new(rule);
  return true;
}

void tg_rule_check_call(tg_rule_t *self, tg_call_t *call, tg_verdict_t *ret) {
  if (tg_contains(call->arguments.ptr, call->arguments.len, self->forbidden)) {
    /* No printf family here: it would pull in WASI stdout, an import the pack would then have
     * to ask for (the `output` capability). */
    char *reason = tg_concat3("the arguments contain '", self->forbidden, "'");
    tg_deny(ret, "denied", reason);
    free(reason);
  } else {
    tg_allow(ret);
  }
  tg_call_free(call);
}

void tg_rule_check_result(tg_rule_t *self, tg_call_t *call, plugin_string_t *tool_result,
                          tg_result_verdict_t *ret) {
  ret->tag = TOLLGATE_POLICY_TYPES_RESULT_VERDICT_PASS;
  tg_call_free(call);
  plugin_string_free(tool_result);
}

bool tg_rule_visible(tg_rule_t *self, plugin_string_t *tool, plugin_string_t *caller) {
  plugin_string_free(tool);
  plugin_string_free(caller);
  return true;
}

void tg_rule_destroy(tg_rule_t *self) {
  free(self->forbidden);
  free(self);
}

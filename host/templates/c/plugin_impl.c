/*
 * __NAME__: a Tollgate policy plugin in C. It refuses every tool call whose arguments contain the
 * configured word. Edit exports_plugin_check_call (and optionally check_result or visible).
 *
 * The bindings (bindings/plugin.{c,h}) are generated from tollgate:policy@0.1.0; tollgate.h adds
 * verdict and JSON helpers. Strings handed in are owned by this code and must be freed.
 */
#include "tollgate.h"

static char *forbidden = NULL;

bool exports_plugin_configure(plugin_string_t *config, plugin_string_t *err) {
  forbidden = tg_json_string(config->ptr, config->len, "forbidden");
  plugin_string_free(config);
  if (forbidden == NULL || forbidden[0] == 0) {
    plugin_string_dup(err, "`forbidden` must be a non-empty string");
    return false;
  }
  return true;
}

void exports_plugin_check_call(plugin_call_t *call, plugin_verdict_t *ret) {
  if (tg_contains(call->arguments.ptr, call->arguments.len, forbidden)) {
    /* No printf family here: it would pull in WASI stdout, an import the pack would then have
     * to ask for (the `output` capability). */
    char *reason = tg_concat3("the arguments contain '", forbidden, "'");
    tg_deny(ret, "denied", reason);
    free(reason);
  } else {
    tg_allow(ret);
  }
  plugin_call_free(call);
}

void exports_plugin_check_result(plugin_call_t *call, plugin_string_t *tool_result,
                                 plugin_result_verdict_t *ret) {
  ret->tag = TOLLGATE_POLICY_TYPES_RESULT_VERDICT_PASS;
  plugin_call_free(call);
  plugin_string_free(tool_result);
}

bool exports_plugin_visible(plugin_string_t *tool, plugin_string_t *caller) {
  plugin_string_free(tool);
  plugin_string_free(caller);
  return true;
}

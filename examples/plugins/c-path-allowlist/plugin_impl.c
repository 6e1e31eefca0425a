/*
 * c-path-allowlist: lets file tools touch only paths under configured prefixes. Every argument
 * named in `keys` (default: path, source, destination) must be an absolute path under one of the
 * `allowed` prefixes and must not climb out with `..`. Put it in front of a filesystem MCP server
 * to narrow what an agent may read or write, per policy rather than per server launch.
 *
 * config: { "allowed": ["/srv/project/"], "keys": ["path", "source", "destination"] }
 */
#include "tollgate.h"

static char **allowed = NULL;
static size_t n_allowed = 0;
static char **keys = NULL;
static size_t n_keys = 0;
static char *default_keys[] = {"path", "source", "destination"};

bool exports_plugin_configure(plugin_string_t *config, plugin_string_t *err) {
  allowed = tg_json_strings(config->ptr, config->len, "allowed", &n_allowed);
  keys = tg_json_strings(config->ptr, config->len, "keys", &n_keys);
  plugin_string_free(config);
  if (n_allowed == 0) {
    plugin_string_dup(err, "`allowed` must list at least one path prefix, like [\"/srv/project/\"]");
    return false;
  }
  for (size_t i = 0; i < n_allowed; i++) {
    if (allowed[i][0] != '/') {
      char *msg = tg_concat3("`allowed` entries must be absolute paths, not '", allowed[i], "'");
      plugin_string_dup(err, msg);
      free(msg);
      return false;
    }
  }
  if (n_keys == 0) {
    keys = default_keys;
    n_keys = 3;
  }
  return true;
}

static bool climbs(const char *p) {
  size_t n = strlen(p);
  for (size_t i = 0; i + 1 < n + 1; i++) {
    bool starts = i == 0 || p[i - 1] == '/';
    if (starts && p[i] == '.' && p[i + 1] == '.' && (p[i + 2] == '/' || p[i + 2] == 0)) return true;
  }
  return false;
}

static bool under_allowed(const char *p) {
  for (size_t i = 0; i < n_allowed; i++)
    if (strncmp(p, allowed[i], strlen(allowed[i])) == 0) return true;
  return false;
}

void exports_plugin_check_call(plugin_call_t *call, plugin_verdict_t *ret) {
  tg_allow(ret);
  for (size_t k = 0; k < n_keys; k++) {
    char *path = tg_json_string(call->arguments.ptr, call->arguments.len, keys[k]);
    if (path == NULL) continue;
    const char *why = NULL;
    if (path[0] != '/') why = "' is not an absolute path; use a full path under an allowed folder";
    else if (climbs(path)) why = "' climbs out with '..'; use the plain path";
    else if (!under_allowed(path)) why = "' is outside the folders this agent may use";
    if (why != NULL) {
      char *reason = tg_concat3("the path '", path, why);
      tg_deny(ret, "path_not_allowed", reason);
      free(reason);
      free(path);
      break;
    }
    free(path);
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

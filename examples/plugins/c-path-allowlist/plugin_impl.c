/*
 * c-path-allowlist: lets file tools touch only paths under configured prefixes. Every argument
 * named in `keys` (default: path, source, destination) must be an absolute path under one of the
 * `allowed` prefixes and must not climb out with `..`. Put it in front of a filesystem MCP server
 * to narrow what an agent may read or write, per policy rather than per server launch.
 *
 * config: { "allowed": ["/srv/project/"], "keys": ["path", "source", "destination"] }
 *
 * Each rule of the policy that uses the plugin is one `struct tg_rule` (tollgate:policy@0.2.0).
 */
#include "tollgate.h"

static char *default_keys[] = {"path", "source", "destination"};

struct tg_rule {
  char **allowed;
  size_t n_allowed;
  char **keys;
  size_t n_keys;
};

static void free_strings(char **items, size_t n) {
  for (size_t i = 0; i < n; i++) free(items[i]);
  free(items);
}

bool tg_rule_create(plugin_string_t *config, tg_own_rule_t *ret, plugin_string_t *err) {
  size_t n_allowed = 0, n_keys = 0;
  char **allowed = tg_json_strings(config->ptr, config->len, "allowed", &n_allowed);
  char **keys = tg_json_strings(config->ptr, config->len, "keys", &n_keys);
  plugin_string_free(config);
  const char *problem = NULL;
  char *msg = NULL;
  if (n_allowed == 0) {
    problem = "`allowed` must list at least one path prefix, like [\"/srv/project/\"]";
  }
  for (size_t i = 0; problem == NULL && i < n_allowed; i++) {
    if (allowed[i][0] != '/') {
      msg = tg_concat3("`allowed` entries must be absolute paths, not '", allowed[i], "'");
      problem = msg;
    }
  }
  if (problem != NULL) {
    plugin_string_dup(err, problem);
    free(msg);
    free_strings(allowed, n_allowed);
    free_strings(keys, n_keys);
    return false;
  }
  tg_rule_t *rule = malloc(sizeof(tg_rule_t));
  rule->allowed = allowed;
  rule->n_allowed = n_allowed;
  if (n_keys == 0) {
    free(keys);
    rule->keys = NULL;
    rule->n_keys = 0;
  } else {
    rule->keys = keys;
    rule->n_keys = n_keys;
  }
  *ret = tg_rule_new(rule);
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

static bool under_allowed(const tg_rule_t *rule, const char *p) {
  for (size_t i = 0; i < rule->n_allowed; i++)
    if (strncmp(p, rule->allowed[i], strlen(rule->allowed[i])) == 0) return true;
  return false;
}

void tg_rule_check_call(tg_rule_t *self, tg_call_t *call, tg_verdict_t *ret) {
  char **keys = self->keys != NULL ? self->keys : default_keys;
  size_t n_keys = self->keys != NULL ? self->n_keys : 3;
  tg_allow(ret);
  for (size_t k = 0; k < n_keys; k++) {
    char *path = tg_json_string(call->arguments.ptr, call->arguments.len, keys[k]);
    if (path == NULL) continue;
    const char *why = NULL;
    if (path[0] != '/') why = "' is not an absolute path; use a full path under an allowed folder";
    else if (climbs(path)) why = "' climbs out with '..'; use the plain path";
    else if (!under_allowed(self, path)) why = "' is outside the folders this agent may use";
    if (why != NULL) {
      char *reason = tg_concat3("the path '", path, why);
      tg_deny(ret, "path_not_allowed", reason);
      free(reason);
      free(path);
      break;
    }
    free(path);
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
  free_strings(self->allowed, self->n_allowed);
  if (self->keys != NULL) free_strings(self->keys, self->n_keys);
  free(self);
}

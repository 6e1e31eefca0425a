// __NAME__: a Tollgate policy plugin in JavaScript. It refuses every tool call whose arguments
// contain the configured word. Edit checkCall (and optionally checkResult or visible).
//
// The exports follow the `plugin` world of wit/policy.wit (tollgate:policy@0.1.0), in camelCase;
// imports come from 'tollgate:policy/log@0.1.0' and 'tollgate:policy/counters@0.1.0'.
import { log } from 'tollgate:policy/log@0.1.0';

let forbidden = null;

export function configure(config) {
  const c = JSON.parse(config);
  if (typeof c.forbidden !== 'string' || c.forbidden === '') {
    // A thrown string becomes the error that rejects the policy file.
    throw '`forbidden` must be a non-empty string';
  }
  forbidden = c.forbidden;
}

export function checkCall(call) {
  if (call.arguments.includes(forbidden)) {
    log('debug', `refusing ${call.tool} for ${call.caller}`);
    return { tag: 'deny', val: { reason: `the arguments contain '${forbidden}'`, code: 'denied' } };
  }
  return { tag: 'allow' };
}

export function checkResult(call, toolResult) {
  return { tag: 'pass' };
}

export function visible(tool, caller) {
  return true;
}

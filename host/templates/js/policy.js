// __NAME__: a Tollgate policy plugin in JavaScript. It refuses every tool call whose arguments
// contain the configured word. Edit checkCall (and optionally checkResult or visible).
//
// The exports follow the `plugin` world of wit/policy.wit (tollgate:policy@0.2.0): the `rules`
// interface, whose `Rule` class is one rule of the operator's policy, built by `Rule.create` from
// that rule's configuration (methods in camelCase). Imports come from
// 'tollgate:policy/log@0.2.0' and 'tollgate:policy/counters@0.2.0'.
import { log } from 'tollgate:policy/log@0.2.0';

class Rule {
  constructor(forbidden) {
    this.forbidden = forbidden;
  }

  static create(config) {
    const c = JSON.parse(config);
    if (typeof c.forbidden !== 'string' || c.forbidden === '') {
      // A thrown string becomes the error that rejects the policy file.
      throw '`forbidden` must be a non-empty string';
    }
    return new Rule(c.forbidden);
  }

  checkCall(call) {
    if (call.arguments.includes(this.forbidden)) {
      log('debug', `refusing ${call.tool} for ${call.caller}`);
      return { tag: 'deny', val: { reason: `the arguments contain '${this.forbidden}'`, code: 'denied' } };
    }
    return { tag: 'allow' };
  }

  checkResult(call, toolResult) {
    return { tag: 'pass' };
  }

  visible(tool, caller) {
    return true;
  }
}

export const rules = { Rule };

// js-business-hours: lets the configured tools run only during business hours, and tells the
// agent when it may try again. Reads the wall clock, so the pack asks for the `clocks`
// capability and the policy must grant it.
//
// config: { "open": 9, "close": 17, "days": [1, 2, 3, 4, 5], "utc_offset_minutes": 60 }
//   open/close: hours (0-24, close may be below open for a night shift); days: 0 = Sunday.
//
// Each rule of the policy that uses the plugin is one `Rule`, built by `Rule.create` from that
// rule's configuration (tollgate:policy@0.2.0).
import { log } from 'tollgate:policy/log@0.2.0';

const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

class Rule {
  constructor(cfg) {
    this.cfg = cfg;
  }

  static create(config) {
    const c = Object.assign({ days: [1, 2, 3, 4, 5], utc_offset_minutes: 0 }, JSON.parse(config));
    for (const k of ['open', 'close']) {
      if (!Number.isInteger(c[k]) || c[k] < 0 || c[k] > 24) throw `\`${k}\` must be an hour from 0 to 24`;
    }
    if (c.open === c.close) throw '`open` and `close` must differ';
    log('debug', `business hours ${c.open}:00-${c.close}:00 on days ${c.days.join(',')}`);
    return new Rule(c);
  }

  // Whether the local time `t` (a Date shifted by the UTC offset, read with getUTC*) is open.
  isOpen(t) {
    const cfg = this.cfg;
    const h = t.getUTCHours();
    const inHours = cfg.open < cfg.close ? h >= cfg.open && h < cfg.close : h >= cfg.open || h < cfg.close;
    return inHours && cfg.days.includes(t.getUTCDay());
  }

  checkCall(call) {
    const cfg = this.cfg;
    const now = Date.now() + cfg.utc_offset_minutes * 60000;
    if (this.isOpen(new Date(now))) return { tag: 'allow' };
    // The next opening, searched hour by hour over the next week.
    let next = Math.floor(now / 3600000 + 1) * 3600000;
    while (!this.isOpen(new Date(next)) && next - now < 8 * 86400000) next += 3600000;
    const when = new Date(next);
    return {
      tag: 'deny',
      val: {
        reason: `${call.tool} is only available during business hours (${cfg.open}:00-${cfg.close}:00); ` +
          `it opens again ${DAY_NAMES[when.getUTCDay()]} at ${when.getUTCHours()}:00`,
        code: 'outside_business_hours',
        retryAfterMs: BigInt(Math.max(0, next - now)),
      },
    };
  }

  checkResult(call, toolResult) {
    return { tag: 'pass' };
  }

  visible(tool, caller) {
    return true;
  }
}

export const rules = { Rule };

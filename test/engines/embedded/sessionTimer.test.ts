// The session timer of the embedded engine (RFC 4028): the Session-Expires and
// Min-SE grammar against hostile values, and the timer's refresh/expiry times.
import t, { type Test } from 'tap';
import { MAX_SESSION_EXPIRES_SECONDS, MIN_SE_SECONDS, parseMinSe, parseSessionExpires } from '../../../lib/engines/sessionExpires.js';
import { SessionTimer, expiryMs } from '../../../lib/engines/embedded/SessionTimer.js';

t.test('Session-Expires: the RFC 4028 §4 grammar', async (tt) => {
  tt.same(parseSessionExpires('90;refresher=uas'), { seconds: 90, refresher: 'uas' });
  tt.same(parseSessionExpires(' 1800 ; refresher = UAC '), { seconds: 1800, refresher: 'uac' }, 'spaces around ; and = (SWS), any case');
  tt.same(parseSessionExpires('3600'), { seconds: 3600, refresher: undefined }, 'no refresher');
  tt.same(parseSessionExpires('120;x-foo=bar;flag;refresher=uac'), { seconds: 120, refresher: 'uac' }, 'generic params ignored');
  tt.equal(parseSessionExpires(undefined), undefined, 'absent');
  tt.same(parseSessionExpires('30'), { seconds: 30, refresher: undefined }, 'small values parse (the caller answers 422)');
  for (const bad of ['', 'soon', '-90', '90.5', '0', '0x5a', '90;refresher=whoever', '90;refresher=uac;refresher=uas', '90,120', '12345678901', '99999999999999999999',
    '90;refresher', '90;=x', `90;${'a'.repeat(300)}`, '90\r\nX-Injected: 1', '90;a="unterminated']) {
    tt.equal(parseSessionExpires(bad), 'invalid', `invalid: ${JSON.stringify(bad.slice(0, 40))}`);
  }
  tt.equal(parseSessionExpires(90), 'invalid', 'a non-string (a parser object) is invalid, not a throw');
  tt.equal(parseSessionExpires(['90']), 'invalid');
});

t.test('Min-SE: delta-seconds and generic params only', async (tt) => {
  tt.equal(parseMinSe('90'), 90);
  tt.equal(parseMinSe('120;foo=bar'), 120);
  tt.equal(parseMinSe(undefined), undefined);
  for (const bad of ['', 'ninety', '90,100', '0', '90;', '-1']) tt.equal(parseMinSe(bad), 'invalid', `invalid: ${JSON.stringify(bad)}`);
});

t.test('expiry slack: min(32 s, interval/3) before the end (RFC 4028 §10)', async (tt) => {
  tt.equal(expiryMs(90), 60_000);
  tt.equal(expiryMs(1800), 1_768_000);
  tt.equal(expiryMs(60), 40_000);
});

t.test('SessionTimer: we refresh at half the interval, they must refresh before the slack', async (tt) => {
  const clock = installFakeTimers();
  try {
    runTimer(tt, clock);
  } finally {
    clock.uninstall();
  }
});

function runTimer(tt: Test, clock: FakeClock): void {
  const fired: string[] = [];
  const timer = new SessionTimer(() => fired.push('refresh'), () => fired.push('expired'));
  timer.arm(90, 'we');
  tt.same(timer.state, { kind: 'we_refresh', seconds: 90 });
  clock.tick(44_999);
  tt.same(fired, []);
  clock.tick(1);
  tt.same(fired, ['refresh'], 'refresh at 45 s');
  timer.arm(90, 'they'); // the 2xx to our refresh made the far end the refresher
  clock.tick(59_999);
  tt.same(fired, ['refresh']);
  clock.tick(1);
  tt.same(fired, ['refresh', 'expired'], 'expired at 60 s without their refresh');
  tt.same(timer.state, { kind: 'off' });

  timer.arm(10, 'they');
  tt.same(timer.state, { kind: 'they_refresh', seconds: MIN_SE_SECONDS }, 'below Min-SE is raised to it');
  timer.arm(10 ** 9, 'we');
  tt.same(timer.state, { kind: 'we_refresh', seconds: MAX_SESSION_EXPIRES_SECONDS }, 'above the maximum is cut to it');
  timer.stop();
  clock.tick(10 ** 8);
  tt.same(fired, ['refresh', 'expired'], 'nothing after stop()');
}

interface FakeClock {
  tick(ms: number): void;
  uninstall(): void;
}

/** A minimal fake clock for setTimeout/clearTimeout (the timer uses nothing else). */
function installFakeTimers(): FakeClock {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  globalThis.setTimeout = ((fn: () => void, ms: number) => {
    const id = ++seq;
    pending.set(id, { at: now + ms, fn });
    return id as unknown as NodeJS.Timeout;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id: unknown) => {
    if (typeof id === 'number') pending.delete(id);
  }) as typeof clearTimeout;
  return {
    tick(ms: number) {
      const end = now + ms;
      for (;;) {
        const next = [...pending.entries()].filter(([, p]) => p.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!next) break;
        pending.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
    },
    uninstall() {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    },
  };
}

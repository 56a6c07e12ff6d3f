import t from 'tap';
import { codeForSipStatus, droppedByFor, errorForEndedCall, errorForFailedLeg } from '../../lib/resources/releaseError.js';

t.test('SIP final statuses map to stable error codes', async (t) => {
  const table: Record<number, string> = {
    400: 'rejected', 401: 'rejected', 403: 'rejected', 404: 'unreachable', 407: 'rejected', 408: 'timeout',
    410: 'unreachable', 480: 'no_answer', 484: 'unreachable', 486: 'busy', 487: 'no_answer', 488: 'rejected',
    500: 'unreachable', 502: 'unreachable', 503: 'unreachable', 504: 'unreachable', 600: 'busy', 603: 'rejected',
    604: 'unreachable', 606: 'rejected',
  };
  for (const [status, code] of Object.entries(table)) t.equal(codeForSipStatus(Number(status)), code, `${status}`);
});

t.test('leg ends become release errors', async (t) => {
  t.same(errorForFailedLeg({ by: 'remote', sipStatus: 486, reason: '486 Busy Here' }, 2), {
    code: 'busy', message: 'party 2: 486 Busy Here', sip_status: 486, party: 2,
  });
  t.same(errorForFailedLeg({ by: 'remote', reason: 'BYE before answer' }, 2), {
    code: 'rejected', message: 'party 2: BYE before answer', party: 2,
  }, 'a callee BYE on an early dialog is the callee refusing, not an engine error');
  t.same(errorForFailedLeg({ by: 'engine', reason: 'FreeSWITCH lost' }), { code: 'engine_error', message: 'FreeSWITCH lost' });
  t.same(errorForFailedLeg({ by: 'engine', reason: 'no usable media in the answer', farEndFault: 'rejected' }, 1), {
    code: 'rejected', message: 'party 1: no usable media in the answer', party: 1,
  }, 'an answer we had to hang up is the far end refusing, not an engine error');
  t.equal(droppedByFor({ by: 'engine', reason: '', farEndFault: 'rejected' }), 'sys', 'our BYE ended it');
  const expired = { by: 'engine', reason: 'session timer expired: the far end did not refresh the session (RFC 4028)', farEndFault: 'timeout' } as const;
  t.same(errorForEndedCall(expired, 2), { code: 'timeout', message: `party 2: ${expired.reason}`, party: 2 }, 'a far end that stopped refreshing: timeout, not engine_error');
  t.equal(droppedByFor(expired), 'sys', 'our BYE ended it');
  t.equal(errorForEndedCall({ by: 'remote', reason: 'BYE' }), null, 'a hang-up is a normal end');
  t.match(errorForEndedCall({ by: 'engine', reason: 'media timeout' }, 1), { code: 'engine_error', party: 1 });
  t.equal(droppedByFor({ by: 'remote', reason: '' }), 'usr');
  t.equal(droppedByFor({ by: 'local', reason: '' }), 'sys');
  t.equal(droppedByFor({ by: 'engine', reason: '' }), 'sys');
});

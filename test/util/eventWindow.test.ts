import t from 'tap';
import { EventWindow } from '../../lib/util/EventWindow.js';

t.test('counts events of the last window and says when n more fit under a limit', async (t) => {
  const w = new EventWindow(1000);
  t.equal(w.count(0), 0);
  t.equal(w.msUntilRoom(0, 2, 2), 0, 'empty: two fit at once');
  w.record(0, 2);
  w.record(300);
  t.equal(w.count(500), 3);
  t.equal(w.msUntilRoom(500, 1, 4), 0, 'room for one more under 4');
  t.equal(w.msUntilRoom(500, 2, 4), 500, 'two more need one of those at 0 ms to leave: at 1000');
  t.equal(w.msUntilRoom(500, 3, 4), 500, 'three more need both at 0 ms to leave: still at 1000');
  t.equal(w.msUntilRoom(500, 4, 4), 800, 'four more need the one at 300 ms to leave too: at 1300');
  t.equal(w.msUntilRoom(500, 5, 4), 1000, 'more than the limit never fits: a whole window (the caller refuses)');
  t.equal(w.count(1000), 1, 'events exactly one window old have left');
  t.equal(w.count(1300), 0);
});

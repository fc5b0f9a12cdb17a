/**
 * The delivery worker's schedule (src/smtp/delivery/delivery-schedule.ts) against a plain model of it: what is due
 * comes out oldest first per mailbox, what expires comes out on time, parked and held messages come back, and
 * nothing is lost or handed out twice, whatever the order of commits, rescans, sends and finishes.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import type { MessageStatus, SpooledEnvelope } from '../../../src/smtp/spool/envelope.js';
import { DeliverySchedule } from '../../../src/smtp/delivery/delivery-schedule.js';
import { MinHeap } from '../../../src/smtp/delivery/min-heap.js';

const BASE = Date.UTC(2026, 0, 1);
const iso = (offset: number) => new Date(BASE + offset).toISOString();
const idOf = (n: number) => `m${String(n).padStart(3, '0')}`;
/** Two accounts share the mailbox k1: pacing is per mailbox, holding per account. */
const keyOf = (account: string) => (account === 'a2' ? 'k1' : `k${account.slice(1)}`);

function envelope(n: number, account: string, status: MessageStatus, due: number, since: number): SpooledEnvelope {
  return {
    id: idOf(n), device: 'floor2-mfp', account, mailFrom: 'scanner@contoso.example', rcptTo: ['alice@contoso.example'], receivedAt: iso(since),
    remoteAddress: '192.168.10.50', size: 100, smtpUtf8: false,
    state: { status, attempts: 0, nextAttemptAt: iso(due), lastReply: null, lastReason: null, lastCode: null, updatedAt: iso(since), since: iso(since) },
  };
}

test('MinHeap pops in order whatever the pushes, and compact keeps only what it is told to', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -1000, max: 1000 })), fc.integer({ min: 2, max: 7 }), (values, drop) => {
      const heap = new MinHeap<number>((a, b) => a < b);
      for (const v of values) heap.push(v);
      heap.compact((v) => v % drop !== 0);
      const popped: number[] = [];
      for (let v = heap.pop(); v !== undefined; v = heap.pop()) popped.push(v);
      assert.deepEqual(popped, values.filter((v) => v % drop !== 0).sort((a, b) => a - b));
    }),
  );
});

test('a mailbox with no free slot keeps its due messages parked; they come back oldest first, a retried one at its new time', () => {
  const schedule = new DeliverySchedule(72 * 3_600_000);
  for (const n of [3, 1, 2]) schedule.set(envelope(n, 'a0', 'queued', 0, 0), 'k0');
  schedule.set(envelope(4, 'a0', 'deferred', 500, 0), 'k0');
  assert.deepEqual([...schedule.advance(BASE + 10)], ['k0']);
  assert.equal(schedule.takeParked('k0')?.id, 'm001'); // one slot: the oldest goes
  assert.ok(schedule.hasParked('k0'));
  assert.deepEqual([...schedule.advance(BASE + 20)], [], 'parked messages are not handed out again by a later event');
  assert.equal(schedule.nextWakeAt(), BASE + 500);
  schedule.set(envelope(1, 'a0', 'deferred', 300, 0), 'k0'); // its outcome: deferred to t+300
  schedule.finish('m001');
  assert.deepEqual([schedule.takeParked('k0')?.id, schedule.takeParked('k0')?.id, schedule.takeParked('k0')], ['m002', 'm003', null]);
  assert.equal(schedule.nextWakeAt(), BASE + 300);
  assert.deepEqual([...schedule.advance(BASE + 600)], ['k0']);
  assert.deepEqual([schedule.takeParked('k0')?.id, schedule.takeParked('k0')?.id], ['m001', 'm004']);
});

test('a message rescheduled thousands of times (stale heap nodes compacted) still comes out once, at its last due time', () => {
  const schedule = new DeliverySchedule(72 * 3_600_000);
  for (let i = 0; i < 5000; i += 1) {
    schedule.set(envelope(1, 'a0', 'deferred', 5000 - i, 0), 'k0');
    schedule.set(envelope(2, 'a1', i % 2 ? 'held' : 'queued', 0, 0), 'k1');
    if (i % 3 === 0) schedule.advance(BASE + 1); // parks m002 now and then: the parked heap gets stale nodes too
  }
  assert.equal(schedule.nextWakeAt(), BASE + 1);
  assert.deepEqual([...schedule.advance(BASE + 1)], ['k0']);
  assert.deepEqual([schedule.takeParked('k0')?.id, schedule.takeParked('k0'), schedule.takeParked('k1')], ['m001', null, null]);
  assert.deepEqual(schedule.heldOf('a1').map((e) => e.id), ['m002']);
  assert.equal(schedule.nextWakeAt(), BASE + 72 * 3_600_000);
});

type Op =
  | { t: 'set'; n: number; account: string; status: MessageStatus; due: number; since: number }
  | { t: 'delete'; n: number }
  | { t: 'tick'; by: number }
  | { t: 'take'; key: string }
  | { t: 'finish'; n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('set' as const),
      n: fc.integer({ min: 0, max: 14 }),
      account: fc.constantFrom('a0', 'a1', 'a2'),
      status: fc.constantFrom<MessageStatus>('queued', 'deferred', 'held', 'dead'),
      due: fc.integer({ min: 0, max: 250 }),
      since: fc.integer({ min: -200, max: 200 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delete' as const), n: fc.integer({ min: 0, max: 14 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('tick' as const), by: fc.integer({ min: 0, max: 60 }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('take' as const), key: fc.constantFrom('k0', 'k1') }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('finish' as const), n: fc.integer({ min: 0, max: 14 }) }) },
);

interface Modelled {
  env: SpooledEnvelope;
  key: string;
  place: 'waiting' | 'parked' | 'held' | null;
}

test('property: due messages come out oldest first per mailbox, expiries on time, nothing lost or duplicated, parked and held ones come back', () => {
  const maxAgeMs = 300;
  fc.assert(
    fc.property(fc.array(op, { minLength: 20, maxLength: 200, size: 'max' }), (ops) => {
      const schedule = new DeliverySchedule(maxAgeMs);
      const entries = new Map<string, Modelled>();
      const running = new Set<string>();
      let now = BASE;
      const due = (m: Modelled) => Date.parse(m.env.state.nextAttemptAt);
      const expiresAt = (m: Modelled) => Date.parse(m.env.state.since) + maxAgeMs;
      const placeOf = (env: SpooledEnvelope) => (env.state.status === 'held' ? 'held' : 'waiting');
      const begin = (id: string) => {
        assert.ok(!running.has(id), `${id} handed out twice`);
        running.add(id);
        entries.get(id)!.place = null;
      };

      for (const o of ops) {
        if (o.t === 'set') {
          const env = envelope(o.n, o.account, o.status, o.due, o.since);
          schedule.set(env, keyOf(o.account));
          if (o.status === 'dead') entries.delete(env.id);
          else entries.set(env.id, { env, key: keyOf(o.account), place: running.has(env.id) ? null : placeOf(env) });
        } else if (o.t === 'delete') {
          schedule.delete(idOf(o.n));
          entries.delete(idOf(o.n));
        } else if (o.t === 'finish') {
          schedule.finish(idOf(o.n));
          const m = entries.get(idOf(o.n));
          if (running.delete(idOf(o.n)) && m) m.place = placeOf(m.env);
        } else if (o.t === 'tick') {
          now += o.by;
          const expired = schedule.takeExpired(now);
          const expected = [...entries.entries()].filter(([, m]) => m.place !== null && expiresAt(m) <= now).map(([id]) => id);
          assert.deepEqual(expired.map((e) => e.id).sort(), expected.sort(), 'every message past maxAge, and only those, expires');
          const times = expired.map((e) => Date.parse(e.state.since));
          assert.deepEqual(times, [...times].sort((a, b) => a - b), 'expiries come out in time order');
          for (const e of expired) begin(e.id);
          const keys = schedule.advance(now);
          const moved = [...entries.values()].filter((m) => m.place === 'waiting' && due(m) <= now);
          for (const m of moved) m.place = 'parked';
          assert.deepEqual([...keys].sort(), [...new Set(moved.map((m) => m.key))].sort());
        } else {
          const parked = [...entries.entries()].filter(([, m]) => m.place === 'parked' && m.key === o.key).map(([id]) => id).sort();
          assert.equal(schedule.hasParked(o.key), parked.length > 0);
          const taken = schedule.takeParked(o.key);
          assert.equal(taken?.id ?? null, parked[0] ?? null, 'the oldest due message of the mailbox goes first');
          if (taken) {
            assert.ok(Date.parse(taken.state.nextAttemptAt) <= now, 'only due messages go');
            begin(taken.id);
          }
        }
        // The one timer: the earliest due time of a waiting message or expiry of any message not in flight.
        const placed = [...entries.values()].filter((m) => m.place !== null);
        const wake = Math.min(...placed.filter((m) => m.place === 'waiting').map(due), ...placed.map(expiresAt));
        assert.equal(schedule.nextWakeAt(), wake);
        for (const account of ['a0', 'a1', 'a2']) {
          const held = placed.filter((m) => m.place === 'held' && m.env.account === account).map((m) => m.env.id);
          assert.deepEqual(schedule.heldOf(account).map((e) => e.id).sort(), held.sort());
        }
        assert.equal(schedule.size, entries.size);
      }

      // Nothing lost: once everything in flight finishes and time passes, every message comes out exactly once.
      for (const id of [...running]) {
        schedule.finish(id);
        running.delete(id);
        const m = entries.get(id);
        if (m) m.place = placeOf(m.env);
      }
      const out = schedule.takeExpired(now + 10_000).map((e) => e.id);
      assert.deepEqual(out.sort(), [...entries.keys()].sort());
      assert.equal(schedule.nextWakeAt(), Infinity);
    }),
    { numRuns: 300 },
  );
});

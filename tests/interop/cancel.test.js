// cancel.test.js - long queries and slow clients: a DoGet cancelled by the
// client (the query stops using the CPU and the server answers the next
// query at once), the CancelFlightInfo action for a query being streamed
// (its DoGet ends with CANCELLED) or not yet redeemed, the deprecated
// CancelQuery, and a client that stops reading (flow control holds the
// server back).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { arrow, grpc, encode, decode, packAny, unpackAny, tableRows, describeError } = require('./flightsql.js');
const { rejectsWith, serverSuite } = require('./harness.js');

const s = serverSuite();
const LONG = 'SELECT sum(i) AS total FROM range(1000000000000) t(i)';
const F = 'arrow.flight.protocol.';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const cpuOver = (ms) => s.server.cpuOver(ms);

/** A trivial query, answered within `ms`. */
async function answersPromptly(ms = 3000) {
  const t0 = Date.now();
  const r = await s.client.query('SELECT 1 AS one');
  assert.deepEqual(tableRows(r.table), [[1]]);
  assert.ok(Date.now() - t0 < ms, `SELECT 1 took ${Date.now() - t0} ms`);
}

/** Starts the DoGet of `info`; returns {call, done} where done settles
 * with the call's outcome ({err} or {ok}). */
function startDoGet(info) {
  let call = null;
  const done = s.client.serverStream('DoGet', info.endpoint[0].ticket, {}, {
    deadlineMs: 30000,
    onCall: (c) => { call = c; },
  }).then((ok) => ({ ok }), (err) => ({ err }));
  return { call, done };
}

/** Waits until the server is busy running the query (a quarter of a core
 * at least, allowing for other processes on a 2-core machine). */
async function waitBusy() {
  for (let i = 0; i < 30; i++) {
    if (await cpuOver(300) > 0.075) return;
  }
  assert.fail('the long query never kept the server busy');
}

/** Asserts the server goes idle again: under a quarter of a core over 2 s,
 * allowing a second for the query to notice it was interrupted. */
async function waitIdle(what) {
  await sleep(1000);
  const used = await cpuOver(2000);
  assert.ok(used < 0.5, `${what}: the server still used ${used.toFixed(2)} s of CPU in 2 s (the query runs on)`);
}

s.test('a DoGet cancelled by the client: the query stops, the next one is answered at once', async () => {
  for (let round = 0; round < 2; round++) {
    const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LONG });
    const { call, done } = startDoGet(info);
    await waitBusy();
    call.cancel();
    const { err } = await done;
    assert.ok(err, 'the cancelled DoGet does not succeed');
    assert.equal(err.code, grpc.status.CANCELLED, describeError(err));
    await answersPromptly();
    await waitIdle(`cancelled DoGet, round ${round + 1}`);
  }
});

s.test('CancelFlightInfo of a query being streamed: CANCELLED result, its DoGet ends with CANCELLED', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LONG });
  const { done } = startDoGet(info);
  await waitBusy();
  const t0 = Date.now();
  const bodies = await s.client.doAction('CancelFlightInfo', encode(`${F}CancelFlightInfoRequest`, { info }));
  assert.equal(bodies.length, 1, 'one Result');
  const res = decode(`${F}CancelFlightInfoResult`, bodies[0]);
  assert.ok(['CANCEL_STATUS_CANCELLED', 'CANCEL_STATUS_CANCELLING'].includes(res.status),
    `CancelFlightInfoResult.status ${res.status}`);
  const { err } = await done;
  assert.ok(err, 'the DoGet of the cancelled query does not succeed');
  assert.equal(err.code, grpc.status.CANCELLED, describeError(err));
  assert.ok(Date.now() - t0 < 5000, `the DoGet ended ${Date.now() - t0} ms after the cancellation`);
  await answersPromptly();
  await waitIdle('CancelFlightInfo');
});

s.test('CancelFlightInfo before DoGet: the ticket is then refused', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LONG });
  const bodies = await s.client.doAction('CancelFlightInfo', encode(`${F}CancelFlightInfoRequest`, { info }));
  const res = decode(`${F}CancelFlightInfoResult`, bodies[0]);
  assert.equal(res.status, 'CANCEL_STATUS_CANCELLED');
  let err = null;
  try {
    await s.client.doGet(info.endpoint[0].ticket, {}, { deadlineMs: 10000 });
  } catch (e) {
    err = e;
  }
  assert.ok(err && [grpc.status.CANCELLED, grpc.status.NOT_FOUND].includes(err.code),
    `DoGet of a cancelled query: ${err ? describeError(err) : 'it ran'}`);
  await answersPromptly();
});

s.test('CancelFlightInfo of an unknown query or a malformed body', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: 'SELECT 1 AS one' });
  await s.client.doGet(info.endpoint[0].ticket); // redeemed and finished
  let err = null;
  let res = null;
  try {
    res = decode(`${F}CancelFlightInfoResult`,
      (await s.client.doAction('CancelFlightInfo', encode(`${F}CancelFlightInfoRequest`, { info })))[0]);
  } catch (e) {
    err = e;
  }
  assert.ok((err && err.code === grpc.status.NOT_FOUND) || (res && res.status === 'CANCEL_STATUS_NOT_CANCELLABLE'),
    `cancelling a finished query: ${err ? describeError(err) : JSON.stringify(res)}`);
  await rejectsWith(s.client.doAction('CancelFlightInfo', Buffer.from('garbage body')), grpc.status.INVALID_ARGUMENT);
});

s.test('the deprecated CancelQuery action cancels too', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LONG });
  const { done } = startDoGet(info);
  await waitBusy();
  const body = packAny('ActionCancelQueryRequest', { info: encode(`${F}FlightInfo`, info) });
  const bodies = await s.client.doAction('CancelQuery', body);
  assert.equal(bodies.length, 1);
  const res = unpackAny('ActionCancelQueryResult', bodies[0]);
  assert.ok(['CANCEL_RESULT_CANCELLED', 'CANCEL_RESULT_CANCELLING'].includes(res.result), `result ${res.result}`);
  const { err } = await done;
  assert.ok(err && err.code === grpc.status.CANCELLED, err ? describeError(err) : 'the DoGet succeeded');
  await answersPromptly();
});

s.test('a slow reader: the server holds back (bounded memory, no CPU) and then sends every row', async () => {
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${s.server.proc.pid}/status`, 'utf8'))[1]) * 1024;
  const n = 2000000; // about 220 MB of Arrow data
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery',
    { query: `SELECT i, repeat('x', 100) AS s FROM range(${n}) t(i)` });
  const before = rss();
  const call = s.client.raw.DoGet(info.endpoint[0].ticket, s.client.md(), { deadline: Date.now() + 60000 });
  let rows = 0;
  let messages = 0;
  const done = new Promise((resolve, reject) => {
    call.on('data', (m) => {
      messages++;
      const msg = arrow.Message.decode(m.data_header);
      if (msg.isRecordBatch()) rows += Number(msg.header().length);
      if (messages === 2) call.pause();
    });
    call.on('error', reject);
    call.on('end', resolve);
  });
  await sleep(1000);
  const held = messages;
  const cpu = await cpuOver(2000);
  const grown = rss() - before;
  assert.ok(messages <= held + 1, `the client read nothing, yet ${messages - held} more messages arrived`);
  assert.ok(grown < 100 * 1024 * 1024, `the server grew by ${(grown / 1048576).toFixed(0)} MB while the client did not read`);
  assert.ok(cpu < 0.5, `the server used ${cpu.toFixed(2)} s of CPU in 2 s while the client did not read`);
  call.resume();
  await done;
  assert.equal(rows, n, 'every row arrives once the client reads again');
  await answersPromptly();
});

s.test('SIGTERM during a long query: the DoGet ends and the server exits 0 within 10 s', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LONG });
  const { done } = startDoGet(info);
  await waitBusy();
  const t0 = Date.now();
  const st = await s.server.stop(20000);
  const took = Date.now() - t0;
  assert.deepEqual(st, { code: 0, signal: null }, `server exit: ${JSON.stringify(st)}\n${s.server.log}`);
  assert.ok(took < 10000, `the server took ${took} ms to stop`);
  const { err } = await done;
  assert.ok(err, 'the DoGet of the long query does not succeed');
  assert.ok([grpc.status.UNAVAILABLE, grpc.status.CANCELLED].includes(err.code), describeError(err));
});

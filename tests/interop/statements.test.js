// statements.test.js - ad hoc queries (CommandStatementQuery): FlightInfo
// and GetSchema, the DoGet stream rebuilt into Arrow IPC and compared value
// by value with `tracelake sql` over the same lake, the query_range_* and
// limit headers, and a result far over gRPC's 4 MiB message limit.
'use strict';

const assert = require('node:assert/strict');
const { FlightSqlClient, decodeIpcSchema, describeSchema, tableRows, exactValue, cmdDescriptor, packAny, grpc } = require('./flightsql.js');
const { DEMO_TARGET, exactSql, sqlRows, rfc3339, rejectsWith, sorted, serverSuite } = require('./harness.js');

const s = serverSuite({ demo: true });

const LOGS = `SELECT time, level, target, msg FROM log_entries WHERE target = '${DEMO_TARGET}' ORDER BY time, msg`;
const TS_NS_UTC = 'Timestamp<NANOSECOND, +00:00>';

/** Runs `sql` over Flight SQL and through `tracelake sql`; checks the rows
 * are the same values. Returns the Flight result. */
async function sameAsSqlCommand(sql, headers, range) {
  const r = await s.client.query(sql, headers);
  const expected = sqlRows(await s.server.sql(exactSql(sql, r.table.schema), range), r.table.schema);
  const got = tableRows(r.table);
  assert.equal(got.length, expected.length, `row count over Flight SQL vs tracelake sql for ${sql}`);
  assert.deepEqual(sorted(got), sorted(expected), `values over Flight SQL vs tracelake sql for ${sql}`);
  return r;
}

function fieldTypes(schema) {
  return Object.fromEntries(schema.fields.map((f) => [f.name, String(f.type)]));
}

function nonDecreasing(values, what) {
  for (let i = 1; i < values.length; i++) {
    assert.ok(BigInt(values[i - 1]) <= BigInt(values[i]), `${what} not ordered at row ${i}: ${values[i - 1]} > ${values[i]}`);
  }
}

s.test('GetFlightInfo: schema, one endpoint with a ticket and no location, unknown totals', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LOGS });
  const schema = decodeIpcSchema(info.schema);
  assert.deepEqual(schema.fields.map((f) => f.name), ['time', 'level', 'target', 'msg']);
  assert.deepEqual(fieldTypes(schema), { time: TS_NS_UTC, level: 'Int32', target: 'Utf8', msg: 'Utf8' },
    describeSchema(schema));
  assert.equal(info.endpoint.length, 1, 'one endpoint');
  const ep = info.endpoint[0];
  assert.ok(ep.ticket && ep.ticket.ticket.length > 0, 'the endpoint has a ticket');
  assert.deepEqual(ep.location, [], 'no location: the ticket is redeemed on this service');
  assert.equal(info.total_records, '-1');
  assert.equal(info.total_bytes, '-1');
});

s.test('DoGet: the stream schema is the FlightInfo schema; log rows equal tracelake sql', async () => {
  const r = await sameAsSqlCommand(LOGS);
  assert.equal(describeSchema(r.table.schema), describeSchema(r.schema), 'DoGet schema vs FlightInfo schema');
  // The demo at TRACELAKE_LEVEL=debug, 300 jobs on 2 threads: a warning per
  // 100 jobs, a debug entry for the others, and 6 info entries.
  const byLevel = {};
  for (const [, level] of tableRows(r.table)) byLevel[level] = (byLevel[level] || 0) + 1;
  assert.deepEqual(byLevel, { 3: 3, 4: 6, 5: 297 }, 'log entries by level');
  nonDecreasing(tableRows(r.table).map((row) => row[0]), 'time');
  const msgs = tableRows(r.table).map((row) => row[3]);
  assert.ok(msgs.includes('demo starting') && msgs.includes('demo finished'), 'the demo\'s info messages');
  assert.equal(msgs.filter((m) => /^job (0|100|200) took the slow path \(hash [0-9a-f]{8}\)$/.test(m)).length, 3,
    'the warnings of jobs 0, 100 and 200');
});

s.test('DoGet: metrics (doubles, text) equal tracelake sql', async () => {
  const sql = `SELECT time, name, unit, value FROM measures WHERE target = '${DEMO_TARGET}' ORDER BY time, name, value`;
  const r = await sameAsSqlCommand(sql);
  assert.deepEqual(fieldTypes(r.table.schema), { time: TS_NS_UTC, name: 'Utf8', unit: 'Utf8', value: 'Float64' });
  assert.equal(r.table.numRows, 3 * 300 + 1, 'job_payload, job_score and queue_depth per job, demo_duration');
});

s.test('DoGet: processes and spans (64-bit integers, timestamps) equal tracelake sql', async () => {
  const [{ pid }] = await s.server.sql(`SELECT DISTINCT process_id AS pid FROM log_entries WHERE target = '${DEMO_TARGET}'`);
  const proc = await sameAsSqlCommand(
    `SELECT process_id, exe, tsc_frequency, start_time, start_ticks, insert_time FROM processes WHERE process_id = '${pid}'`);
  assert.equal(proc.table.numRows, 1);
  assert.deepEqual(fieldTypes(proc.table.schema), {
    process_id: 'Utf8', exe: 'Utf8', tsc_frequency: 'Int64', start_time: TS_NS_UTC,
    start_ticks: 'Int64', insert_time: TS_NS_UTC,
  });
  const async = await sameAsSqlCommand(
    `SELECT time, event_type, span_id, parent_span_id, depth, name FROM view_instance('async_events', '${pid}') ORDER BY time, span_id, event_type`);
  assert.equal(async.table.numRows, 4 * 300, 'begin and end of job and job_work per job');
  const streams = await s.server.sql(`SELECT stream_id FROM streams WHERE process_id = '${pid}' AND list_contains(tags, 'cpu') ORDER BY stream_id`);
  assert.ok(streams.length >= 1, 'the demo has cpu streams');
  let spans = 0;
  for (const { stream_id: sid } of streams) {
    const r = await sameAsSqlCommand(
      `SELECT id, parent, depth, "begin", "end", duration, name, target, line FROM view_instance('thread_spans', '${sid}') ORDER BY "begin", id`);
    spans += tableRows(r.table).filter((row) => row[6] === 'handle_job').length;
  }
  assert.equal(spans, 300, 'one handle_job span per job');
});

s.test('DoGet: SQL literals keep their exact values and types', async () => {
  const sql = "SELECT TIMESTAMP_NS '2026-01-02 03:04:05.123456789' AS t, 42::INTEGER AS i, "
    + "-9007199254740993::BIGINT AS big, 'h\u00e9llo \"w\" \\ ' AS s, NULL::VARCHAR AS n, 0.1::DOUBLE AS d, true AS b";
  const r = await sameAsSqlCommand(sql);
  assert.deepEqual(fieldTypes(r.table.schema),
    { t: TS_NS_UTC, i: 'Int32', big: 'Int64', s: 'Utf8', n: 'Utf8', d: 'Float64', b: 'Bool' });
  assert.deepEqual(tableRows(r.table), [[
    String(BigInt(Date.UTC(2026, 0, 2, 3, 4, 5)) * 1000000n + 123456789n),
    42, '-9007199254740993', 'h\u00e9llo "w" \\ ', null, 0.1, true]]);
});

s.test('DoGet: an empty result still has its schema', async () => {
  const r = await sameAsSqlCommand(`${LOGS.replace('ORDER BY', "AND msg = 'no such message' ORDER BY")}`);
  assert.equal(r.table.numRows, 0);
  assert.deepEqual(r.table.schema.fields.map((f) => f.name), ['time', 'level', 'target', 'msg']);
});

s.test('GetSchema: the statement\'s schema without running it', async () => {
  const res = await s.client.getSchemaCmd('CommandStatementQuery', { query: LOGS });
  const schema = decodeIpcSchema(res.schema);
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LOGS });
  assert.equal(describeSchema(schema), describeSchema(decodeIpcSchema(info.schema)));
  assert.deepEqual(fieldTypes(schema), { time: TS_NS_UTC, level: 'Int32', target: 'Utf8', msg: 'Utf8' });
  const big = await s.client.getSchemaCmd('CommandStatementQuery',
    { query: 'SELECT count(*) AS n FROM range(1000000000000)' });
  assert.deepEqual(fieldTypes(decodeIpcSchema(big.schema)), { n: 'Int64' });
});

s.test('headers query_range_begin / query_range_end restrict the rows like tracelake sql --begin/--end', async () => {
  const all = tableRows((await s.client.query(LOGS)).table);
  const times = all.map((row) => row[0]);
  const begin = rfc3339(times[Math.floor(times.length / 4)]);
  const end = rfc3339(times[Math.floor((3 * times.length) / 4)]);
  const count = `SELECT count(*) AS n FROM log_entries WHERE target = '${DEMO_TARGET}'`;
  const cases = [
    [{ query_range_begin: begin }, { begin }],
    [{ query_range_end: end }, { end }],
    [{ query_range_begin: begin, query_range_end: end }, { begin, end }],
  ];
  for (const [headers, range] of cases) {
    const r = await s.client.query(count, headers);
    const [[n]] = tableRows(r.table);
    const [{ n: want }] = await s.server.sql(exactSql(count, r.table.schema), range);
    assert.equal(n, want, `count with ${JSON.stringify(headers)} vs tracelake sql ${JSON.stringify(range)}`);
    assert.ok(BigInt(n) > 0n && BigInt(n) < BigInt(all.length), `${JSON.stringify(headers)} keeps ${n} of ${all.length}`);
    const rows = await sameAsSqlCommand(LOGS, headers, range);
    assert.equal(BigInt(rows.table.numRows), BigInt(n));
    for (const row of tableRows(rows.table)) {
      const t = BigInt(row[0]);
      if (headers.query_range_begin) assert.ok(t >= BigInt(times[Math.floor(times.length / 4)]), `row at ${t} before begin`);
      if (headers.query_range_end) assert.ok(t < BigInt(times[Math.floor((3 * times.length) / 4)]), `row at ${t} not before end`);
    }
  }
  // An offset other than Z names the same instant.
  const beginNs = BigInt(times[Math.floor(times.length / 4)]);
  const plus1 = rfc3339(beginNs + 3600000000000n).replace('Z', '+01:00');
  const r = await s.client.query(count, { query_range_begin: plus1 });
  const [[n]] = tableRows(r.table);
  const [{ n: want }] = await s.server.sql(exactSql(count, r.table.schema), { begin });
  assert.equal(n, want, `query_range_begin ${plus1} is ${begin}`);
});

s.test('header limit caps the rows', async () => {
  const all = tableRows((await s.client.query(LOGS)).table);
  const five = await s.client.query(LOGS, { limit: '5' });
  assert.equal(five.table.numRows, 5);
  assert.deepEqual(tableRows(five.table).map((row) => row[0]), all.slice(0, 5).map((row) => row[0]),
    'the first 5 rows of the ordered result');
  assert.equal((await s.client.query(LOGS, { limit: '0' })).table.numRows, 0, 'limit 0');
  assert.equal((await s.client.query(LOGS, { limit: '100000' })).table.numRows, all.length, 'a limit over the row count');
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: LOGS }, { limit: '7' });
  assert.equal((await s.client.doGet(info.endpoint[0].ticket)).table.numRows, 7,
    'the limit given to GetFlightInfo holds for the ticket');
});

s.test('malformed headers are INVALID_ARGUMENT naming the header', async () => {
  const I = grpc.status.INVALID_ARGUMENT;
  await rejectsWith(s.client.query(LOGS, { query_range_begin: 'yesterday' }), I, /query_range_begin/);
  await rejectsWith(s.client.query(LOGS, { query_range_end: '2026-13-01T00:00:00Z' }), I, /query_range_end/);
  await rejectsWith(s.client.query(LOGS, { query_range_begin: '2026-01-02T00:00:00' }), I, /query_range_begin/);
  await rejectsWith(s.client.query(LOGS, { limit: 'ten' }), I, /limit/);
  await rejectsWith(s.client.query(LOGS, { limit: '-1' }), I, /limit/);
  await rejectsWith(s.client.query(LOGS,
    { query_range_begin: '2026-01-02T00:00:00Z', query_range_end: '2026-01-01T00:00:00Z' }), I, /query_range/);
  assert.equal((await s.client.query('SELECT 1 AS one')).table.numRows, 1, 'still serving');
});

s.test('a result over 4 MiB arrives whole, in FlightData messages under 4 MiB', async () => {
  const n = 200000;
  const r = await s.client.query(`SELECT i, repeat('x', 100) AS s FROM range(${n}) t(i) ORDER BY i`);
  assert.deepEqual(fieldTypes(r.table.schema), { i: 'Int64', s: 'Utf8' });
  assert.equal(r.table.numRows, n);
  const limit = 4 * 1024 * 1024;
  let total = 0;
  for (const [k, m] of r.messages.entries()) {
    assert.ok(m.wireSize < limit, `FlightData #${k} is ${m.wireSize} bytes, not under 4 MiB`);
    total += m.wireSize;
  }
  assert.ok(total > 20 * 1024 * 1024, `${total} bytes in all`);
  assert.ok(r.messages.length >= 7, `${r.messages.length} messages`);
  const ids = r.table.getChild('i').toArray();
  const x100 = 'x'.repeat(100);
  const strs = r.table.getChild('s');
  for (let k = 0; k < n; k++) {
    if (ids[k] !== BigInt(k)) assert.fail(`row ${k}: i = ${ids[k]}`);
    if (k % 997 === 0 || k === n - 1) assert.equal(strs.get(k), x100, `row ${k}: s`);
  }
  let bytes = 0;
  for (const d of strs.data) bytes += d.valueOffsets[d.length] - d.valueOffsets[0];
  assert.equal(bytes, 100 * n, 'every s has 100 characters');
});

s.test('the same ticket cannot be redeemed twice, or is redeemed with the same rows', async () => {
  const info = await s.client.getFlightInfoCmd('CommandStatementQuery', { query: 'SELECT 7 AS seven' });
  const first = await s.client.doGet(info.endpoint[0].ticket);
  assert.deepEqual(tableRows(first.table), [[7]]);
  try {
    const again = await s.client.doGet(info.endpoint[0].ticket);
    assert.deepEqual(tableRows(again.table), [[7]], 'a second DoGet, if allowed, gives the same rows');
  } catch (e) {
    assert.ok([grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT, grpc.status.FAILED_PRECONDITION].includes(e.code),
      `a redeemed ticket: ${e.message}`);
  }
});

s.test('DoGet: nested columns of the lake (lists, key/value lists) equal tracelake sql\'s JSON', async () => {
  const [{ pid }] = await s.server.sql(`SELECT DISTINCT process_id AS pid FROM log_entries WHERE target = '${DEMO_TARGET}'`);
  const sql = `SELECT stream_id, tags, properties FROM streams WHERE process_id = '${pid}' ORDER BY stream_id`;
  const r = await s.client.query(sql);
  assert.ok(r.table.numRows >= 2, 'the demo has several streams');
  assert.equal(String(r.table.schema.fields[1].type), 'List<Utf8>');
  const want = await s.server.sql(`SELECT stream_id, CAST(to_json(tags) AS VARCHAR) AS tags, `
    + `CAST(to_json(properties) AS VARCHAR) AS properties FROM (${sql}) AS _q`);
  const got = [];
  for (let i = 0; i < r.table.numRows; i++) {
    got.push({
      stream_id: exactValue(r.table.getChild('stream_id'), i),
      tags: exactValue(r.table.getChild('tags'), i),
      properties: exactValue(r.table.getChild('properties'), i),
    });
  }
  assert.deepEqual(got, want.map((w) => ({ stream_id: w.stream_id, tags: JSON.parse(w.tags),
    properties: Array.isArray(JSON.parse(w.properties)) ? JSON.parse(w.properties)
      : Object.entries(JSON.parse(w.properties)).map(([key, value]) => ({ key, value })) })));
  const procs = await s.client.query(`SELECT properties FROM processes WHERE process_id = '${pid}'`);
  const props = exactValue(procs.table.getChild('properties'), 0);
  const asMap = Array.isArray(props) ? Object.fromEntries(props.map((e) => [e.key, e.value])) : props;
  assert.equal(asMap.app, 'demo', `the demo's process properties: ${JSON.stringify(props)}`);
});

s.test('PollFlightInfo: a complete PollInfo whose ticket works', async () => {
  const poll = await s.client.unary('PollFlightInfo',
    cmdDescriptor(packAny('CommandStatementQuery', { query: 'SELECT 5 AS five' })));
  assert.ok(poll.info, 'PollInfo.info');
  assert.equal(poll.flight_descriptor, null, 'no descriptor to poll again: the query is ready');
  if (poll.progress !== undefined && poll.progress !== null) assert.equal(poll.progress, 1);
  assert.deepEqual(decodeIpcSchema(poll.info.schema).fields.map((f) => f.name), ['five']);
  const got = await s.client.doGet(poll.info.endpoint[0].ticket);
  assert.deepEqual(tableRows(got.table), [[5]]);
});

s.test('concurrent queries on one connection and on several get their own rows', async () => {
  const others = [0, 1].map(() => new FlightSqlClient(s.server.flightAddr));
  try {
    const clients = [s.client, s.client, s.client, ...others, s.client];
    const runs = clients.map((c, k) => c.query(
      `SELECT count(*) AS n, sum(i)::BIGINT AS total, ${k} AS k FROM range(${(k + 1) * 100000}) t(i)`));
    runs.push(s.client.query(LOGS));
    const results = await Promise.all(runs);
    results.slice(0, clients.length).forEach((r, k) => {
      const n = BigInt((k + 1) * 100000);
      assert.deepEqual(tableRows(r.table), [[String(n), String((n * (n - 1n)) / 2n), k]], `query ${k}`);
    });
    assert.equal(results[clients.length].table.numRows, 306);
  } finally {
    for (const c of others) c.close();
  }
});

s.stopTest();

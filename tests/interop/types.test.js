// types.test.js - the Arrow IPC encoding of DuckDB's types as apache-arrow
// decodes them: each SQL literal comes back with a matching Arrow type and
// its exact value (nulls included), nested types too; the FlightInfo schema
// is the stream's; a row too large for one Flight message is refused
// clearly and the server keeps serving.
'use strict';

const assert = require('node:assert/strict');
const { grpc, describeSchema, describeError, exactValue: exact } = require('./flightsql.js');
const { serverSuite } = require('./harness.js');

const s = serverSuite();

/** Runs `sql`; checks the stream schema is the FlightInfo schema; returns
 * {schema, rows (exact values by column name)}. */
async function run(sql) {
  const r = await s.client.query(sql);
  assert.equal(describeSchema(r.table.schema), describeSchema(r.schema), `DoGet vs FlightInfo schema for ${sql}`);
  const rows = [];
  for (let i = 0; i < r.table.numRows; i++) {
    const o = {};
    r.table.schema.fields.forEach((f, j) => { o[f.name] = exact(r.table.getChildAt(j), i); });
    rows.push(o);
  }
  return { schema: r.table.schema, rows };
}

const US = 1767323045123456n; // 2026-01-02T03:04:05.123456Z in microseconds
const CASES = [
  // [SQL expression, Arrow type (regex), exact value]
  ['1::TINYINT', /^Int8$/, 1],
  ['-2::SMALLINT', /^Int16$/, -2],
  ['(-2147483648)::INTEGER', /^Int32$/, -2147483648],
  ['(-9223372036854775808)::BIGINT', /^Int64$/, -9223372036854775808n],
  ['255::UTINYINT', /^Uint8$/, 255],
  ['65535::USMALLINT', /^Uint16$/, 65535],
  ['4294967295::UINTEGER', /^Uint32$/, 4294967295],
  ['18446744073709551615::UBIGINT', /^Uint64$/, 18446744073709551615n],
  ['1.5::FLOAT', /^Float32$/, 1.5],
  ['-0.1::DOUBLE', /^Float64$/, -0.1],
  ['true', /^Bool$/, true],
  ["'caf\u00e9 \u2603 \u{1F600}'", /^Utf8$/, 'caf\u00e9 \u2603 \u{1F600}'],
  ["''", /^Utf8$/, ''],
  ["'\\xAA\\x00\\xBB'::BLOB", /^Binary$/, 'aa00bb'],
  ["DATE '2026-01-02'", /^Date32<DAY>$/, Date.UTC(2026, 0, 2)],
  ["DATE '1969-12-31'", /^Date32<DAY>$/, -86400000],
  ["TIME '01:02:03.000004'", /^Time64<MICROSECOND>$/, 3723000004n],
  ["TIMESTAMP '2026-01-02 03:04:05.123456'", /^Timestamp<MICROSECOND/, US],
  ["TIMESTAMP_MS '2026-01-02 03:04:05.123'", /^Timestamp<MILLISECOND/, US / 1000n],
  ["TIMESTAMP_S '2026-01-02 03:04:05'", /^Timestamp<SECOND/, US / 1000000n],
  ["TIMESTAMP_NS '1960-01-02 03:04:05.123456789'", /^Timestamp<NANOSECOND, \+00:00>$/,
    (BigInt(Date.UTC(1960, 0, 2, 3, 4, 5)) * 1000000n) + 123456789n],
  ["TIMESTAMPTZ '2026-01-02 04:04:05.123456+01'", /^Timestamp<MICROSECOND, (UTC|\+00:00)>$/, US],
  ['12.34::DECIMAL(10,2)', /^Decimal\[10e\+2\]$/, 1234n],
  ['-12345678901234567890.123456::DECIMAL(38,6)', /^Decimal\[38e\+6\]$/, -12345678901234567890123456n],
  ['170141183460469231731687303715884105727::HUGEINT', /^Decimal\[38e\+?0\]$/,
    170141183460469231731687303715884105727n],
  ["INTERVAL '1 month 2 days 3 seconds'", /^Interval<MONTH_DAY_NANO>$/, { months: 1, days: 2, nanos: 3000000000n }],
  ["'6f1e2a3b-0000-4000-8000-000000000001'::UUID", /^(Utf8|FixedSizeBinary\[16\])$/, null],
  ['[1, 2, NULL]', /^List<Int32>$/, [1, 2, null]],
  ["['a', NULL, '']", /^List<Utf8>$/, ['a', null, '']],
  ['[]::INTEGER[]', /^List<Int32>$/, []],
  ["{'a': 1, 'b': 'x', 'c': NULL::DOUBLE}", /^Struct<\{a:Int32, b:Utf8, c:Float64\}>$/, { a: 1, b: 'x', c: null }],
  ["MAP {'k': 1, 'l': 2}", /^Map<\{key:Utf8, value:Int32\}>$/, { k: 1, l: 2 }],
  ["[{'t': [1, 2]}, {'t': []}]", /^List<Struct<\{t:List<Int32>\}>>$/, [{ t: [1, 2] }, { t: [] }]],
  ["'b'::ENUM('a', 'b')", /^Dictionary<Uint8, Utf8>$/, 'b'],
  ['NULL::VARCHAR', /^Utf8$/, null],
];

s.test('each DuckDB type arrives with its Arrow type and exact value', async () => {
  const cols = CASES.map(([expr], i) => `${expr} AS c${i}`).join(', ');
  const { schema, rows } = await run(`SELECT ${cols}`);
  assert.equal(rows.length, 1);
  const problems = [];
  CASES.forEach(([expr, type, want], i) => {
    const f = schema.fields[i];
    if (!type.test(String(f.type))) problems.push(`${expr}: Arrow type ${f.type}, want ${type}`);
    const got = rows[0][`c${i}`];
    if (expr.endsWith('::UUID')) {
      const text = typeof got === 'string' ? got : String(got).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
      if (text !== '6f1e2a3b-0000-4000-8000-000000000001') problems.push(`${expr}: value ${got}`);
      return;
    }
    try {
      assert.deepStrictEqual(got, want);
    } catch (e) {
      problems.push(`${expr}: value ${JSON.stringify(got, (k, v) => (typeof v === 'bigint' ? `${v}n` : v))}, want ${JSON.stringify(want, (k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`);
    }
  });
  assert.deepEqual(problems, [], problems.join('\n'));
});

s.test('nulls, row by row, in every kind of column', async () => {
  const { rows } = await run(`SELECT * FROM (VALUES
    (1, 'a', 1.5::DOUBLE, [1], {'x': 1}, TIMESTAMP_NS '2026-01-01 00:00:00.000000001', true),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 'c', NULL, [NULL], {'x': NULL}, NULL, false)) t(i, s, d, l, st, ts, b) ORDER BY i NULLS FIRST`);
  assert.deepStrictEqual(rows, [
    { i: null, s: null, d: null, l: null, st: null, ts: null, b: null },
    { i: 1, s: 'a', d: 1.5, l: [1], st: { x: 1 }, ts: 1767225600000000001n, b: true },
    { i: 3, s: 'c', d: null, l: [null], st: { x: null }, ts: null, b: false },
  ]);
});

s.test('many columns and many batches of nested values', async () => {
  const cols = Array.from({ length: 300 }, (_, i) => `i + ${i} AS c${i}`).join(', ');
  const wide = await run(`SELECT ${cols} FROM range(3) t(i)`);
  assert.equal(wide.schema.fields.length, 300);
  assert.deepEqual(wide.rows.map((r) => r.c299), [299n, 300n, 301n]);
  const n = 50000;
  const r = await s.client.query(`SELECT i, [i, i + 1] AS l, {'s': i::VARCHAR} AS st FROM range(${n}) t(i) ORDER BY i`);
  assert.equal(r.table.numRows, n);
  for (const k of [0, 1, 2047, 2048, 40000, n - 1]) {
    assert.deepStrictEqual(exact(r.table.getChild('l'), k), [BigInt(k), BigInt(k + 1)], `row ${k}`);
    assert.deepStrictEqual(exact(r.table.getChild('st'), k), { s: String(k) }, `row ${k}`);
  }
});

s.test('one value of 2 MiB arrives whole; a row too large for a Flight message is refused clearly', async () => {
  const { rows } = await run("SELECT repeat('y', 2097152) AS s");
  assert.equal(rows[0].s.length, 2097152);
  assert.ok(/^y+$/.test(rows[0].s));
  let err = null;
  try {
    await s.client.query("SELECT repeat('z', 6000000) AS s");
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'a 6 MB value was sent (over the 4 MiB message limit of gRPC clients?)');
  assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, describeError(err));
  assert.match(err.details, /bytes/);
  const again = await run('SELECT 1 AS one');
  assert.deepEqual(again.rows, [{ one: 1 }], 'still serving');
});

s.stopTest();

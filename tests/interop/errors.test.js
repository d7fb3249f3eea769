// errors.test.js - bad requests get a clear gRPC status and the server keeps
// serving: bad SQL (DuckDB's message and a query id), unknown commands,
// updates on a read-only service, garbage tickets and descriptors, and SQL
// that would reach the server's files.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { grpc, packAny, rawAny, cmdDescriptor, tableRows, describeError } = require('./flightsql.js');
const { rejectsWith, serverSuite } = require('./harness.js');

const s = serverSuite();
const I = grpc.status.INVALID_ARGUMENT;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

async function stillServing() {
  const r = await s.client.query('SELECT 1 AS one');
  assert.deepEqual(tableRows(r.table), [[1]], 'the server still answers');
}

/** The call fails with one of `codes` (any error status when null), its
 * details matching `re`; returns the error. */
async function failsWith(promise, codes, re) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'the call succeeded');
  assert.ok(err.code !== undefined, err.stack);
  if (codes) assert.ok(codes.includes(err.code), `status: ${describeError(err)}`);
  assert.notEqual(err.code, grpc.status.INTERNAL, `INTERNAL: ${describeError(err)}`);
  if (re) assert.match(err.details, re, describeError(err));
  return err;
}

/** The SQL fails somewhere between GetFlightInfo and the end of DoGet;
 * returns the error. */
async function queryFails(sql, code, re) {
  return rejectsWith(s.client.query(sql), code, re);
}

s.test('bad SQL: INVALID_ARGUMENT with DuckDB\'s message and a query id', async () => {
  const e = await queryFails('SELEC 1', I, /syntax error/i);
  assert.match(e.details, UUID, `a query id in '${e.details}'`);
  const e2 = await queryFails('SELECT no_such_column FROM log_entries', I, /no_such_column/);
  assert.match(e2.details, /Binder Error|not found/i, e2.details);
  assert.match(e2.details, UUID, `a query id in '${e2.details}'`);
  await queryFails('SELECT * FROM no_such_table', I, /no_such_table/);
  await queryFails('', I);
  await queryFails('SELECT 1; SELECT 2', I);
  const g = await rejectsWith(s.client.getSchemaCmd('CommandStatementQuery', { query: 'SELEC 1' }), I, /syntax error/i);
  assert.ok(g.details.length < 4096);
  await stillServing();
});

s.test('an unknown command type_url is UNIMPLEMENTED, naming it', async () => {
  const url = 'type.googleapis.com/arrow.flight.protocol.sql.CommandNoSuchThing';
  const desc = cmdDescriptor(rawAny(url, Buffer.from([0x0a, 0x01, 0x78])));
  await rejectsWith(s.client.getFlightInfo(desc), grpc.status.UNIMPLEMENTED, /CommandNoSuchThing/);
  await rejectsWith(s.client.unary('GetSchema', desc), grpc.status.UNIMPLEMENTED, /CommandNoSuchThing/);
  const other = cmdDescriptor(rawAny('type.googleapis.com/some.other.Message', Buffer.alloc(0)));
  await rejectsWith(s.client.getFlightInfo(other), grpc.status.UNIMPLEMENTED, /some\.other\.Message/);
  await rejectsWith(s.client.doAction('NoSuchAction', Buffer.alloc(0)), grpc.status.UNIMPLEMENTED, /NoSuchAction/);
  await rejectsWith(new Promise((resolve, reject) => {
    const call = s.client.raw.DoExchange(s.client.md());
    call.on('data', () => {});
    call.on('error', reject);
    call.on('end', resolve);
    call.end();
  }), grpc.status.UNIMPLEMENTED, /DoExchange/);
  await stillServing();
});

s.test('updates are refused: tracelake is read-only', async () => {
  const upd = cmdDescriptor(packAny('CommandStatementUpdate', { query: 'CREATE TABLE t (i INTEGER)' }));
  await failsWith(s.client.doPut([{ flight_descriptor: upd }]), null, /read-only|read only/i);
  await failsWith(s.client.getFlightInfo(upd), null, /read-only|read only/i);
  const prepUpd = cmdDescriptor(packAny('CommandPreparedStatementUpdate', { prepared_statement_handle: Buffer.from('x') }));
  await failsWith(s.client.doPut([{ flight_descriptor: prepUpd }]), null, /read-only|read only|not found|unknown/i);
  await queryFails('CREATE TABLE t AS SELECT 1 AS i', I, /read-only|read only/i);
  await queryFails("INSERT INTO log_entries (msg) VALUES ('x')", I);
  await queryFails('DROP VIEW log_entries', I);
  await rejectsWith(s.client.doAction('BeginTransaction', Buffer.alloc(0)), grpc.status.UNIMPLEMENTED);
  await stillServing();
});

s.test('garbage tickets and descriptors are INVALID_ARGUMENT; the server keeps serving', async () => {
  const garbage = [
    Buffer.from('garbage'),
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0a, 0x80, 0x80, 0x80, 0x80, 0x10]),
    Buffer.alloc(0),
    rawAny('type.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery', Buffer.from([0x0a, 0x03, 1, 2, 3])),
    packAny('TicketStatementQuery', { statement_handle: Buffer.alloc(64, 0x41) }),
  ];
  const problems = [];
  for (const [k, t] of garbage.entries()) {
    try {
      await s.client.doGet({ ticket: t });
      problems.push(`ticket #${k} (${t.toString('hex')}): accepted`);
    } catch (e) {
      // A well-formed statement ticket naming no query may be NOT_FOUND.
      const ok = k >= 3 ? [I, grpc.status.NOT_FOUND] : [I];
      if (!ok.includes(e.code) || !e.details) problems.push(`ticket #${k} (${t.toString('hex')}): ${describeError(e)}`);
    }
  }
  await rejectsWith(s.client.getFlightInfo(cmdDescriptor(Buffer.from('not an Any'))), I);
  await failsWith(s.client.getFlightInfo({ type: 'PATH', path: ['log_entries'], cmd: Buffer.alloc(0) }),
    [I, grpc.status.UNIMPLEMENTED, grpc.status.NOT_FOUND]);
  await rejectsWith(s.client.getFlightInfo(cmdDescriptor(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]))), I);
  await stillServing();
  assert.deepEqual(problems, [], 'garbage tickets');
});

s.test('SQL that reaches the server\'s files or settings is refused', async () => {
  const csv = path.join(s.server.dir, 'copied.csv');
  const db = path.join(s.server.dir, 'attached.db');
  for (const sql of [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_parquet('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    `COPY (SELECT 1) TO '${csv}'`,
    `ATTACH '${db}' AS x`,
    'INSTALL httpfs',
    'LOAD httpfs',
    'SET enable_external_access = true',
    'SET lock_configuration = false',
    'PRAGMA enable_external_access',
  ]) {
    let err = null;
    try {
      await s.client.query(sql);
    } catch (e) {
      err = e;
    }
    assert.ok(err, `${sql}: accepted`);
    assert.ok(err.code !== undefined && err.code !== grpc.status.OK, `${sql}: ${err.message}`);
    assert.notEqual(err.code, grpc.status.INTERNAL, `${sql}: ${err.message}`);
    assert.doesNotMatch(err.details, /root:x?:0:/, `${sql}: the error shows the file`);
  }
  assert.ok(!fs.existsSync(csv), 'COPY wrote a file');
  assert.ok(!fs.existsSync(db), 'ATTACH made a file');
  await stillServing();
});

s.test('a 3 MiB query is answered, or refused with a clear status', async () => {
  let err = null;
  try {
    const r = await s.client.query(`SELECT length('${'x'.repeat(3 << 20)}') AS n`);
    assert.deepEqual(tableRows(r.table), [['3145728']]);
  } catch (e) {
    err = e;
  }
  if (err) assert.ok([I, grpc.status.RESOURCE_EXHAUSTED].includes(err.code), err.message);
  await stillServing();
});

s.test('long SQL texts are answered and leave the server idle', async () => {
  // Long identifiers, numbers, literals and comments, past any fixed-size
  // buffer the server may keep for logging a query.
  const texts = [
    `SELECT ${Array.from({ length: 300 }, (_, i) => `i + ${i} AS column_number_${i}`).join(', ')} FROM range(2) t(i)`,
    `SELECT ${Array.from({ length: 500 }, (_, i) => `'literal ${i}'`).join(' || ')} AS s`,
    `SELECT 1 AS ${'x'.repeat(5000)}`,
    `SELECT /* ${'c'.repeat(5000)} */ 1 AS one -- ${'d'.repeat(5000)}`,
  ];
  for (const sql of texts) {
    const r = await s.client.query(sql);
    assert.ok(r.table.numRows >= 1, `${sql.slice(0, 60)}...`);
    const used = await s.server.cpuOver(1500);
    assert.ok(used < 0.5, `after a ${sql.length}-character query (${sql.slice(0, 40)}...) the server still used `
      + `${used.toFixed(2)} s of CPU in 1.5 s: a worker spins`);
  }
});

s.test('a NUL byte in the query text is refused, not cut short', async () => {
  let err = null;
  let rows = null;
  try {
    rows = tableRows((await s.client.query("SELECT 'before' AS s\u0000 UNION ALL SELECT 'after'")).table);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `the query ran as ${JSON.stringify(rows)}: the text after the NUL byte was dropped`);
  assert.equal(err.code, I, describeError(err));
  await stillServing();
});

s.stopTest();

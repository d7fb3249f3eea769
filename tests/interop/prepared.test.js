// prepared.test.js - prepared statements: CreatePreparedStatement (dataset
// and parameter schemas), parameters bound with DoPut as an Arrow record
// batch, GetFlightInfo + DoGet of the bound statement compared with
// `tracelake sql`, rebinding, ClosePreparedStatement, and the closed handle
// refused with NOT_FOUND.
'use strict';

const assert = require('node:assert/strict');
const { arrow, grpc, decodeIpcSchema, describeSchema, tableRows, batchMessages } = require('./flightsql.js');
const { DEMO_TARGET, exactSql, sqlRows, rejectsWith, sorted, serverSuite } = require('./harness.js');

const s = serverSuite({ demo: true });

const TEMPLATE = 'SELECT time, level, msg FROM log_entries WHERE target = ? AND level = ? ORDER BY time, msg';
const literal = (target, level) => TEMPLATE.replace('?', `'${target}'`).replace('?', String(level));

function preparedCmd(handle) {
  return ['CommandPreparedStatementQuery', { prepared_statement_handle: handle }];
}

/** GetFlightInfo(CommandPreparedStatementQuery) + DoGet. */
async function execute(handle) {
  return s.client.fetch(...preparedCmd(handle));
}

/** Parameter columns for the statement's parameter schema, one row. */
function params(schema, values) {
  assert.equal(schema.fields.length, values.length, `parameter schema: ${describeSchema(schema)}`);
  const cols = {};
  schema.fields.forEach((f, i) => { cols[f.name] = arrow.vectorFromArray([values[i]], f.type); });
  return cols;
}

let handle = null;
let stmt = null;

s.test('CreatePreparedStatement: a handle, the dataset schema and the parameter schema', async () => {
  stmt = await s.client.prepare(TEMPLATE);
  handle = stmt.handle;
  assert.ok(handle.length > 0, 'a handle');
  assert.ok(stmt.datasetSchema, 'a dataset_schema');
  assert.equal(describeSchema(stmt.datasetSchema).replace(/ not null/g, ''),
    'time: Timestamp<NANOSECOND, +00:00>, level: Int32, msg: Utf8');
  assert.ok(stmt.parameterSchema, 'a parameter_schema');
  assert.deepEqual(stmt.parameterSchema.fields.map((f) => String(f.type)), ['Utf8', 'Int32'],
    describeSchema(stmt.parameterSchema));
  const res = await s.client.getSchemaCmd(...preparedCmd(handle));
  assert.equal(describeSchema(decodeIpcSchema(res.schema)), describeSchema(stmt.datasetSchema),
    'GetSchema(CommandPreparedStatementQuery) is the dataset schema');
});

async function bindAndCheck(level, expectRows) {
  const results = await s.client.bind(handle, params(stmt.parameterSchema, [DEMO_TARGET, level]));
  for (const r of results) {
    if (r.prepared_statement_handle && r.prepared_statement_handle.length) handle = r.prepared_statement_handle;
  }
  const got = await execute(handle);
  assert.equal(describeSchema(got.table.schema), describeSchema(got.schema), 'DoGet schema vs FlightInfo schema');
  const sql = literal(DEMO_TARGET, level);
  const want = sqlRows(await s.server.sql(exactSql(sql, got.table.schema)), got.table.schema);
  assert.equal(got.table.numRows, expectRows, `rows for level ${level}`);
  assert.deepEqual(sorted(tableRows(got.table)), sorted(want), `level ${level}: values vs tracelake sql`);
  for (const row of tableRows(got.table)) assert.equal(row[1], level);
}

s.test('DoPut binds parameters; the statement returns the rows for them', async () => {
  await bindAndCheck(3, 3);
});

s.test('rebinding other values gives the other rows', async () => {
  await bindAndCheck(5, 297);
  await bindAndCheck(4, 6);
  await bindAndCheck(1, 0);
});

s.test('a parameter batch of the wrong shape is INVALID_ARGUMENT', async () => {
  const one = { only: arrow.vectorFromArray([3], new arrow.Int32()) };
  let err = null;
  try {
    await s.client.bind(handle, one);
    await execute(handle);
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'binding 1 value to 2 parameters is refused');
  assert.equal(err.code, grpc.status.INVALID_ARGUMENT, err.message);
  await bindAndCheck(3, 3);
});

s.test('a prepared statement without parameters runs without DoPut', async () => {
  const sql = `SELECT count(*) AS n, min(time) AS first FROM log_entries WHERE target = '${DEMO_TARGET}'`;
  const p = await s.client.prepare(sql);
  assert.ok(!p.parameterSchema || p.parameterSchema.fields.length === 0,
    `no parameters: ${p.parameterSchema && describeSchema(p.parameterSchema)}`);
  const got = await execute(p.handle);
  const want = sqlRows(await s.server.sql(exactSql(sql, got.table.schema)), got.table.schema);
  assert.deepEqual(tableRows(got.table), want);
  assert.equal(tableRows(got.table)[0][0], '306');
  const again = await execute(p.handle);
  assert.deepEqual(tableRows(again.table), want, 'a prepared statement runs again');
  await s.client.closePrepared(p.handle);
});

s.test('a parameter of unknown type (SELECT ?) takes the type of the bound value', async () => {
  const p = await s.client.prepare('SELECT ? AS v');
  assert.ok(p.parameterSchema && p.parameterSchema.fields.length === 1,
    `one parameter: ${p.parameterSchema && describeSchema(p.parameterSchema)}`);
  const name = p.parameterSchema.fields[0].name;
  for (const [type, value, want, streamType] of [
    [new arrow.Int32(), 7, 7, /^v: Int(32|64)$/], [new arrow.Utf8(), 'seven', 'seven', /^v: Utf8$/]]) {
    await s.client.bind(p.handle, { [name]: arrow.vectorFromArray([value], type) });
    const got = await execute(p.handle);
    assert.match(describeSchema(got.table.schema), streamType, `SELECT ? bound to ${type} ${value}: the stream's schema`);
    assert.equal(describeSchema(got.schema), describeSchema(got.table.schema),
      `SELECT ? bound to ${type} ${value}: FlightInfo.schema vs the stream's`);
    const rows = tableRows(got.table);
    assert.deepEqual(rows.map((r) => (typeof want === 'number' ? Number(r[0]) : r[0])), [want],
      `SELECT ? bound to ${type} ${value}`);
  }
  await s.client.closePrepared(p.handle);
});

s.test('ClosePreparedStatement; the closed handle is NOT_FOUND', async () => {
  const bodies = await s.client.closePrepared(handle);
  assert.ok(bodies.every((b) => b.length === 0), 'ClosePreparedStatement returns no result body');
  const NF = grpc.status.NOT_FOUND;
  await rejectsWith(s.client.getFlightInfoCmd(...preparedCmd(handle)), NF);
  await rejectsWith(s.client.bind(handle, params(stmt.parameterSchema, [DEMO_TARGET, 3])), NF);
  await rejectsWith(s.client.getSchemaCmd(...preparedCmd(handle)), NF);
  await rejectsWith(s.client.getFlightInfoCmd(...preparedCmd(Buffer.from('no such handle'))), NF);
});

s.test('DoPut binding needs the command in the first message\'s descriptor', async () => {
  const msgs = batchMessages({ a: arrow.vectorFromArray(['x'], new arrow.Utf8()) });
  // No descriptor at all.
  await rejectsWith(s.client.doPut(msgs.map((m) => ({ ...m, kind: undefined }))), grpc.status.INVALID_ARGUMENT);
  // A descriptor that is not a command.
  let err = null;
  try {
    await s.client.doPut([{ ...msgs[0], flight_descriptor: { type: 'PATH', path: ['log_entries'] } }, msgs[1]]);
  } catch (e) {
    err = e;
  }
  assert.ok(err && [grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED].includes(err.code) && err.details,
    `DoPut with a PATH descriptor: ${err ? `${err.message} (status details must say why)` : 'accepted'}`);
  assert.equal((await s.client.query('SELECT 1 AS one')).table.numRows, 1, 'still serving');
});

s.stopTest();

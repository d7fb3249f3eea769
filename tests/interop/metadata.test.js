// metadata.test.js - the Flight SQL metadata commands (GetSqlInfo, catalogs,
// schemas, tables with and without their schemas, table types, keys, XDBC
// type info) with the exact column names, Arrow types and nullability of
// the specification; ListActions; the session options actions.
'use strict';

const assert = require('node:assert/strict');
const { arrow, encode, decode, decodeIpcSchema, describeSchema, tableRows } = require('./flightsql.js');
const { serverSuite } = require('./harness.js');

const s = serverSuite({ demo: true });

const U = 'Utf8';
const KEY_COLUMNS = [
  ['pk_catalog_name', U, true], ['pk_db_schema_name', U, true], ['pk_table_name', U, false],
  ['pk_column_name', U, false], ['fk_catalog_name', U, true], ['fk_db_schema_name', U, true],
  ['fk_table_name', U, false], ['fk_column_name', U, false], ['key_sequence', 'Int32', false],
  ['fk_key_name', U, true], ['pk_key_name', U, true], ['update_rule', 'Uint8', false],
  ['delete_rule', 'Uint8', false],
];
const VIEWS = ['blocks', 'log_entries', 'measures', 'processes', 'streams'];

/** Checks [name, type, nullable] of every field; nested types are given as
 * a function of the field that returns true. */
function assertSchema(schema, expected, what) {
  assert.deepEqual(schema.fields.map((f) => f.name), expected.map((e) => e[0]),
    `${what}: column names (${describeSchema(schema)})`);
  schema.fields.forEach((f, i) => {
    const [name, type, nullable] = expected[i];
    if (typeof type === 'function') assert.ok(type(f.type), `${what}: ${name} has type ${f.type}`);
    else assert.equal(String(f.type), type, `${what}: type of ${name}`);
    if (nullable !== undefined) assert.equal(f.nullable, nullable, `${what}: ${name} ${nullable ? 'nullable' : 'not null'}`);
  });
}

/** GetSchema, GetFlightInfo and DoGet of a metadata command: the three
 * schemas agree and match `expected`; returns the DoGet table. */
async function meta(cmd, obj, expected) {
  const gs = decodeIpcSchema((await s.client.getSchemaCmd(cmd, obj)).schema);
  const r = await s.client.fetch(cmd, obj);
  assertSchema(r.schema, expected, `${cmd} FlightInfo.schema`);
  assert.equal(describeSchema(gs), describeSchema(r.schema), `${cmd}: GetSchema vs FlightInfo`);
  assert.equal(describeSchema(r.table.schema), describeSchema(r.schema), `${cmd}: DoGet vs FlightInfo`);
  assert.equal(r.info.endpoint.length, 1);
  assert.deepEqual(r.info.endpoint[0].location, []);
  return r.table;
}

const isList = (child, childNullable) => (t) => arrow.DataType.isList(t) && String(t.children[0].type) === child
  && (childNullable === undefined || t.children[0].nullable === childNullable);

function isSqlInfoUnion(t) {
  if (!arrow.DataType.isUnion(t) || t.mode !== arrow.UnionMode.Dense) return false;
  const names = t.children.map((c) => c.name);
  const want = ['string_value', 'bool_value', 'bigint_value', 'int32_bitmask', 'string_list', 'int32_to_int32_list_map'];
  if (JSON.stringify(names) !== JSON.stringify(want)) return false;
  if (JSON.stringify(Array.from(t.typeIds)) !== '[0,1,2,3,4,5]') return false;
  const [str, bool, big, mask, list, map] = t.children.map((c) => c.type);
  return String(str) === 'Utf8' && String(bool) === 'Bool' && String(big) === 'Int64' && String(mask) === 'Int32'
    && isList('Utf8')(list) && arrow.DataType.isMap(map)
    && String(map.children[0].type.children[0].type) === 'Int32'
    && isList('Int32')(map.children[0].type.children[1].type);
}

const SQL_INFO = [['info_name', 'Uint32', false], ['value', isSqlInfoUnion]];

/** GetSqlInfo rows as {id: {typeId, value}}. */
function sqlInfoValues(table) {
  const ids = table.getChild('info_name');
  const values = table.getChild('value');
  const out = {};
  for (let i = 0; i < table.numRows; i++) {
    const id = ids.get(i);
    assert.ok(!(id in out), `info_name ${id} appears twice`);
    let v = values.get(i);
    if (v && typeof v.toArray === 'function') v = Array.from(v.toArray());
    out[id] = { typeId: typeIdAt(values, i), value: v };
  }
  return out;
}

/** The union type id of row i of a dense union vector. */
function typeIdAt(vector, i) {
  let k = i;
  for (const d of vector.data) {
    if (k < d.length) return d.typeIds[k];
    k -= d.length;
  }
  throw new Error(`row ${i} out of range`);
}

function checkRequiredInfo(info) {
  assert.ok(info[0] && info[0].typeId === 0 && typeof info[0].value === 'string' && info[0].value.length > 0,
    `FLIGHT_SQL_SERVER_NAME: ${JSON.stringify(info[0])}`);
  assert.ok(info[1] && info[1].typeId === 0 && info[1].value.length > 0, `FLIGHT_SQL_SERVER_VERSION: ${JSON.stringify(info[1])}`);
  assert.ok(info[2] && info[2].typeId === 0 && /^\d+\.\d+\.\d+/.test(info[2].value),
    `FLIGHT_SQL_SERVER_ARROW_VERSION: ${JSON.stringify(info[2])}`);
  assert.deepEqual(info[3], { typeId: 1, value: true }, 'FLIGHT_SQL_SERVER_READ_ONLY is bool_value true');
  assert.ok(info[508] && info[508].typeId === 4 && Array.isArray(info[508].value) && info[508].value.length > 10
    && info[508].value.every((k) => typeof k === 'string' && k.length > 0), `SQL_KEYWORDS: ${JSON.stringify(info[508])}`);
  assert.ok(info[508].value.map((k) => k.toUpperCase()).includes('SELECT'), 'SQL_KEYWORDS has SELECT');
}

let allInfo = null;

s.test('GetSqlInfo (all): info_name uint32 + the dense union of the spec', async () => {
  const t = await meta('CommandGetSqlInfo', { info: [] }, SQL_INFO);
  allInfo = sqlInfoValues(t);
  checkRequiredInfo(allInfo);
});

s.test('GetSqlInfo (ids 0, 1, 2, 3, 508): exactly those rows, same values as in all', async () => {
  const t = await meta('CommandGetSqlInfo', { info: [0, 1, 2, 3, 508] }, SQL_INFO);
  const info = sqlInfoValues(t);
  assert.deepEqual(Object.keys(info).map(Number).sort((a, b) => a - b), [0, 1, 2, 3, 508]);
  checkRequiredInfo(info);
  for (const id of [0, 1, 2, 3, 508]) assert.deepEqual(info[id], allInfo[id], `info ${id} alone vs in all`);
});

let catalog = null;
let dbSchema = null;

s.test('GetCatalogs', async () => {
  const t = await meta('CommandGetCatalogs', {}, [['catalog_name', U, false]]);
  const rows = tableRows(t);
  assert.ok(rows.length >= 1, 'at least one catalog');
  catalog = rows[0][0];
  assert.ok(catalog.length > 0);
});

s.test('GetDbSchemas, with and without filters', async () => {
  const cols = [['catalog_name', U, true], ['db_schema_name', U, false]];
  const rows = tableRows(await meta('CommandGetDbSchemas', {}, cols));
  assert.ok(rows.length >= 1, 'at least one schema');
  assert.ok(rows.every((r) => r[0] === catalog), `schemas of catalog ${catalog}: ${JSON.stringify(rows)}`);
  dbSchema = rows[0][1];
  assert.deepEqual(tableRows(await meta('CommandGetDbSchemas', { catalog }, cols)), rows, 'catalog filter');
  assert.deepEqual(tableRows(await meta('CommandGetDbSchemas', { db_schema_filter_pattern: dbSchema }, cols)),
    [[catalog, dbSchema]], 'schema pattern');
  assert.equal((await meta('CommandGetDbSchemas', { db_schema_filter_pattern: 'no\\_such%' }, cols)).numRows, 0);
  assert.equal((await meta('CommandGetDbSchemas', { catalog: 'no_such_catalog' }, cols)).numRows, 0);
});

const TABLES4 = [['catalog_name', U, true], ['db_schema_name', U, true], ['table_name', U, false], ['table_type', U, false]];
let tableTypes = [];

s.test('GetTables without include_schema: exactly 4 columns, the lake\'s views', async () => {
  const rows = tableRows(await meta('CommandGetTables', { include_schema: false }, TABLES4));
  const names = rows.map((r) => r[2]);
  for (const v of VIEWS) assert.ok(names.includes(v), `GetTables lists ${v}: ${names}`);
  assert.deepEqual(names.filter((n) => n.startsWith('_')), [], 'no internal table is listed');
  for (const r of rows) {
    assert.equal(r[0], catalog);
    assert.equal(r[1], dbSchema);
  }
  tableTypes = [...new Set(rows.map((r) => r[3]))];
  const sortedRows = [...rows].sort((a, b) => (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0));
  assert.deepEqual(rows, sortedRows, 'ordered by table_name');
  const logs = tableRows(await meta('CommandGetTables', { table_name_filter_pattern: 'log%' }, TABLES4));
  assert.deepEqual(logs.map((r) => r[2]), ['log_entries'], 'table_name_filter_pattern log%');
  const one = tableRows(await meta('CommandGetTables', { table_name_filter_pattern: 'm_asures' }, TABLES4));
  assert.deepEqual(one.map((r) => r[2]), ['measures'], 'table_name_filter_pattern m_asures');
  assert.equal((await meta('CommandGetTables', { table_types: ['NO SUCH TYPE'] }, TABLES4)).numRows, 0);
  assert.equal((await meta('CommandGetTables', { table_types: tableTypes }, TABLES4)).numRows, rows.length);
  assert.equal((await meta('CommandGetTables', { catalog: 'no_such_catalog' }, TABLES4)).numRows, 0);
});

s.test('GetTables with include_schema: table_schema is each view\'s IPC schema', async () => {
  const cols = [...TABLES4, ['table_schema', 'Binary', false]];
  const t = await meta('CommandGetTables', { include_schema: true }, cols);
  const rows = tableRows(t);
  assert.ok(rows.length >= VIEWS.length);
  for (const v of VIEWS) {
    const row = rows.find((r) => r[2] === v);
    const schema = decodeIpcSchema(Buffer.from(row[4]));
    const described = await s.server.sql(`SELECT column_name FROM (DESCRIBE SELECT * FROM ${v})`);
    assert.deepEqual(schema.fields.map((f) => f.name), described.map((d) => d.column_name),
      `${v}: table_schema columns vs DESCRIBE`);
    const viaQuery = await s.client.getSchemaCmd('CommandStatementQuery', { query: `SELECT * FROM ${v}` });
    assert.equal(describeSchema(schema).replace(/ not null/g, ''),
      describeSchema(decodeIpcSchema(viaQuery.schema)).replace(/ not null/g, ''),
      `${v}: table_schema types vs GetSchema of SELECT *`);
  }
  const logs = decodeIpcSchema(Buffer.from(rows.find((r) => r[2] === 'log_entries')[4]));
  const type = (n) => String(logs.fields.find((f) => f.name === n).type);
  assert.equal(type('time'), 'Timestamp<NANOSECOND, +00:00>');
  assert.equal(type('level'), 'Int32');
  assert.equal(type('msg'), 'Utf8');
});

s.test('GetTableTypes', async () => {
  const rows = tableRows(await meta('CommandGetTableTypes', {}, [['table_type', U, false]])).map((r) => r[0]);
  for (const tt of tableTypes) assert.ok(rows.includes(tt), `GetTableTypes lists ${tt}: ${rows}`);
  assert.deepEqual(rows, [...rows].sort(), 'ordered by table_type');
});

s.test('GetPrimaryKeys: no rows, the spec\'s columns', async () => {
  // FlightSql.proto's comment lists key_name before key_sequence; the
  // reference implementations (C++, Java), which clients are built
  // against, send key_sequence first. The server follows them.
  const pk = [['catalog_name', U, true], ['db_schema_name', U, true], ['table_name', U, false],
    ['column_name', U, false], ['key_sequence', 'Int32', false], ['key_name', U, true]];
  assert.equal((await meta('CommandGetPrimaryKeys', { table: 'log_entries' }, pk)).numRows, 0);
});

s.test('GetExportedKeys: no rows, the spec\'s columns', async () => {
  assert.equal((await meta('CommandGetExportedKeys', { table: 'processes' }, KEY_COLUMNS)).numRows, 0);
});

s.test('GetImportedKeys: no rows, the spec\'s columns', async () => {
  assert.equal((await meta('CommandGetImportedKeys', { table: 'log_entries' }, KEY_COLUMNS)).numRows, 0);
});

s.test('GetCrossReference: no rows, the spec\'s columns', async () => {
  assert.equal((await meta('CommandGetCrossReference', { pk_table: 'processes', fk_table: 'log_entries' },
    KEY_COLUMNS)).numRows, 0);
});

const XDBC = [
  ['type_name', U, false], ['data_type', 'Int32', false], ['column_size', 'Int32', true],
  ['literal_prefix', U, true], ['literal_suffix', U, true], ['create_params', isList('Utf8', false), true],
  ['nullable', 'Int32', false], ['case_sensitive', 'Bool', false], ['searchable', 'Int32', false],
  ['unsigned_attribute', 'Bool', true], ['fixed_prec_scale', 'Bool', false], ['auto_increment', 'Bool', true],
  ['local_type_name', U, true], ['minimum_scale', 'Int32', true], ['maximum_scale', 'Int32', true],
  ['sql_data_type', 'Int32', false], ['datetime_subcode', 'Int32', true], ['num_prec_radix', 'Int32', true],
  ['interval_precision', 'Int32', true],
];

s.test('GetXdbcTypeInfo: all types, ordered by data_type then type_name; one data_type', async () => {
  const t = await meta('CommandGetXdbcTypeInfo', {}, XDBC);
  const rows = tableRows(t);
  assert.ok(rows.length >= 5, `${rows.length} types`);
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1], rows[i]];
    assert.ok(a[1] < b[1] || (a[1] === b[1] && a[0] <= b[0]), `order at row ${i}: ${a.slice(0, 2)} then ${b.slice(0, 2)}`);
  }
  const names = rows.map((r) => r[0].toUpperCase());
  for (const n of ['VARCHAR', 'INTEGER', 'BIGINT', 'DOUBLE']) assert.ok(names.includes(n), `type ${n} listed: ${names}`);
  const ints = tableRows(await meta('CommandGetXdbcTypeInfo', { data_type: 4 }, XDBC));
  assert.ok(ints.length >= 1, 'data_type 4 (XDBC_INTEGER)');
  assert.ok(ints.every((r) => r[1] === 4), `only data_type 4: ${JSON.stringify(ints.map((r) => r.slice(0, 2)))}`);
  assert.equal((await meta('CommandGetXdbcTypeInfo', { data_type: 12345 }, XDBC)).numRows, 0);
});

s.test('ListActions lists the actions tracelake serves', async () => {
  const actions = await s.client.listActions();
  const types = actions.map((a) => a.type);
  for (const want of ['CreatePreparedStatement', 'ClosePreparedStatement', 'CancelFlightInfo',
    'SetSessionOptions', 'GetSessionOptions', 'CloseSession']) {
    assert.ok(types.includes(want), `ListActions has ${want}: ${types}`);
  }
  assert.equal(new Set(types).size, types.length, 'no duplicate');
  for (const a of actions) assert.ok(a.description.length > 0, `${a.type} has a description`);
  const { messages } = await s.client.serverStream('ListFlights', { expression: Buffer.alloc(0) });
  assert.deepEqual(messages, [], 'ListFlights: no named flights');
});

s.test('session options: SetSessionOptions, GetSessionOptions, CloseSession', async () => {
  const F = 'arrow.flight.protocol.';
  const got = await s.client.doAction('GetSessionOptions', encode(`${F}GetSessionOptionsRequest`, {}));
  assert.equal(got.length, 1);
  const opts = decode(`${F}GetSessionOptionsResult`, got[0]).session_options;
  for (const [k, v] of Object.entries(opts)) {
    assert.ok(v.option_value, `option ${k} has a value: ${JSON.stringify(v)}`);
  }
  // Setting what the options already are is accepted.
  const same = {};
  for (const [k, v] of Object.entries(opts)) same[k] = { [v.option_value]: v[v.option_value] };
  let res = await s.client.doAction('SetSessionOptions',
    encode(`${F}SetSessionOptionsRequest`, { session_options: same }));
  assert.equal(res.length, 1);
  assert.deepEqual(decode(`${F}SetSessionOptionsResult`, res[0]).errors, {}, 'no error setting the current values');
  // An option the server does not know is reported as INVALID_NAME.
  res = await s.client.doAction('SetSessionOptions', encode(`${F}SetSessionOptionsRequest`,
    { session_options: { tl_no_such_option: { string_value: 'x' } } }));
  assert.equal(res.length, 1);
  const errors = decode(`${F}SetSessionOptionsResult`, res[0]).errors;
  assert.deepEqual(errors, { tl_no_such_option: { value: 'INVALID_NAME' } },
    `SetSessionOptions of an unknown option: ${JSON.stringify(errors)}`);
  const closed = await s.client.doAction('CloseSession', encode(`${F}CloseSessionRequest`, {}));
  assert.equal(closed.length, 1);
  assert.equal(decode(`${F}CloseSessionResult`, closed[0]).status, 'CLOSED');
  assert.equal((await s.client.query('SELECT 1 AS one')).table.numRows, 1, 'still serving');
});

s.stopTest();

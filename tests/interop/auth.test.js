// auth.test.js - a server started with --api-keys: calls without
// credentials or with a wrong key are UNAUTHENTICATED, `authorization:
// Bearer <key>` works, and Handshake trades `authorization: Basic
// base64(name:key)` (or a BasicAuth payload) for a bearer token that works.
'use strict';

const assert = require('node:assert/strict');
const { FlightSqlClient, arrow, grpc, describeError, encode, packAny, cmdDescriptor, tableRows } = require('./flightsql.js');
const { rejectsWith, serverSuite } = require('./harness.js');

const ALICE = ['alice', 'alice-key-5f2b8c1e9d7a4b3c'];
const BOB = ['bob', 'bob-key-0a9e8d7c6b5a4f3e'];
const s = serverSuite({ apiKeys: [ALICE, BOB] });
const UNAUTH = grpc.status.UNAUTHENTICATED;

const bearer = (v) => ({ authorization: `Bearer ${v}` });
const basic = (name, key) => ({ authorization: `Basic ${Buffer.from(`${name}:${key}`).toString('base64')}` });

async function selectOne(headers) {
  const r = await s.client.query('SELECT 42 AS answer', headers);
  assert.deepEqual(tableRows(r.table), [[42]]);
}

/** The bearer token of a Handshake reply: its `authorization` response
 * header (initial metadata, where clients look for it). */
function tokenOf(reply) {
  const vals = (reply.headers ? reply.headers.get('authorization') : []).map(String);
  const h = vals.find((v) => /^Bearer /i.test(v));
  assert.ok(h, `Handshake reply has the response header 'authorization: Bearer <token>': headers ${JSON.stringify(
    reply.headers && reply.headers.getMap())}, trailers ${JSON.stringify(reply.trailers && reply.trailers.getMap())}`);
  return h.slice(7);
}

s.test('no credentials: every method is UNAUTHENTICATED', async () => {
  await rejectsWith(s.client.query('SELECT 42 AS answer'), UNAUTH);
  await rejectsWith(s.client.getSchemaCmd('CommandStatementQuery', { query: 'SELECT 1' }), UNAUTH);
  await rejectsWith(s.client.doGet({ ticket: Buffer.from('anything') }), UNAUTH);
  await rejectsWith(s.client.listActions(), UNAUTH);
  await rejectsWith(s.client.prepare('SELECT 1'), UNAUTH);
  await rejectsWith(s.client.doPut([{ flight_descriptor: cmdDescriptor(packAny('CommandStatementUpdate',
    { query: 'SELECT 1' })) }]), UNAUTH);
  await rejectsWith(s.client.getFlightInfoCmd('CommandGetTables', {}), UNAUTH);
});

s.test('authorization: Bearer <key> works; a wrong key is UNAUTHENTICATED', async () => {
  await selectOne(bearer(ALICE[1]));
  await selectOne(bearer(BOB[1]));
  await rejectsWith(s.client.query('SELECT 1', bearer('not-a-key')), UNAUTH);
  await rejectsWith(s.client.query('SELECT 1', bearer(`${ALICE[1]}x`)), UNAUTH);
  await rejectsWith(s.client.query('SELECT 1', bearer('')), UNAUTH);
  await rejectsWith(s.client.query('SELECT 1', { authorization: ALICE[1] }), UNAUTH);
  await rejectsWith(s.client.query('SELECT 1', basic(...ALICE)), UNAUTH);
});

s.test('Handshake with Basic name:key returns a bearer token that works', async () => {
  const reply = await s.client.handshake(basic(...ALICE));
  const token = tokenOf(reply);
  assert.ok(token.length >= 16, `token '${token}'`);
  assert.notEqual(token, ALICE[1], 'the token is not the key');
  await selectOne(bearer(token));
  // The token keeps working over a new connection.
  const other = new FlightSqlClient(s.server.flightAddr, { headers: bearer(token) });
  try {
    assert.deepEqual(tableRows((await other.query('SELECT 1 AS one')).table), [[1]]);
  } finally {
    other.close();
  }
});

s.test('Handshake with a BasicAuth payload (older clients) returns a token too', async () => {
  const payload = encode('arrow.flight.protocol.BasicAuth', { username: BOB[0], password: BOB[1] });
  const reply = await s.client.handshake({}, payload);
  const token = tokenOf(reply);
  await selectOne(bearer(token));
  assert.ok(reply.responses.length >= 1, 'a HandshakeResponse');
});

s.test('Handshake with a wrong key, an unknown name or garbage is UNAUTHENTICATED', async () => {
  await rejectsWith(s.client.handshake(basic(ALICE[0], BOB[1])), UNAUTH);
  await rejectsWith(s.client.handshake(basic('mallory', ALICE[1])), UNAUTH);
  await rejectsWith(s.client.handshake({ authorization: 'Basic !!!not base64!!!' }), UNAUTH);
  await rejectsWith(s.client.handshake({}), UNAUTH);
  await rejectsWith(s.client.query('SELECT 1', bearer('0123456789abcdef0123456789abcdef')), UNAUTH);
});

s.test('one user cannot run, bind or close another\'s prepared statement', async () => {
  const p = await s.client.prepare('SELECT CAST(? AS INTEGER) AS v', bearer(ALICE[1]));
  const param = (v) => ({ [p.parameterSchema.fields[0].name]: arrow.vectorFromArray([v], p.parameterSchema.fields[0].type) });
  await s.client.bind(p.handle, param(1), bearer(ALICE[1]));
  const cmd = ['CommandPreparedStatementQuery', { prepared_statement_handle: p.handle }];
  const refused = [grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED];
  const allowed = [];
  for (const [what, call] of [
    ['run', () => s.client.fetch(...cmd, bearer(BOB[1]))],
    ['bind', () => s.client.bind(p.handle, param(2), bearer(BOB[1]))],
    ['close', () => s.client.closePrepared(p.handle, bearer(BOB[1]))],
  ]) {
    try {
      await call();
      allowed.push(`${what}: allowed`);
    } catch (e) {
      if (!refused.includes(e.code)) allowed.push(`${what}: ${describeError(e)}`);
    }
  }
  assert.deepEqual(allowed, [], 'bob may use alice\'s prepared statement');
  const mine = await s.client.fetch(...cmd, bearer(ALICE[1]));
  assert.deepEqual(tableRows(mine.table).map((r) => Number(r[0])), [1], 'alice\'s statement keeps alice\'s parameter');
});

s.stopTest();

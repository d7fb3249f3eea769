// tls.test.js - Flight SQL over TLS (--tls-cert/--tls-key, grpc+tls): a
// client trusting the server's certificate queries it, with API keys on
// top; a plaintext client or one trusting another certificate cannot.
'use strict';

const assert = require('node:assert/strict');
const { FlightSqlClient, grpc, tableRows, describeError } = require('./flightsql.js');
const { selfSignedCert, rejectsWith, serverSuite } = require('./harness.js');

const KEY = ['carol', 'carol-key-7d1c2e3f4a5b6c7d'];
const s = serverSuite({ tls: true, apiKeys: [KEY] });
const auth = { authorization: `Bearer ${KEY[1]}` };

s.test('a client trusting the certificate queries over TLS', async () => {
  const r = await s.client.query('SELECT 42 AS answer', auth);
  assert.deepEqual(tableRows(r.table), [[42]]);
  const big = await s.client.query("SELECT i, repeat('t', 50) AS s FROM range(100000) t(i)", auth);
  assert.equal(big.table.numRows, 100000);
  await rejectsWith(s.client.query('SELECT 1', {}), grpc.status.UNAUTHENTICATED);
});

s.test('Handshake over TLS returns a working token', async () => {
  const reply = await s.client.handshake({ authorization: `Basic ${Buffer.from(KEY.join(':')).toString('base64')}` });
  const h = (reply.headers.get('authorization') || []).map(String).find((v) => v.startsWith('Bearer '));
  assert.ok(h, 'a bearer token');
  const r = await s.client.query('SELECT 1 AS one', { authorization: h });
  assert.deepEqual(tableRows(r.table), [[1]]);
});

s.test('a plaintext client or one trusting another certificate cannot connect', async () => {
  for (const [what, credentials] of [
    ['plaintext', grpc.credentials.createInsecure()],
    ['another certificate', grpc.credentials.createSsl(selfSignedCert(s.server.dir, 'other').pem)],
  ]) {
    const c = new FlightSqlClient(s.server.flightAddr, { credentials });
    try {
      let err = null;
      try {
        await c.unary('GetFlightInfo', { type: 'CMD', cmd: Buffer.alloc(0) }, auth, 5000);
      } catch (e) {
        err = e;
      }
      assert.ok(err, `${what}: the call went through`);
      assert.equal(err.code, grpc.status.UNAVAILABLE, `${what}: ${describeError(err)}`);
    } finally {
      c.close();
    }
  }
  const r = await s.client.query('SELECT 2 AS two', auth);
  assert.deepEqual(tableRows(r.table), [[2]], 'still serving');
});

s.stopTest();

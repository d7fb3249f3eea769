// harness.js - the real `tracelake serve` for the interop tests: started on
// ephemeral loopback ports in a temporary lake, loaded with the demo
// workload, and a second path to the same data (`tracelake sql`, run in
// process over the lake) to check every value the Flight SQL service returns.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFile, execFileSync } = require('node:child_process');
const { test, before, after } = require('node:test');
const fsql = require('./flightsql.js');

const BIN = process.env.TRACELAKE_BIN || path.resolve(__dirname, '../../build/tracelake');

/** The demo's log entries and metrics (TL_TARGET of apps/demo.c). */
const DEMO_TARGET = 'tracelake::demo';

function run(args, { env, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(BIN, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 256 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          err.message = `tracelake ${args.join(' ')} failed (${err.code ?? err.signal}):\n${stderr}${stdout}`;
          reject(err);
        } else {
          resolve({ stdout, stderr });
        }
      });
  });
}

class Server {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-interop-'));
    this.data = path.join(this.dir, 'data');
    this.log = '';
    this.proc = null;
    this.exited = null; // a Promise of {code, signal}
  }

  /** Starts `tracelake serve` and waits for its "serving" line. */
  async start({ apiKeys, tls } = {}) {
    const args = ['serve', '--data', this.data, '--http', '127.0.0.1:0', '--flight', '127.0.0.1:0'];
    if (tls) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
    if (apiKeys) {
      this.keysFile = path.join(this.dir, 'api-keys');
      fs.writeFileSync(this.keysFile, apiKeys.map(([name, key]) => `${name} ${key}\n`).join(''));
      args.push('--api-keys', this.keysFile);
    }
    this.proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    const onData = (d) => { this.log += d; };
    this.proc.stdout.setEncoding('utf8').on('data', onData);
    this.proc.stderr.setEncoding('utf8').on('data', onData);
    const re = tls
      ? /tracelake: serving http:\/\/127\.0\.0\.1:(\d+) and grpc\+tls:\/\/127\.0\.0\.1:(\d+) \(data /
      : /tracelake: serving http:\/\/127\.0\.0\.1:(\d+) and grpc:\/\/127\.0\.0\.1:(\d+) \(data /;
    const deadline = Date.now() + 20000;
    for (;;) {
      const m = re.exec(this.log);
      if (m) {
        this.httpPort = Number(m[1]);
        this.flightPort = Number(m[2]);
        break;
      }
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`tracelake serve exited before serving:\n${this.log}`);
      }
      if (Date.now() > deadline) throw new Error(`tracelake serve did not start in 20 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.url = `http://127.0.0.1:${this.httpPort}`;
    this.flightAddr = `127.0.0.1:${this.flightPort}`;
    return this;
  }

  /** Sends the demo workload (`tracelake demo --url`) to the server: with
   * TRACELAKE_LEVEL=debug its log entries have levels 3 (warn), 4 (info)
   * and 5 (debug). */
  async demo({ jobs = 300, threads = 2, apiKey } = {}) {
    const env = { TRACELAKE_LEVEL: 'debug' };
    if (apiKey) env.TRACELAKE_API_KEY = apiKey;
    const { stdout } = await run(['demo', '--url', this.url, '--spool', path.join(this.dir, 'spool'),
      '--jobs', String(jobs), '--threads', String(threads)], { env });
    assert.match(stdout, /recorded \d+ events \(0 dropped\)/, stdout);
    assert.match(stdout, / 0 failed/, stdout);
    return stdout;
  }

  /** One query through `tracelake sql --format json`: the rows as objects. */
  async sql(query, { begin, end } = {}) {
    const args = ['sql', '--data', this.data, '--format', 'json'];
    if (begin) args.push('--begin', begin);
    if (end) args.push('--end', end);
    args.push(query);
    const { stdout } = await run(args);
    return stdout.split('\n').filter((l) => l.trim()).map((l) => {
      try {
        return JSON.parse(l);
      } catch (e) {
        throw new Error(`tracelake sql printed a line that is not JSON: ${l}`);
      }
    });
  }

  /** SIGTERM, then the exit status (kill -9 after `ms`). */
  async stop(ms = 15000) {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    const st = await this.exited;
    clearTimeout(timer);
    return st;
  }

  /** Kills the server if still running and removes the lake. */
  async cleanup() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    if (!process.env.TL_INTEROP_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The CPU seconds the server uses over the next `ms`. */
  async cpuOver(ms) {
    const a = this.cpuSeconds();
    await new Promise((r) => setTimeout(r, ms));
    return this.cpuSeconds() - a;
  }

  /** The CPU time (user + system, seconds) the server has used so far. */
  cpuSeconds() {
    const stat = fs.readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime
    return ticks / 100; // USER_HZ, 100 on Linux
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl):
 * {cert, key} file paths and the certificate's PEM. */
function selfSignedCert(dir, name = 'server') {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec',
    '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'pipe' });
  return { cert, key, pem: fs.readFileSync(cert) };
}

/** The same query for `tracelake sql`, with every column in a form JSON
 * keeps exact: timestamps as their nanoseconds and 64-bit integers as text,
 * matching columnValues() of flightsql.js. */
function exactSql(query, schema) {
  const cols = schema.fields.map((f) => {
    const q = `"${f.name.replace(/"/g, '""')}"`;
    const t = f.type;
    if (t.typeId === 10 /* Timestamp */) return `CAST(epoch_ns(${q}) AS VARCHAR) AS ${q}`;
    if (t.typeId === 2 /* Int */ && t.bitWidth === 64) return `CAST(${q} AS VARCHAR) AS ${q}`;
    return q;
  });
  return `SELECT ${cols.join(', ')} FROM (${query}) AS _q`;
}

/** Rows as arrays, in the schema's column order, from `tracelake sql` objects. */
function sqlRows(objs, schema) {
  return objs.map((o) => schema.fields.map((f) => {
    if (!(f.name in o)) throw new Error(`tracelake sql row has no column ${f.name}: ${JSON.stringify(o)}`);
    return o[f.name];
  }));
}

/** An RFC 3339 UTC time with nanoseconds for a count of ns since the epoch. */
function rfc3339(ns) {
  const n = BigInt(ns);
  const sec = n / 1000000000n;
  const frac = String(n % 1000000000n).padStart(9, '0');
  const iso = new Date(Number(sec) * 1000).toISOString().slice(0, 19);
  return `${iso}.${frac}Z`;
}

// ---- test scaffolding ----------------------------------------------------------

function codeName(code) {
  return Object.keys(fsql.grpc.status).find((k) => fsql.grpc.status[k] === code) || String(code);
}

/** Awaits a call that must fail with gRPC `code` and details matching
 * `re`; returns the error. */
async function rejectsWith(promise, code, re) {
  let err = null;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected gRPC ${codeName(code)}, but the call succeeded`);
  assert.ok(err.code !== undefined, `expected gRPC ${codeName(code)}, got a non-gRPC error: ${err.stack}`);
  assert.equal(codeName(err.code), codeName(code), `expected gRPC ${codeName(code)}, got ${fsql.describeError(err)}`);
  if (re) assert.match(err.details, re, `gRPC ${codeName(code)} details do not match ${re}: '${err.details}'`);
  return err;
}

/** Rows sorted by their JSON text, to compare result sets with ties. */
function sorted(rows) {
  return rows.map((r) => JSON.stringify(r)).sort();
}

/** One server for a test file: started (over TLS with a fresh self-signed
 * certificate when `tls` is set, and loaded with the demo when `demo` is
 * set) before its tests, killed and removed after them. Its
 * `test` wraps node:test's so that gRPC failures print their status and
 * the server's log is shown when anything failed. */
function serverSuite({ apiKeys, demo = false, clientHeaders, tls = false } = {}) {
  const ctx = { server: null, client: null, failed: false, tls: null };
  before(async () => {
    ctx.server = new Server();
    if (tls) ctx.tls = selfSignedCert(ctx.server.dir);
    await ctx.server.start({ apiKeys, tls: ctx.tls });
    if (demo) await ctx.server.demo({ apiKey: apiKeys && apiKeys[0][1] });
    ctx.client = new fsql.FlightSqlClient(ctx.server.flightAddr, {
      headers: clientHeaders,
      credentials: ctx.tls ? fsql.grpc.credentials.createSsl(ctx.tls.pem) : undefined,
    });
  });
  after(async () => {
    if (ctx.client) ctx.client.close();
    if (ctx.failed && ctx.server) {
      const lines = ctx.server.log.split('\n');
      process.stderr.write(`---- tracelake serve log (last 80 lines) ----\n${lines.slice(-80).join('\n')}\n`);
    }
    if (ctx.server) await ctx.server.cleanup();
  });
  ctx.test = (name, fn) => test(name, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      ctx.failed = true;
      if (e && e.code !== undefined && e.details !== undefined && !(e instanceof assert.AssertionError)) {
        e.message = `${fsql.describeError(e)}\n${e.message}`;
      }
      throw e;
    }
  });
  /** The last test: SIGTERM, exit status 0. */
  ctx.stopTest = () => ctx.test('SIGTERM stops the server with exit status 0', async () => {
    const st = await ctx.server.stop();
    assert.deepEqual(st, { code: 0, signal: null }, `server exit: ${JSON.stringify(st)}\n${ctx.server.log}`);
  });
  return ctx;
}

module.exports = {
  BIN, DEMO_TARGET, Server, exactSql, sqlRows, rfc3339, run, selfSignedCert,
  codeName, rejectsWith, sorted, serverSuite,
};

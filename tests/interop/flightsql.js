// flightsql.js - a small Arrow Flight SQL client for the interop tests, built
// only from public npm packages (@grpc/grpc-js, @grpc/proto-loader,
// protobufjs, apache-arrow) and the project's .proto files, which are
// written from the published specification. It shares no code with the
// server: it speaks the protocol as any other Flight SQL client would.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const arrow = require('apache-arrow');

const PROTO_DIR = path.resolve(__dirname, '../../src/flightsql/proto');
const SQL = 'arrow.flight.protocol.sql.';
const FLIGHT = 'arrow.flight.protocol.';
const TYPE_URL_PREFIX = 'type.googleapis.com/';
const CONTINUATION = 0xffffffff;
const EOS = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

// The gRPC service, from flight.proto. Each response message gets a
// non-enumerable `wireSize`: its serialized length, to check the 4 MiB
// limit message by message.
const packageDef = protoLoader.loadSync(['flight.proto'], {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const serviceDef = {};
for (const [name, m] of Object.entries(packageDef[`${FLIGHT}FlightService`])) {
  serviceDef[name] = {
    ...m,
    responseDeserialize: (buf) => {
      const msg = m.responseDeserialize(buf);
      Object.defineProperty(msg, 'wireSize', { value: buf.length });
      return msg;
    },
  };
}
const FlightServiceClient = grpc.makeGenericClientConstructor(serviceDef, 'FlightService');

// The messages that travel inside bytes fields (Any values, Action bodies,
// PutResult metadata), encoded and decoded with protobufjs.
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(PROTO_DIR, path.basename(target));
root.loadSync(['flight.proto', 'flight_sql.proto', 'tl_wellknown.proto'], { keepCase: true });

const TO_OBJECT = { longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true };

function lookup(name) {
  return root.lookupType(name.includes('.') ? name : SQL + name);
}

/** Serializes `obj` as the message `name` (short names are Flight SQL's). */
function encode(name, obj) {
  const T = lookup(name);
  return Buffer.from(T.encode(T.fromObject(obj)).finish());
}

/** Parses `buf` as the message `name` into a plain object. */
function decode(name, buf) {
  const T = lookup(name);
  return T.toObject(T.decode(buf), TO_OBJECT);
}

/** google.protobuf.Any{type_url, value} bytes for a Flight SQL message. */
function packAny(name, obj) {
  const full = name.includes('.') ? name : SQL + name;
  return encode('tl.wellknown.Any', { type_url: TYPE_URL_PREFIX + full, value: encode(full, obj) });
}

/** Unpacks Any bytes, checking the packed type is `name`. */
function unpackAny(name, buf) {
  const any = decode('tl.wellknown.Any', buf);
  const full = name.includes('.') ? name : SQL + name;
  if (any.type_url !== TYPE_URL_PREFIX + full) {
    throw new Error(`expected an Any of ${full}, got type_url '${any.type_url}'`);
  }
  return decode(full, any.value);
}

/** Any bytes with an arbitrary type_url and value. */
function rawAny(typeUrl, value) {
  return encode('tl.wellknown.Any', { type_url: typeUrl, value });
}

/** A FlightDescriptor of type CMD holding `cmd` (bytes). */
function cmdDescriptor(cmd) {
  return { type: 'CMD', cmd, path: [] };
}

// ---- Arrow IPC ---------------------------------------------------------------

/** The IPC-encapsulated schema bytes (FlightInfo.schema and the like) as an
 * apache-arrow Schema. Checks the framing: continuation marker, length, a
 * Schema message and nothing after it. */
function decodeIpcSchema(bytes) {
  const b = Buffer.from(bytes);
  if (b.length < 8) throw new Error(`IPC schema: only ${b.length} bytes`);
  let off = 0;
  if (b.readUInt32LE(0) === CONTINUATION) off = 4;
  const len = b.readInt32LE(off);
  if (len <= 0 || off + 4 + len > b.length) {
    throw new Error(`IPC schema: bad metadata length ${len} for ${b.length} bytes`);
  }
  const msg = arrow.Message.decode(b.subarray(off + 4, off + 4 + len));
  if (!msg.isSchema()) throw new Error(`IPC schema: header type ${msg.headerType}, not Schema`);
  const rest = b.subarray(off + 4 + len);
  if (rest.length && !(rest.length === 8 && rest.equals(EOS))) {
    throw new Error(`IPC schema: ${rest.length} stray bytes after the message`);
  }
  return arrow.tableFromIPC(Buffer.concat([b.subarray(0, off + 4 + len), EOS])).schema;
}

/** Rebuilds an IPC stream from FlightData messages: each data_header behind
 * 0xFFFFFFFF and its length padded to 8, the padding, the body; then the
 * end-of-stream marker. Checks each body has the length its header says. */
function flightDataToIpc(messages) {
  const parts = [];
  for (const m of messages) {
    const h = m.data_header;
    if (!h || h.length === 0) continue; // app_metadata only
    const msg = arrow.Message.decode(h);
    const body = m.data_body || Buffer.alloc(0);
    if (Number(msg.bodyLength) !== body.length) {
      throw new Error(`FlightData: header says bodyLength ${msg.bodyLength}, body has ${body.length} bytes`);
    }
    const padded = (h.length + 7) & ~7;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(CONTINUATION, 0);
    prefix.writeInt32LE(padded, 4);
    parts.push(prefix, h, Buffer.alloc(padded - h.length), body);
  }
  parts.push(EOS);
  return Buffer.concat(parts);
}

/** Splits an IPC stream (from tableToIPC) into FlightData-shaped
 * {data_header, data_body} messages, without the end-of-stream marker. */
function ipcToFlightData(ipc) {
  const b = Buffer.from(ipc);
  const out = [];
  let off = 0;
  while (off + 8 <= b.length) {
    if (b.readUInt32LE(off) !== CONTINUATION) throw new Error(`IPC stream: no continuation at ${off}`);
    const len = b.readInt32LE(off + 4);
    if (len === 0) break;
    const header = b.subarray(off + 8, off + 8 + len);
    const msg = arrow.Message.decode(header);
    const bodyLen = Number(msg.bodyLength);
    const body = b.subarray(off + 8 + len, off + 8 + len + bodyLen);
    out.push({ data_header: Buffer.from(header), data_body: Buffer.from(body), kind: msg.headerType });
    off += 8 + len + bodyLen;
  }
  return out;
}

/** The IPC bytes of one record batch holding `columns` ({name: Vector}). */
function batchMessages(columns) {
  const table = new arrow.Table(columns);
  return ipcToFlightData(arrow.tableToIPC(table, 'stream'));
}

/** A field as text: name, type and nullability. */
function describeField(f) {
  return `${f.name}: ${f.type}${f.nullable ? '' : ' not null'}`;
}

function describeSchema(schema) {
  return schema.fields.map(describeField).join(', ');
}

/** The values of a column as comparable JavaScript values: timestamps as
 * their exact integer (string), 64-bit integers as strings, others as
 * apache-arrow returns them; null for nulls. */
function columnValues(vector) {
  const out = [];
  const t = vector.type;
  const ts = arrow.DataType.isTimestamp(t);
  const big = arrow.DataType.isInt(t) && t.bitWidth === 64;
  for (const d of vector.data) {
    for (let i = 0; i < d.length; i++) {
      if (!d.getValid(i)) {
        out.push(null);
      } else if (ts) {
        out.push(String(d.values[i]));
      } else {
        const v = arrow.makeVector(d).get(i);
        out.push(big || typeof v === 'bigint' ? String(v) : v);
      }
    }
  }
  return out;
}

/** The value of row i of a vector, exact: 64-bit and wider integers,
 * timestamps, times and decimals as BigInt (unscaled), binary as hex,
 * intervals as {months, days, nanos}, nested values as plain JS. */
function exactValue(vector, i) {
  let k = i;
  for (const d of vector.data) {
    if (k < d.length) return exactData(d, k);
    k -= d.length;
  }
  throw new Error(`row ${i} out of range`);
}

function exactData(d, i) {
  if (!d.getValid(i)) return null;
  const t = d.type;
  const T = arrow.Type;
  switch (t.typeId) {
    case T.Timestamp:
      return d.values[i];
    case T.Time:
      return BigInt(d.values[i]);
    case T.Int:
      return t.bitWidth === 64 ? BigInt(d.values[i]) : d.values[i];
    case T.Decimal: {
      const w = d.values.subarray(i * (t.bitWidth / 32), (i + 1) * (t.bitWidth / 32));
      let v = 0n;
      for (let j = w.length - 1; j >= 0; j--) v = (v << 32n) | BigInt(w[j]);
      const bits = BigInt(t.bitWidth);
      return v >= 1n << (bits - 1n) ? v - (1n << bits) : v;
    }
    case T.Binary:
    case T.FixedSizeBinary:
      return Buffer.from(arrow.makeVector(d).get(i)).toString('hex');
    case T.Interval: {
      if (t.unit !== arrow.IntervalUnit.MONTH_DAY_NANO) return Array.from(arrow.makeVector(d).get(i));
      const b = Buffer.from(d.values.buffer, d.values.byteOffset + i * 16, 16);
      return { months: b.readInt32LE(0), days: b.readInt32LE(4), nanos: b.readBigInt64LE(8) };
    }
    case T.List: {
      const from = d.valueOffsets[i];
      const to = d.valueOffsets[i + 1];
      const child = d.children[0];
      const out = [];
      for (let j = from; j < to; j++) out.push(exactData(child, j));
      return out;
    }
    case T.Struct: {
      const o = {};
      t.children.forEach((f, j) => { o[f.name] = exactData(d.children[j], i); });
      return o;
    }
    case T.Map: {
      const from = d.valueOffsets[i];
      const to = d.valueOffsets[i + 1];
      const entries = d.children[0];
      const o = {};
      for (let j = from; j < to; j++) o[exactData(entries.children[0], j)] = exactData(entries.children[1], j);
      return o;
    }
    default: {
      const v = arrow.makeVector(d).get(i);
      return v instanceof Date ? v.getTime() : v;
    }
  }
}

/** A table's rows as arrays of comparable values (see columnValues). */
function tableRows(table) {
  const cols = table.schema.fields.map((_, i) => columnValues(table.getChildAt(i)));
  const rows = [];
  for (let r = 0; r < table.numRows; r++) rows.push(cols.map((c) => c[r]));
  return rows;
}

// ---- the client ----------------------------------------------------------------

/** Turns {name: value} into gRPC metadata. */
function toMetadata(headers) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers || {})) md.set(k, String(v));
  return md;
}

/** A gRPC error with its status in the message, for readable failures. */
function describeError(e) {
  if (!e || e.code === undefined) return String(e);
  const name = Object.keys(grpc.status).find((k) => grpc.status[k] === e.code);
  return `gRPC ${name} (${e.code}): ${e.details}`;
}

class FlightSqlClient {
  /** `address` is host:port; `headers` go with every call; `credentials`
   * are gRPC channel credentials (default: plaintext). */
  constructor(address, { headers = {}, options = {}, credentials } = {}) {
    this.address = address;
    this.headers = headers;
    this.raw = new FlightServiceClient(address, credentials || grpc.credentials.createInsecure(), options);
  }

  close() {
    this.raw.close();
  }

  md(extra) {
    return toMetadata({ ...this.headers, ...(extra || {}) });
  }

  unary(method, request, headers, deadlineMs = 30000) {
    return new Promise((resolve, reject) => {
      this.raw[method](request, this.md(headers), { deadline: Date.now() + deadlineMs }, (err, res) =>
        err ? reject(err) : resolve(res));
    });
  }

  /** Collects a server stream: {messages, headers (initial metadata)}. */
  serverStream(method, request, headers, { deadlineMs = 60000, onCall } = {}) {
    return new Promise((resolve, reject) => {
      const call = this.raw[method](request, this.md(headers), { deadline: Date.now() + deadlineMs });
      if (onCall) onCall(call);
      const messages = [];
      let initial = null;
      call.on('metadata', (m) => { initial = m; });
      call.on('data', (m) => messages.push(m));
      call.on('error', (e) => { e.messages = messages; reject(e); });
      call.on('end', () => resolve({ messages, headers: initial }));
    });
  }

  getFlightInfo(descriptor, headers) {
    return this.unary('GetFlightInfo', descriptor, headers);
  }

  /** GetFlightInfo for a Flight SQL command `name` with fields `obj`. */
  getFlightInfoCmd(name, obj, headers) {
    return this.getFlightInfo(cmdDescriptor(packAny(name, obj)), headers);
  }

  getSchemaCmd(name, obj, headers) {
    return this.unary('GetSchema', cmdDescriptor(packAny(name, obj)), headers);
  }

  /** DoGet of a ticket: the FlightData messages and the table they make. */
  async doGet(ticket, headers, opts) {
    const { messages } = await this.serverStream('DoGet', ticket, headers, opts);
    if (messages.length === 0) throw new Error('DoGet: no FlightData at all (not even a schema)');
    const first = messages[0];
    if (!first.data_header || !arrow.Message.decode(first.data_header).isSchema()) {
      throw new Error('DoGet: the first FlightData is not a Schema message');
    }
    const table = arrow.tableFromIPC(flightDataToIpc(messages));
    return { messages, table };
  }

  /** GetFlightInfo then DoGet of its one endpoint. */
  async fetch(name, obj, headers) {
    const info = await this.getFlightInfoCmd(name, obj, headers);
    if (info.endpoint.length !== 1) throw new Error(`FlightInfo: ${info.endpoint.length} endpoints`);
    const got = await this.doGet(info.endpoint[0].ticket, headers);
    return { info, schema: decodeIpcSchema(info.schema), ...got };
  }

  /** Runs one SQL query: CommandStatementQuery, then DoGet. */
  query(sql, headers) {
    return this.fetch('CommandStatementQuery', { query: sql }, headers);
  }

  /** DoAction: the Result bodies. */
  async doAction(type, body, headers) {
    const { messages } = await this.serverStream('DoAction', { type, body }, headers);
    return messages.map((r) => r.body);
  }

  async listActions(headers) {
    const { messages } = await this.serverStream('ListActions', {}, headers);
    return messages;
  }

  /** DoPut: writes the FlightData messages, half-closes, collects the
   * PutResults. */
  doPut(messages, headers, deadlineMs = 30000) {
    return new Promise((resolve, reject) => {
      const call = this.raw.DoPut(this.md(headers), { deadline: Date.now() + deadlineMs });
      const results = [];
      call.on('data', (r) => results.push(r));
      call.on('error', reject);
      call.on('end', () => resolve(results));
      for (const m of messages) call.write(m);
      call.end();
    });
  }

  /** Handshake: one HandshakeRequest; resolves with the responses, the
   * response headers (initial metadata) and trailers. */
  handshake(headers, payload = Buffer.alloc(0)) {
    return new Promise((resolve, reject) => {
      const call = this.raw.Handshake(this.md(headers), { deadline: Date.now() + 10000 });
      const responses = [];
      let initial = null;
      let trailers = null;
      call.on('metadata', (m) => { initial = m; });
      call.on('status', (s) => { trailers = s.metadata; });
      call.on('data', (r) => responses.push(r));
      call.on('error', reject);
      call.on('end', () => setImmediate(() => resolve({ responses, headers: initial, trailers })));
      call.write({ protocol_version: 0, payload });
      call.end();
    });
  }

  /** CreatePreparedStatement: {handle, datasetSchema, parameterSchema}
   * (schemas decoded, or null when empty). */
  async prepare(sql, headers) {
    const bodies = await this.doAction('CreatePreparedStatement',
      packAny('ActionCreatePreparedStatementRequest', { query: sql }), headers);
    if (bodies.length !== 1) throw new Error(`CreatePreparedStatement: ${bodies.length} results`);
    const r = unpackAny('ActionCreatePreparedStatementResult', bodies[0]);
    return {
      handle: r.prepared_statement_handle,
      rawDatasetSchema: r.dataset_schema,
      rawParameterSchema: r.parameter_schema,
      datasetSchema: r.dataset_schema.length ? decodeIpcSchema(r.dataset_schema) : null,
      parameterSchema: r.parameter_schema.length ? decodeIpcSchema(r.parameter_schema) : null,
    };
  }

  /** Binds parameters (columns: {name: Vector}, one row a parameter set)
   * with DoPut; returns the PutResults' DoPutPreparedStatementResult. */
  async bind(handle, columns, headers) {
    const msgs = batchMessages(columns);
    const desc = cmdDescriptor(packAny('CommandPreparedStatementQuery', { prepared_statement_handle: handle }));
    const flight = msgs.map((m, i) => ({
      flight_descriptor: i === 0 ? desc : null,
      data_header: m.data_header,
      data_body: m.data_body,
      app_metadata: Buffer.alloc(0),
    }));
    const results = await this.doPut(flight, headers);
    return results.map((r) => (r.app_metadata.length
      ? decode('DoPutPreparedStatementResult', r.app_metadata) : {}));
  }

  async closePrepared(handle, headers) {
    return this.doAction('ClosePreparedStatement',
      packAny('ActionClosePreparedStatementRequest', { prepared_statement_handle: handle }), headers);
  }
}

module.exports = {
  grpc,
  arrow,
  FlightSqlClient,
  encode,
  decode,
  packAny,
  unpackAny,
  rawAny,
  cmdDescriptor,
  decodeIpcSchema,
  flightDataToIpc,
  ipcToFlightData,
  batchMessages,
  describeField,
  describeSchema,
  describeError,
  columnValues,
  exactValue,
  tableRows,
  EOS,
};

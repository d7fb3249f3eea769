// arrowjs_check.mjs - an independent decoder for our IPC streams: Apache
// Arrow for JavaScript reads the seed streams the encoder writes
// (tests/arrow/ipc_seeds.c) and checks their schemas and values.
//   ARROWJS_DIR=<dir with node_modules/apache-arrow> node arrowjs_check.mjs DIR
import { createRequire } from 'module';
import { readFileSync } from 'fs';

const require = createRequire(process.env.ARROWJS_DIR + '/');
const { tableFromIPC } = require('apache-arrow');
const dir = process.argv[2];
let failed = 0;
const json = (v) => JSON.stringify(v, (k, x) => typeof x === 'bigint' ? x.toString()
  : x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x);
function expect(what, got, want) {
  if (got !== want) {
    console.log(`FAIL ${what}: ${got} != ${want}`);
    failed++;
  }
}
function read(name) { return tableFromIPC(readFileSync(`${dir}/${name}`)); }

let t = read('sql-info.arrows');
expect('sql-info rows', t.numRows, 8);
expect('sql-info schema', t.schema.fields.map((f) => `${f.name}: ${f.type}`).join('; '),
  'info_name: Uint32; value: Union<Utf8 | Bool | Int64 | Int32 | List<Utf8> | ' +
  'Map<{key:Int32, value:List<Int32>}>>');
const values = [];
for (let r = 0; r < t.numRows; r++) values.push(json(t.get(r).toJSON()));
expect('sql-info values', values.join(' '),
  '{"info_name":0,"value":"tracelake"} {"info_name":1,"value":"0.1.0"} ' +
  '{"info_name":3,"value":true} {"info_name":507,"value":"4096"} ' +
  '{"info_name":504,"value":5} {"info_name":508,"value":["SELECT","FROM"]} ' +
  '{"info_name":517,"value":{"1":[2,3],"4":[],"5":null}} {"info_name":509,"value":[]}');

t = read('dictionary.arrows');
expect('dictionary batches', t.batches.length, 4);
const d = [];
for (let r = 0; r < t.numRows; r++) d.push(t.get(r).d);
expect('dictionary values', json(d),
  '["a","bb",null,"",null,"xyz","",null,"a","bb","",null,"xyz",""]');

t = read('schema-only.arrows');
expect('schema-only rows', t.numRows, 0);
expect('schema-only fields', t.schema.fields.length, 2);

t = read('all-types-9.arrows');
expect('all-types rows', t.numRows, 9);
expect('all-types fields', t.schema.fields.length, 45);
const row = t.get(1).toJSON();
expect('utf8', row.utf8, 'text "4"\né');
expect('fsb', json(row.fsb3), '"0405ff"');
expect('timestamp zone', String(t.schema.fields.find((f) => f.name === 't_7').type),
  'Timestamp<MILLISECOND, Europe/Paris>');
expect('list', json(row.large_list), '["item 4.0","item 4.1"]');
expect('map', json(row.map), '{"k0":"4"}');
expect('struct', json(row.struct), '{"x":"4","y":"y4"}');
expect('dense union', json(row.dense_union), '"s"');
expect('sparse union', row.sparse_union, 4.5);
expect('null row', json(t.get(2).toJSON().struct), 'null');
console.log(failed ? `${failed} failed` : 'arrow-js read every stream');
process.exit(failed ? 1 : 0);

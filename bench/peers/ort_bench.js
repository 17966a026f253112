#!/usr/bin/env node
// ort_bench.js - the ONNX Runtime (CPU) peer of `inferlab bench`.
//
// One invocation is one measurement; the harness (bench/peers.c) spawns it, reads one JSON
// object from stdout and stores the run with engine='onnxruntime'. The scheduling mirrors
// bench/scenario.c: warm-up excluded, then single-stream / multi-stream / offline issue queries
// back to back until both --min-seconds and --min-queries are reached (or --max-queries), and
// server draws Poisson arrivals at --qps, measuring latency from each query's arrival.
//
//   node ort_bench.js --model M.onnx --threads T --batch B --input NAME=FILE.npy ...
//        --scenario S --warmup N --min-seconds S --min-queries N --max-queries N --qps Q --spq K --seed S
//   node ort_bench.js --model M.onnx --threads T --batch B --input ... --eval-in X.npy --eval-out Y.npy
//
// Output: {"engine":"onnxruntime","version":"...","latencies_ms":[...],"seconds":s,"samples":n,
//          "peak_host_bytes":b,"peak_device_bytes":null}   or {"error":"..."} and exit 1.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  process.stdout.write(JSON.stringify({ error: String(msg) }) + '\n');
  process.exit(1);
}

function loadOrt() {
  // node_modules of the repository (installed by `make deps`), wherever we are started from
  const tries = ['onnxruntime-node', path.join(__dirname, '..', '..', 'node_modules', 'onnxruntime-node')];
  for (const t of tries) {
    try { return { ort: require(t), version: require(t + '/package.json').version }; } catch (e) { /* next */ }
  }
  fail('onnxruntime-node is not installed (run `make deps`)');
}

function parseArgs(argv) {
  const a = { inputs: [], threads: 1, batch: 1, warmup: 5, minSeconds: 1, minQueries: 64, maxQueries: 0,
              qps: 50, spq: 8, seed: 1, scenario: null, evalIn: null, evalIns: [], evalOut: null, device: 'cpu' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (v === undefined) fail(`${k} needs a value`);
    i++;
    switch (k) {
      case '--model': a.model = v; break;
      case '--threads': a.threads = parseInt(v, 10); break;
      case '--batch': a.batch = parseInt(v, 10); break;
      case '--device': a.device = v; break;
      case '--input': a.inputs.push(v); break;
      case '--scenario': a.scenario = v; break;
      case '--warmup': a.warmup = parseInt(v, 10); break;
      case '--min-seconds': a.minSeconds = parseFloat(v); break;
      case '--min-queries': a.minQueries = parseInt(v, 10); break;
      case '--max-queries': a.maxQueries = parseInt(v, 10); break;
      case '--qps': a.qps = parseFloat(v); break;
      case '--spq': a.spq = parseInt(v, 10); break;
      case '--seed': a.seed = parseInt(v, 10); break;
      case '--eval-in': a.evalIn = v; a.evalIns.push(v); break;
      case '--eval-out': a.evalOut = v; break;
      default: fail(`unknown option ${k}`);
    }
  }
  if (!a.model) fail('--model is required');
  if (a.device !== 'cpu') fail(`ONNX Runtime peer runs on the CPU only (asked for ${a.device})`);
  return a;
}

// ---- .npy (version 1/2, little-endian, C order)
const DTYPES = { '<f4': ['float32', Float32Array], '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
                 '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array], '|i1': ['int8', Int8Array] };

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', off, off + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header)) fail(`${file}: unsupported .npy header ${header}`);
  const dt = DTYPES[descr[1]];
  if (!dt) fail(`${file}: unsupported dtype ${descr[1]}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const data = buf.subarray(off + hlen);
  const copy = new Uint8Array(data.length); // aligned copy for the typed array view
  copy.set(data);
  return { type: dt[0], dims, data: new dt[1](copy.buffer) };
}

function writeNpy(file, data, dims) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

// xorshift64* as in engine/tensor.c, so a seed means the same kind of stream on both sides
function rng(seed) {
  let s = BigInt.asUintN(64, BigInt(seed) * 0x9E3779B97F4A7C15n + 7n) || 0x1234567n;
  return () => {
    s ^= s >> 12n; s = BigInt.asUintN(64, s ^ (s << 25n)); s ^= s >> 27n;
    const r = BigInt.asUintN(64, s * 0x2545F4914F6CDD1Dn);
    return Number(r >> 11n) / 9007199254740992;
  };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function sleepUntil(t) {
  const left = t - now();
  if (left > 0.002) await new Promise((r) => setTimeout(r, (left - 0.001) * 1e3));
  while (now() < t) { /* spin the last stretch: timers are coarse */ }
}

async function measure(a, session, feeds) {
  const spq = a.scenario === 'multi-stream' ? a.spq : a.batch;
  const runs = Math.ceil(spq / a.batch);
  const query = async () => { for (let i = 0; i < runs; i++) await session.run(feeds); };
  // warm-up until steady, as bench/scenario.c: at least --warmup queries and 0.1 s, then until
  // the medians of the last two windows of 8 latencies are within 5%, at most 2 s
  const w0 = now(), ring = [];
  const med8 = (x) => { const c = [...x].sort((p, q) => p - q); return (c[3] + c[4]) / 2; };
  for (let i = 0; a.warmup > 0; i++) {
    const t0 = now();
    await query();
    const t1 = now();
    ring.push(t1 - t0);
    if (ring.length > 16) ring.shift();
    if (i + 1 < a.warmup || t1 - w0 < 0.1 || ring.length < 16) continue;
    const older = med8(ring.slice(0, 8)), newer = med8(ring.slice(8));
    if (Math.abs(older - newer) <= 0.05 * newer || t1 - w0 >= 2.0) break;
  }
  const lat = [];
  const start = now();
  let end = start;
  if (a.scenario !== 'server') {
    for (;;) {
      const t0 = now();
      await query();
      const t1 = now();
      lat.push((t1 - t0) * 1e3);
      end = t1;
      if (a.maxQueries > 0 && lat.length >= a.maxQueries) break;
      if (lat.length >= a.minQueries && end - start >= a.minSeconds) break;
    }
  } else {
    if (!(a.qps > 0)) fail('server scenario: --qps must be > 0');
    const u = rng(a.seed);
    const giveUp = start + 3 * Math.max(a.minSeconds, 0.2);
    let arrival = start;
    for (;;) {
      arrival += -Math.log(1 - u()) / a.qps;
      if (now() < arrival) await sleepUntil(arrival);
      await query();
      const t1 = now();
      lat.push((t1 - arrival) * 1e3);
      end = t1;
      if (a.maxQueries > 0 && lat.length >= a.maxQueries) break;
      if (lat.length >= a.minQueries && arrival - start >= a.minSeconds) break;
      if (t1 > giveUp) break;
    }
  }
  return { lat, seconds: end - start, samples: lat.length * spq };
}

// --eval-in X.npy (the single input) or --eval-in NAME=X.npy per input: every array [n, ...];
// output 0 for the n samples, in batches of --batch, goes to --eval-out.
async function evaluate(a, ort, session, outputName) {
  const xs = {};
  for (const spec of a.evalIns) {
    const eq = spec.indexOf('=');
    if (eq < 0 && session.inputNames.length !== 1) fail('--eval-in FILE needs a single-input model: give NAME=FILE');
    xs[eq < 0 ? session.inputNames[0] : spec.slice(0, eq)] = readNpy(eq < 0 ? spec : spec.slice(eq + 1));
  }
  for (const name of session.inputNames) if (!xs[name]) fail(`--eval-in: no file for input ${name}`);
  const n = xs[session.inputNames[0]].dims[0], B = a.batch;
  let out = null, perOut = 0, outDims = null;
  for (let s = 0; s < n; s += B) {
    const feeds = {};
    for (const name of session.inputNames) {
      const x = xs[name], per = x.data.length / n;
      const chunk = new x.data.constructor(B * per);
      for (let j = 0; j < B; j++) { // pad the last batch with the last sample; its outputs are dropped
        const src = Math.min(s + j, n - 1);
        chunk.set(x.data.subarray(src * per, (src + 1) * per), j * per);
      }
      feeds[name] = new ort.Tensor(x.type, chunk, [B, ...x.dims.slice(1)]);
    }
    const res = await session.run(feeds);
    const y = res[outputName];
    if (!out) {
      perOut = y.data.length / B;
      outDims = [n, ...y.dims.slice(1)];
      out = new Float32Array(n * perOut);
    }
    for (let j = 0; j < B && s + j < n; j++) {
      for (let k = 0; k < perOut; k++) out[(s + j) * perOut + k] = Number(y.data[j * perOut + k]);
    }
  }
  writeNpy(a.evalOut, out, outDims);
}

async function main() {
  const a = parseArgs(process.argv);
  const { ort, version } = loadOrt();
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', executionProviders: ['cpu'],
  });
  if (a.evalIn) {
    await evaluate(a, ort, session, session.outputNames[0]);
    process.stdout.write(JSON.stringify({ engine: 'onnxruntime', version }) + '\n');
    return;
  }
  const feeds = {};
  for (const spec of a.inputs) {
    const eq = spec.indexOf('=');
    if (eq < 0) fail(`--input expects NAME=FILE, got ${spec}`);
    const t = readNpy(spec.slice(eq + 1));
    feeds[spec.slice(0, eq)] = new ort.Tensor(t.type, t.data, t.dims);
  }
  const m = await measure(a, session, feeds);
  // maxRSS now, before anything else grows the process: the figure is running the model
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ engine: 'onnxruntime', version, latencies_ms: m.lat, seconds: m.seconds,
                                        samples: m.samples, peak_host_bytes: peak, peak_device_bytes: null }) + '\n');
}

main().catch((e) => fail(e && e.message ? e.message : e));

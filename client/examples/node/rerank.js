#!/usr/bin/env node
// Rerank documents against a crossrank worker from Node.js and print the ranking.
//
//   npm ci
//   node rerank.js [--target ADDR] [--top-k N] [--stream] [--json] QUERY DOCUMENT [DOCUMENT...]
//   node rerank.js --help          # every option
//
// The target comes from --target, else $CROSSRANK_WORKER_TARGET, else localhost:50051; a bearer
// token from $CROSSRANK_AUTH_TOKEN (never from argv, where other users of the machine could read
// it) and a TLS CA certificate from --ca-cert or $CROSSRANK_TLS_CA: the Python CLI's variables.
//
// The .proto is loaded at run time, so nothing is generated or committed. The worker's Info is
// called first, then Rerank (or RerankStream), each with a deadline. Exit status: 0 on success,
// 1 when a call fails (the gRPC status name and message go to stderr), 2 for bad arguments.

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'protos');
const USAGE = 'usage: node rerank.js [--target ADDR] [--top-k N] [--timeout SECS] [--ca-cert FILE] '
  + '[--stream] [--json] [--proto DIR] QUERY DOCUMENT [DOCUMENT...]';
const HELP = `${USAGE}

Rerank DOCUMENTs against QUERY on a crossrank worker and print them best first.

  --target ADDR    host:port or dns:///name:port ($CROSSRANK_WORKER_TARGET, else localhost:50051)
  --top-k N        return the N best documents; 0 returns all (default 0)
  --timeout SECS   deadline of each call ($CROSSRANK_TIMEOUT, else 60)
  --ca-cert FILE   PEM CA certificate: connect with TLS ($CROSSRANK_TLS_CA)
  --stream         use the RerankStream call instead of Rerank
  --json           print one JSON object instead of a table
  --proto DIR      directory holding crossrank/v1/reranker.proto (default ${PROTO_ROOT})

A bearer token comes from $CROSSRANK_AUTH_TOKEN.
`;

class UsageError extends Error {}

function loadReranker(protoRoot) {
  const definition = protoLoader.loadSync('crossrank/v1/reranker.proto', {
    includeDirs: [protoRoot],
    keepCase: true, // field names as in the .proto: top_k, return_documents, request_id
    longs: Number, // Usage.tokens and the uint64 limits of Info; far below 2^53
    enums: String,
    defaults: true, // unset fields read as 0, '' or false, as in every other proto3 client
  });
  return grpc.loadPackageDefinition(definition).crossrank.v1.Reranker;
}

function channelCredentials(caCert) {
  return caCert ? grpc.credentials.createSsl(fs.readFileSync(caCert)) : grpc.credentials.createInsecure();
}

// The token goes as call metadata rather than call credentials: grpc-js attaches call credentials
// to TLS channels only, and a worker may want a token without serving TLS.
function callMetadata() {
  const metadata = new grpc.Metadata();
  const token = process.env.CROSSRANK_AUTH_TOKEN;
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: 'string', default: process.env.CROSSRANK_WORKER_TARGET || 'localhost:50051' },
        'top-k': { type: 'string', default: '0' },
        timeout: { type: 'string', default: process.env.CROSSRANK_TIMEOUT || '60' },
        'ca-cert': { type: 'string', default: process.env.CROSSRANK_TLS_CA || '' },
        stream: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        proto: { type: 'string', default: PROTO_ROOT },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  if (positionals.length < 2) throw new UsageError('give a query and at least one document');
  if (values.target.includes(',')) {
    // grpc-js balances over the addresses of one name (dns:///name:port), not over a list.
    throw new UsageError(`give one address or a dns:/// name, not a list: ${values.target}`);
  }
  const topK = Number(values['top-k']);
  if (!Number.isInteger(topK) || topK < 0) throw new UsageError(`--top-k wants an integer >= 0, not ${values['top-k']}`);
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) throw new UsageError(`--timeout wants seconds > 0, not ${values.timeout}`);
  return {
    target: values.target,
    caCert: values['ca-cert'],
    topK,
    timeoutMs: timeout * 1000,
    stream: values.stream,
    json: values.json,
    protoRoot: values.proto,
    query: positionals[0],
    documents: positionals.slice(1),
  };
}

// A unary call as a promise, with its own deadline: without one a call to a stuck worker waits forever.
function unary(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    client[method](request, callMetadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err) reject(err);
      else resolve(response);
    });
  });
}

// Many requests over one RerankStream. Responses arrive in completion order, not in the order the
// requests were written, so they are matched back by request_id. A request that failed comes back
// with `error` set (a google.rpc.Code value and a message) while the stream goes on; a failure of
// the whole stream (deadline, token, worker gone) ends it with an 'error' event instead.
function rerankStream(client, requests, timeoutMs) {
  return new Promise((resolve, reject) => {
    const responses = new Map();
    const call = client.RerankStream(callMetadata(), { deadline: Date.now() + timeoutMs });
    call.on('data', (response) => responses.set(response.request_id, response));
    call.on('error', reject);
    call.on('end', () => {
      const missing = requests.filter((r) => !responses.has(r.request_id)).map((r) => r.request_id);
      if (missing.length) reject(new Error(`stream ended without responses for ${missing.join(', ')}`));
      else resolve(requests.map((r) => responses.get(r.request_id)));
    });
    for (const request of requests) call.write(request);
    call.end(); // half-close: no more requests; the worker ends the stream once all are answered
  });
}

function streamError(response) {
  const err = new Error(response.error.message);
  err.code = response.error.code; // the same codes as grpc.status
  err.details = response.error.message;
  return err;
}

async function run(options) {
  const Reranker = loadReranker(options.protoRoot);
  const client = new Reranker(options.target, channelCredentials(options.caCert), {
    // Spread calls over every address a dns:/// name resolves to, as the Python client does.
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    // Big candidate lists with return_documents: allow what the Python client allows.
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  try {
    const info = await unary(client, 'Info', {}, options.timeoutMs);
    const request = {
      request_id: `node-${process.pid}-${Date.now()}`, // shows in the worker's logs
      query: options.query,
      documents: options.documents,
      top_k: options.topK,
      return_documents: true,
    };
    let response;
    if (options.stream) {
      [response] = await rerankStream(client, [request], options.timeoutMs);
      if (response.error && response.error.code !== 0) throw streamError(response);
    } else {
      response = await unary(client, 'Rerank', request, options.timeoutMs);
    }
    return { info, response };
  } finally {
    client.close();
  }
}

function printTable(options, info, response) {
  const out = [];
  out.push(`worker ${options.target}: ${info.model} on ${info.device} (${info.backend}, ${info.dtype}), `
    + `crossrank ${info.version}, at most ${info.max_documents_per_request} documents per request`);
  out.push(`query: ${options.query}`);
  out.push('rank  score     index  document');
  response.results.forEach((r, i) => {
    out.push(`${String(i + 1).padStart(4)}  ${r.score.toFixed(6).padStart(8)}  ${String(r.index).padStart(5)}  ${r.document}`);
  });
  const u = response.usage || {};
  out.push(`${u.pairs} pairs, ${u.tokens} tokens, queued ${Number(u.queue_ms).toFixed(1)} ms, `
    + `inference ${Number(u.inference_ms).toFixed(1)} ms`);
  process.stdout.write(`${out.join('\n')}\n`);
}

function printJson(options, info, response) {
  const output = {
    target: options.target,
    query: options.query,
    call: options.stream ? 'RerankStream' : 'Rerank',
    request_id: response.request_id,
    model: response.model,
    info,
    results: response.results.map((r, i) => ({ rank: i + 1, index: r.index, score: r.score, document: r.document })),
    usage: response.usage,
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

async function main() {
  let options;
  try {
    options = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`rerank.js: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  try {
    const { info, response } = await run(options);
    (options.json ? printJson : printTable)(options, info, response);
  } catch (err) {
    // gRPC errors carry a status a person can act on: UNAVAILABLE (is the worker up at --target?),
    // UNAUTHENTICATED (CROSSRANK_AUTH_TOKEN), INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED.
    const status = typeof err.code === 'number' && grpc.status[err.code] ? `${grpc.status[err.code]} ` : '';
    process.stderr.write(`rerank.js: ${status}from ${options.target}: ${err.details || err.message}\n`);
    process.exit(1);
  }
}

main();

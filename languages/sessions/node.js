// airlock session driver for Node.js.
//
// Runs inside the sandbox as `/usr/bin/node -e <this file>`, cwd /workspace;
// reads cells on fd 3 and answers on fd 4 (protocol: languages/sessions/README.md).
// Each cell is a script run in this context (vm.runInThisContext): top-level
// let/const/function/class stay between cells (a second `let x` is a
// SyntaxError, as in a script), and the cell's completion value is the
// result (util.inspect as text/plain; undefined shows nothing; a Promise is
// awaited first, so `(async () => { ... })()` is the way to await).
// Timers and promises keep running between cells.  process.exit() in a
// cell ends the session.
//
// `node -e` runs this file as a script, whose top-level let/const/function
// would share the global scope with the cells' (a cell's `const fs =
// require('fs')` was a SyntaxError, `count = 0` reset the driver's
// counter): the driver's own names live in this function, not indented.
(() => {
'use strict';
const fs = require('fs');
const vm = require('vm');
const util = require('util');
const Module = require('module');

const REQ_FD = 3; // requests from the supervisor
const REP_FD = 4; // replies to the supervisor
// The supervisor refuses a reply over 16 MiB (AL_SESSION_FRAME_MAX); the
// driver stays 64 KiB under it.
const REPLY_MAX = 16 * 1024 * 1024 - 64 * 1024;
// A request header is `X <seq> <nbytes>\n`: two 20-digit numbers fit.
const HEADER_MAX = 64;

// cells see a require() that resolves from the working directory, like a
// script in it
globalThis.require = Module.createRequire(process.cwd() + '/');

let count = 0;
let busy = false;
let buf = Buffer.alloc(0);
const queue = [];

function die(msg) {
  try {
    fs.writeSync(2, `airlock session driver: ${msg}\n`);
  } finally {
    process.exit(2);
  }
}

function send(obj) {
  let body = Buffer.from(JSON.stringify(obj), 'utf8');
  if (body.length > REPLY_MAX) {
    // drop what does not fit; never send what the supervisor refuses
    obj.results = [{type: 'display_data', data: {'text/plain':
      `[airlock: a result of ${body.length} bytes was dropped: a reply is capped at ${REPLY_MAX} bytes]`}}];
    if (obj.error) {
      obj.error.value = String(obj.error.value).slice(0, 65536);
      obj.error.traceback = obj.error.traceback.slice(0, 200).map((l) => l.slice(0, 4096));
    }
    body = Buffer.from(JSON.stringify(obj), 'utf8');
  }
  let data = Buffer.concat([Buffer.from(`${body.length}\n`, 'ascii'), body]);
  while (data.length) {
    let n;
    try {
      n = fs.writeSync(REP_FD, data);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      die(`writing a reply: ${e.message}`);
    }
    data = data.subarray(n);
  }
}

// JSON cannot carry lone surrogates to the supervisor's parser, nor U+0000
function clean(s) {
  return String(s).replace(/\0/g, '\ufffd').replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

function errorOf(e, fname) {
  let name = 'Error';
  let value;
  let stack;
  if (e instanceof Error || (e && typeof e === 'object' && 'stack' in e)) {
    name = e.name || 'Error';
    value = e.message === undefined ? '' : String(e.message);
    stack = String(e.stack || `${name}: ${value}`).split('\n');
    // the frames after the cell's are the driver's and vm's
    let last = -1;
    stack.forEach((l, i) => {
      if (l.includes('<cell ')) last = i;
    });
    if (last >= 0) stack = stack.slice(0, last + 1);
    else stack = stack.filter((l) => !/^\s+at /.test(l) || !/node:vm|\[eval\]/.test(l));
    if (e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') name = 'KeyboardInterrupt';
  } else {
    // `throw 42`
    value = util.inspect(e);
    stack = [`Uncaught ${value}`];
  }
  return {name: clean(name), value: clean(value), traceback: stack.map(clean)};
}

async function runCell(seq, code) {
  count += 1;
  const n = count;
  const fname = `<cell ${n}>`;
  const reply = {type: 'result', seq, status: 'ok', execution_count: n, results: []};
  try {
    // breakOnSigint: a SIGINT to the session interrupts a cell that loops
    let value = vm.runInThisContext(code, {filename: fname, breakOnSigint: true});
    if (value && typeof value.then === 'function') value = await value;
    if (value !== undefined) {
      reply.results.push({type: 'execute_result', data: {'text/plain': clean(util.inspect(value))}});
    }
  } catch (e) {
    reply.status = 'error';
    reply.error = errorOf(e, fname);
  }
  send(reply);
}

// Request R: the code as a program, the last thing this process does, as
// `node /workspace/main.js` runs it (a module of its own, require,
// process.argv). The channel (fds 3 and 4) is closed first, so the code
// holds nothing back to the supervisor, and the driver's handlers go:
// an uncaught error prints and exits 1, SIGINT ends it, the exit code is
// the program's, and the supervisor reads it from the sandbox's end.
function runProgram(code) {
  // the request stream first: a read still pending on fd 3 ends quietly
  for (const ev of ['data', 'end', 'error']) input.removeAllListeners(ev);
  input.on('error', () => {});
  input.destroy();
  for (const fd of [REQ_FD, REP_FD]) {
    try { fs.closeSync(fd); } catch (_) {}
  }
  for (const ev of ['SIGINT', 'uncaughtException', 'unhandledRejection']) process.removeAllListeners(ev);
  const Module = require('module');
  const file = '/workspace/main.js';
  const m = new Module(file, null);
  m.filename = file;
  m.paths = Module._nodeModulePaths('/workspace');
  process.argv = [process.argv[0], file];
  process.mainModule = m;
  // from a fresh stack, as node starts a main module
  setImmediate(() => m._compile(code, file));
}

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const [kind, seq, code] = queue.shift();
    if (kind === 'R') {
      queue.length = 0;
      runProgram(code);
      return;
    }
    await runCell(seq, code);
  }
  busy = false;
}

function parse() {
  for (;;) {
    const i = buf.indexOf(10);
    if (i < 0) {
      if (buf.length > HEADER_MAX) die(`protocol: request header over ${HEADER_MAX} bytes`);
      return;
    }
    if (i > HEADER_MAX) die(`protocol: request header over ${HEADER_MAX} bytes`);
    const m = /^([XR]) (\d+) (\d+)$/.exec(buf.subarray(0, i).toString('latin1'));
    if (!m) die(`protocol: bad request header ${JSON.stringify(buf.subarray(0, i).toString('latin1'))}`);
    const n = Number(m[3]);
    if (buf.length < i + 1 + n) return;
    queue.push([m[1], Number(m[2]), buf.subarray(i + 1, i + 1 + n).toString('utf8')]);
    buf = buf.subarray(i + 1 + n);
  }
}

// a Ctrl-C for the session between cells is dropped; during a cell
// breakOnSigint turns it into an error
process.on('SIGINT', () => {});
// an error thrown later by a timer or a promise of an earlier cell is the
// user's output, not the end of the session (as in the REPL)
process.on('uncaughtException', (e) => {
  try {
    process.stderr.write(`Uncaught ${util.inspect(e)}\n`);
  } catch (_) {}
});
process.on('unhandledRejection', (e) => {
  try {
    process.stderr.write(`Unhandled rejection ${util.inspect(e)}\n`);
  } catch (_) {}
});

let input;
try {
  input = fs.createReadStream(null, {fd: REQ_FD, autoClose: false, highWaterMark: 65536});
} catch (e) {
  die(`fd ${REQ_FD}: ${e.message}`);
}
input.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  parse();
  pump();
});
input.on('end', () => process.exit(0)); // the supervisor closed the channel
input.on('error', (e) => die(`reading requests: ${e.message}`));
send({type: 'ready', protocol: 1, language: 'node', version: process.versions.node});
})();

'use strict';
/*
 * The Node.js worker: runs inside the sandbox and serves calls of one hook
 * version, speaking the same frames as the Python worker (runtime/worker.py,
 * runtime/protocol.py): a 4-byte big-endian length, then UTF-8 JSON.
 *
 * It is already confined when this file runs: confine.c, preloaded, set its
 * resource limits, handed its loopback listener to the egress broker, closed
 * every other descriptor and installed the seccomp filter before Node started.
 *
 * Start-up: read the `load` frame, compile the hook as a CommonJS module named
 * hook.js, find the first entry it defines (Actions: `exports.onExecuteX`;
 * Hooks: `module.exports = function (..., cb)`), answer `ready` or `load_error`.
 * Then for each `invoke` frame run the function and answer `result` or `error`,
 * with console lines sent as `log` frames while it runs.
 */

const fs = require('fs');
const http = require('http');
const https = require('https');
const net = require('net');
const path = require('path');
const util = require('util');
const vm = require('vm');
const Module = require('module');

const FILENAME = 'hook.js';
const FRAMES_OUT = Number(process.argv[2]); // the frame pipe, as the Python worker has it
const DEPENDENCIES = '/opt/authhooks-deps';
// The worker's own files (this one, its proxy agents): no stack trace shows them.
const OWN_FILES = `${__dirname}/`;
const MAX_TEXT = 4000;
const REDACTION_ROOM = 4096;
const MAX_TRACEBACK_LINES = 50;
// The server refuses a frame nested deeper (runtime/protocol.py, MAX_DEPTH), and
// the worker that sent it: a result that deep is a bad result, said as one.
const MAX_DEPTH = 64;
// Where an error's causes are followed, for its message.
const MAX_CAUSES = 3;
// Kept for the worker: a hook that calls process.exit ends its worker, as Python's os._exit does.
const exit = process.exit.bind(process);
// Node's own modules a hook may require. Those that start processes or threads,
// open a debugger or load native code are left out; what is left out but reached
// another way gains nothing: seccomp refuses new processes, and addons are off.
const BUILTINS = new Set([
  'assert', 'buffer', 'crypto', 'dns', 'events', 'fs', 'http', 'https', 'net', 'os', 'path',
  'perf_hooks', 'punycode', 'querystring', 'readline', 'stream', 'string_decoder', 'timers',
  'tls', 'url', 'util', 'zlib',
  'assert/strict', 'dns/promises', 'fs/promises', 'path/posix', 'stream/promises',
  'stream/web', 'timers/promises', 'util/types',
]);
const REFUSED = new Set([
  'child_process', 'cluster', 'worker_threads', 'inspector', 'v8', 'vm', 'module', 'repl',
  'trace_events', 'wasi',
]);

// --- errors a hook raises on purpose (authhooks.hook in Python) --------------------------

class HookError extends Error {
  constructor(message, userMessage) {
    super(message === undefined ? '' : String(message));
    this.name = this.constructor.name;
    this.userMessage = userMessage === undefined ? null : userMessage;
  }
}
HookError.code = 'access_denied';
class InvalidRequestError extends HookError {}
InvalidRequestError.code = 'invalid_request';
class InvalidScopeError extends HookError {}
InvalidScopeError.code = 'invalid_scope';
class ServerError extends HookError {}
ServerError.code = 'server_error';
class PreUserRegistrationError extends HookError {}
PreUserRegistrationError.code = 'access_denied';
// Auth0 Rules' refusal of a sign-in: honoured by post-login only.
class UnauthorizedError extends HookError {
  constructor(message) { super(message); }
}
UnauthorizedError.code = 'access_denied';
const HOOK_ERRORS = {
  HookError, InvalidRequestError, InvalidScopeError, ServerError, PreUserRegistrationError,
  UnauthorizedError,
};

// --- frames ------------------------------------------------------------------------------

function send(message) {
  writeFrame(JSON.stringify(message));
}

// One frame: the length, then the JSON text encoded in place, written at once.
function writeFrame(text, bytes = Buffer.byteLength(text)) {
  const frame = Buffer.allocUnsafe(4 + bytes);
  frame.writeUInt32BE(bytes, 0);
  frame.write(text, 4, 'utf8');
  let written = 0;
  while (written < frame.length) {
    written += fs.writeSync(FRAMES_OUT, frame, written, frame.length - written);
  }
}

function frames(onMessage) {
  let buffer = Buffer.alloc(0);
  // A socket, not fs.createReadStream: a pipe read as a stream is read by libuv's
  // thread pool, two thread hand-overs per call; a socket is read by the event loop
  // itself, when epoll says there is something (a third of a call's CPU).
  const input = new net.Socket({ fd: 0, readable: true, writable: false });
  input.on('data', (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0);
      if (buffer.length < 4 + length) break;
      const body = buffer.subarray(4, 4 + length).toString('utf8');
      buffer = buffer.subarray(4 + length);
      onMessage(JSON.parse(body));
    }
  });
  input.on('end', () => exit(0)); // the supervisor closed the pipe: retire quietly
}

// --- the console -------------------------------------------------------------------------

let call = null; // the call running: {id, lines, dropped}
let limits = { lines: 200, line_chars: 2000, result_bytes: 1 << 20 };

function writeLines(stream, text) {
  if (call === null) return; // written outside any call (a timer left running): dropped
  for (const line of String(text).split('\n')) {
    if (call.lines >= limits.lines) {
      call.dropped += 1;
      continue;
    }
    call.lines += 1;
    const cut = line.slice(0, limits.line_chars + REDACTION_ROOM).toWellFormed();
    send({ op: 'log', id: call.id, stream, line: cut });
  }
}

function installConsole() {
  const out = (...args) => writeLines('stdout', util.format(...args));
  const err = (...args) => writeLines('stderr', util.format(...args));
  for (const name of ['log', 'info', 'debug']) console[name] = out;
  for (const name of ['warn', 'error']) console[name] = err;
  console.trace = (...args) => {
    const trace = { name: 'Trace', message: util.format(...args) };
    Error.captureStackTrace(trace, console.trace);
    err(trace.stack);
  };
  console.dir = (value, options) => out(util.inspect(value, { customInspect: false, ...options }));
  // What console.table, console.group and the like write, and process.stdout.write.
  const stream = (write) => (chunk, encoding, callback) => {
    const text = Buffer.isBuffer(chunk) || chunk instanceof Uint8Array
      ? Buffer.from(chunk).toString('utf8') : String(chunk);
    write(text.replace(/\n$/, ''));
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
  process.stdout.write = stream(out);
  process.stderr.write = stream(err);
}

// --- outbound HTTP: through the egress broker --------------------------------------------

function useProxy() {
  const url = process.env.HTTP_PROXY;
  if (!url) return;
  // Node honours no proxy variable by itself: every client goes through the broker
  // because the agents they default to do. axios would read the variables and send
  // HTTPS requests to the proxy in the clear, so they go once the agents are set.
  const { ProxyAgent, setGlobalDispatcher } = require('undici');
  const { HttpProxyAgent } = require('http-proxy-agent');
  const { HttpsProxyAgent } = require('https-proxy-agent');
  setGlobalDispatcher(new ProxyAgent(url)); // fetch()
  http.globalAgent = new HttpProxyAgent(url);
  https.globalAgent = new HttpsProxyAgent(url);
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) {
    delete process.env[name];
  }
}

// --- loading the hook --------------------------------------------------------------------

function hookRequire(declared) {
  const dependencies = fs.existsSync(DEPENDENCIES)
    ? Module.createRequire(path.join(DEPENDENCIES, 'package.json'))
    : null;
  return function require(name) {
    if (typeof name !== 'string') throw new TypeError('require() takes a module name');
    const bare = name.startsWith('node:') ? name.slice(5) : name;
    if (REFUSED.has(bare)) {
      throw new Error(`module '${bare}' is not available to hooks`);
    }
    if (BUILTINS.has(bare)) return require_(bare);
    // Webtask's habit: require('name@version') names the declared dependency.
    const at = name.lastIndexOf('@');
    let module = name;
    if (at > 0) {
      module = name.slice(0, at);
      const version = name.slice(at + 1);
      if (Object.hasOwn(declared, module) && declared[module] !== version) {
        throw new Error(
          `module '${module}@${version}' is not a dependency of this hook version: ` +
          `it declares ${module} ${declared[module]}`);
      }
    }
    const root = module.startsWith('@') ? module.split('/').slice(0, 2).join('/') : module.split('/')[0];
    if (!Object.hasOwn(declared, root) || dependencies === null
        || module.split('/').includes('..')) {
      throw new Error(
        `module '${module}' is not a dependency of this hook version: ` +
        'declare it in the hook\'s dependencies');
    }
    return dependencies(module);
  };
}

const require_ = require;

function compile(source, declared) {
  const module = { exports: {} };
  // As Node wraps a CommonJS module, but with no text added around the source, so
  // that errors name the hook's own lines.
  const run = vm.compileFunction(
    source, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: FILENAME });
  run.call(module.exports, module.exports, hookRequire(declared), module, FILENAME, '/');
  return module;
}

function findEntry(module, entries) {
  for (const entry of entries) {
    const found = entry.function === 'module.exports'
      ? module.exports
      : module.exports && module.exports[entry.function];
    if (typeof found === 'function') return { entry, fn: found };
  }
  const names = entries.map((entry) => entry.function === 'module.exports'
    ? 'module.exports = function (...)' : `exports.${entry.function}`);
  const none = names.length > 2 ? 'none of them' : 'neither';
  throw new LookupError(`the hook must define ${names.join(' or ')}; it defines ${none}`);
}

class LookupError extends Error {
  constructor(message) { super(message); this.name = 'LookupError'; }
}

// Stack traces as V8 writes them, without the worker's own frames: a hook's
// errors, and what it prints of them, show its own lines and Node's, and no
// path of the server's.
function prepareStackTrace(error, frames) {
  let head;
  try {
    head = Error.prototype.toString.call(error);
  } catch {
    head = 'Error';
  }
  const shown = frames.filter((frame) => !String(frame.getFileName() || '').startsWith(OWN_FILES));
  return head + shown.map((frame) => `\n    at ${frame}`).join('');
}

function hookLine(error) {
  const match = /hook\.js:(\d+)/.exec(String(error && error.stack));
  return match ? Number(match[1]) : null;
}

function traceback(error) {
  const lines = String((error && error.stack) || '').split('\n').slice(1);
  return lines
    .filter((line) => line.includes(FILENAME))
    .slice(0, MAX_TRACEBACK_LINES)
    .map((line) => cut(line.trim()));
}

function cut(text) {
  return String(text).slice(0, MAX_TEXT + REDACTION_ROOM).toWellFormed();
}

// --- calls -------------------------------------------------------------------------------

function camel(name) {
  return name.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase());
}

function apiRecorder(spec) {
  const calls = [];
  const api = {};
  for (const [namespace, methods] of Object.entries(spec)) {
    const object = {};
    for (const method of methods) {
      // Each returns the api, as Auth0's do: calls can be chained.
      object[camel(method)] = (...args) => {
        calls.push([namespace, method, args]);
        return frozen;
      };
    }
    api[camel(namespace)] = Object.freeze(object);
  }
  const frozen = Object.freeze(api);
  return { api: frozen, calls };
}

// An error's message, and its causes' (fetch's "fetch failed" says why only there).
function messageOf(error) {
  let message = error instanceof Error ? String(error.message) : String(error);
  let cause = error instanceof Error ? error.cause : undefined;
  for (let depth = 0; depth < MAX_CAUSES && cause !== undefined && cause !== null; depth += 1) {
    message += ` (cause: ${cause instanceof Error ? cause.message : String(cause)})`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return message;
}

function describe(error) {
  const hookError = error instanceof HookError;
  const message = hookError ? error.message : messageOf(error);
  const userMessage = hookError ? error.userMessage : null;
  return {
    type: cut((error && error.name) || (error && error.constructor && error.constructor.name) || 'Error'),
    code: hookError ? error.constructor.code : null,
    message: cut(message),
    user_message: typeof userMessage === 'string' ? cut(userMessage) : null,
    hook_error: hookError,
    traceback: traceback(error),
  };
}

// A lone surrogate can only reach JSON.stringify's output as an escape; no
// database stores one, and the server refuses a frame that holds one.
const LONE_SURROGATE = /(?:^|[^\\])(?:\\\\)*\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

function reply(id, value, calls, dropped) {
  let text;
  try {
    text = JSON.stringify({
      op: 'result', id, value: value === undefined ? null : value,
      ...(calls ? { calls } : {}), dropped_lines: dropped,
    });
  } catch (error) {
    return badResult(id, `the hook returned what cannot be sent back: ${error.message}`, dropped);
  }
  if (LONE_SURROGATE.test(text)) {
    return badResult(id, 'the hook returned a string that is not text (a lone surrogate)', dropped);
  }
  if (deeperThan(text, MAX_DEPTH)) {
    return badResult(id, `the hook returned what is nested deeper than ${MAX_DEPTH - 2} levels`, dropped);
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > limits.result_bytes) {
    return badResult(id, `the result is ${bytes} bytes; the limit is ${limits.result_bytes}`, dropped);
  }
  writeFrame(text, bytes);
  return undefined;
}

// Whether JSON text nests deeper than ``limit``: a walk of its brackets outside strings.
function deeperThan(text, limit) {
  if (text.length <= 2 * limit) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // a backslash: skip what it escapes
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return false;
}

function badResult(id, message, dropped) {
  send({ op: 'error', id, kind: 'bad_result', message: cut(message), dropped_lines: dropped });
}

function failed(id, error, dropped) {
  let described;
  try {
    if (error instanceof RangeError
        && /allocation failed|Array buffer allocation/i.test(String(error.message))) {
      send({ op: 'error', id, kind: 'out_of_memory', dropped_lines: dropped });
      return;
    }
    described = describe(error);
  } catch (_) { // a thrown object whose every reading throws (a hostile proxy, say)
    described = {
      type: 'Error', code: null, message: 'the hook threw what cannot be read',
      user_message: null, hook_error: false, traceback: [],
    };
  }
  send({ op: 'error', id, kind: 'raised', error: described, dropped_lines: dropped });
}

// What ends the running call when the hook's code throws where nobody catches
// it (in a timer, say) or leaves a promise rejected: null between calls, when
// such errors are dropped, as console lines are.
let uncaught = null;

function onUncaught(error) {
  if (uncaught !== null) uncaught(error);
}

function invoke(hook, message) {
  const id = message.id;
  call = { id, lines: 0, dropped: 0 };
  const current = call;
  let settled = false;
  const finish = (error, value, calls) => {
    if (settled || call !== current) return; // a second callback, or one after the call
    settled = true;
    call = null;
    uncaught = null;
    if (error !== undefined && error !== null) failed(id, error, current.dropped);
    else reply(id, value, calls, current.dropped);
  };
  uncaught = (error) => finish(error === undefined || error === null ? new Error(String(error)) : error);
  const fn = hook.fn; // called as a plain function: its frames read "at module.exports (hook.js:2:9)"
  try {
    const args = message.args || {};
    if (hook.entry.api) {
      const { api, calls } = apiRecorder(hook.entry.api);
      Promise.resolve(fn(args.event, api)).then(
        () => finish(null, null, calls), (error) => finish(error));
      return;
    }
    // Auth0 Hooks: positional arguments, then cb(error, result); or a promise.
    const values = Object.values(args);
    const context = values[values.length - 1];
    if (context && typeof context === 'object' && context.secrets) {
      context.webtask = { secrets: context.secrets };
    }
    const returned = fn(...values, (error, result) => finish(error, result));
    if (returned && typeof returned.then === 'function') {
      // As Webtask did: a function that takes the callback ends when it calls it
      // (an async one too, which may call it from a timer), or when its promise
      // rejects; one that does not take it ends with its promise.
      const takesCallback = fn.length > values.length;
      returned.then(
        (result) => { if (!takesCallback) finish(null, result); },
        (error) => finish(error));
    }
  } catch (error) {
    finish(error);
  }
}

// --- start -------------------------------------------------------------------------------

function main() {
  let hook = null;
  frames((message) => {
    if (message.op === 'load' && hook === null) {
      limits = message.limits;
      // Read already (libuv sized its thread pool when the first frame was read):
      // the hook's environment is the Python hook's.
      delete process.env.UV_THREADPOOL_SIZE;
      installConsole();
      useProxy();
      Object.assign(globalThis, HOOK_ERRORS);
      Error.prepareStackTrace = prepareStackTrace;
      process.on('uncaughtException', onUncaught);
      process.on('unhandledRejection', onUncaught);
      // What internal bindings would give (processes, raw handles) is refused by
      // seccomp anyway; a hook has no use for them.
      process.binding = process._linkedBinding = () => {
        throw new Error('process.binding is not available to hooks');
      };
      // Node's own modules, by the other way in: as require gives them.
      if (typeof process.getBuiltinModule === 'function') {
        const builtin = process.getBuiltinModule.bind(process);
        process.getBuiltinModule = (name) => {
          const bare = String(name).replace(/^node:/, '');
          if (REFUSED.has(bare)) throw new Error(`module '${bare}' is not available to hooks`);
          return builtin(name);
        };
      }
      try {
        const module = compile(message.source, message.dependencies || {});
        hook = findEntry(module, message.entries);
      } catch (error) {
        const syntax = error instanceof SyntaxError;
        send({
          op: 'load_error',
          type: cut(error && error.name ? error.name : 'Error'),
          line: hookLine(error),
          message: cut(syntax ? `${error.message} (hook.js, line ${hookLine(error)})` : String(error && error.message)),
        });
        return;
      }
      send({ op: 'ready', entry: hook.entry.function });
    } else if (message.op === 'invoke' && hook !== null) {
      invoke(hook, message);
    } else {
      exit(70); // a frame nobody should have sent
    }
  });
}

main();

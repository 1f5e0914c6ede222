// airlock: node reads no proxy variables by itself; a run with an
// allowlist (airlock run --allow-net) gets this file through
// NODE_OPTIONS=--require, so that http, https and fetch go through the
// run's proxy (HTTPS_PROXY / HTTP_PROXY, always http://127.0.0.1:3128):
// https by a CONNECT tunnel (TLS stays end to end), http by absolute
// URIs. Without the proxy there is no route out at all.
'use strict';
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');

const proxy = new URL(process.env.HTTPS_PROXY || process.env.HTTP_PROXY || 'http://127.0.0.1:3128');
const PHOST = proxy.hostname;
const PPORT = Number(proxy.port) || 3128;

// https: a socket tunnelled through CONNECT, then TLS to the origin
class TunnelAgent extends https.Agent {
  createConnection(opts, cb) {
    const host = opts.host || opts.hostname;
    const port = opts.port || 443;
    const raw = net.connect(PPORT, PHOST);
    let head = '';
    const onData = (d) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      raw.removeListener('data', onData);
      const status = Number(head.split(' ')[1]);
      if (status !== 200) {
        const e = new Error('airlock proxy refused CONNECT ' + host + ':' + port + ': ' + head.split('\r\n')[0]);
        e.code = 'EPROXYREFUSED';
        raw.destroy();
        return cb(e);
      }
      const sock = tls.connect({ socket: raw, servername: opts.servername || host, ALPNProtocols: ['http/1.1'], rejectUnauthorized: opts.rejectUnauthorized !== false, ca: opts.ca });
      cb(null, sock);
    };
    raw.on('data', onData);
    raw.on('error', (e) => cb(e));
    raw.write('CONNECT ' + host + ':' + port + ' HTTP/1.1\r\nHost: ' + host + ':' + port + '\r\n\r\n');
  }
}
const tunnel = new TunnelAgent({ keepAlive: false });
https.globalAgent = tunnel;

// http: absolute URIs to the proxy
const origRequest = http.request;
function proxied(orig) {
  return function (a, b, c) {
    let opts, cb;
    if (typeof a === 'string' || a instanceof URL) {
      const u = new URL(a);
      opts = Object.assign({ protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search }, typeof b === 'object' ? b : {});
      cb = typeof b === 'function' ? b : c;
    } else {
      opts = Object.assign({}, a);
      cb = b;
    }
    const host = opts.hostname || opts.host || 'localhost';
    const port = opts.port || 80;
    const path = opts.path || '/';
    const headers = Object.assign({}, opts.headers, { Host: host + (port == 80 ? '' : ':' + port) });
    return orig.call(http, { host: PHOST, port: PPORT, method: opts.method || 'GET', path: 'http://' + host + ':' + port + path, headers, agent: false }, cb);
  };
}
http.request = proxied(origRequest);
http.get = function (a, b, c) { const r = http.request(a, b, c); r.end(); return r; };

// fetch: on top of the two above (Response and Headers are global)
if (typeof globalThis.fetch === 'function') {
  globalThis.fetch = function (input, init) {
    init = init || {};
    const u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const mod = u.protocol === 'https:' ? https : http;
    const headers = {};
    new Headers(init.headers || (input && input.headers) || {}).forEach((v, k) => { headers[k] = v; });
    return new Promise((resolve, reject) => {
      const req = mod.request({ hostname: u.hostname, port: u.port || (u.protocol === 'https:' ? 443 : 80), path: u.pathname + u.search, method: init.method || 'GET', headers, agent: u.protocol === 'https:' ? tunnel : undefined }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) h.append(k, Array.isArray(v) ? v.join(', ') : String(v));
          const body = [101, 204, 205, 304].includes(res.statusCode) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status: res.statusCode, statusText: res.statusMessage, headers: h }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (init.body) req.write(typeof init.body === 'string' || Buffer.isBuffer(init.body) ? init.body : String(init.body));
      req.end();
    });
  };
}

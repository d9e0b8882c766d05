// Loaded into every Node process of the OpenClaw end-to-end test (NODE_OPTIONS=--require ...)
// so that nothing leaves 127.0.0.1: a gateway fetches OpenClaw's plugin catalog from
// https://clawhub.ai after it is ready, whatever its config says. Name lookups other than
// localhost fail as they would on an offline machine, and each one is noted in
// $SEQ_E2E_NETWORK_LOG so the test can say what OpenClaw tried to reach.
'use strict';
const dns = require('node:dns');
const fs = require('node:fs');

const log = process.env.SEQ_E2E_NETWORK_LOG;
const isLoopback = (host) => host === 'localhost' || /^(127\.|::1$|::ffff:127\.)/.test(host);
const refused = (host) => {
  if (log) {
    try {
      fs.appendFileSync(log, `${process.pid} ${process.argv.slice(1, 3).join(' ')}: ${host}\n`);
    } catch {}
  }
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${host} (loopback only in this test)`), {
    code: 'ENOTFOUND',
    errno: -3008,
    syscall: 'getaddrinfo',
    hostname: host,
  });
};

const lookup = dns.lookup;
dns.lookup = function guardedLookup(host, options, callback) {
  const done = typeof options === 'function' ? options : callback;
  if (typeof host === 'string' && !isLoopback(host)) {
    process.nextTick(done, refused(host));
    return undefined;
  }
  return lookup.apply(this, arguments);
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = function guardedPromisesLookup(host) {
  if (typeof host === 'string' && !isLoopback(host)) {
    return Promise.reject(refused(host));
  }
  return promisesLookup.apply(this, arguments);
};
// ES modules that import { lookup } from 'node:dns' see the guarded functions too.
require('node:module').syncBuiltinESMExports();

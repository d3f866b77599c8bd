// Holds N idle client sessions open against a PostgreSQL-compatible server,
// for the "200 connected clients of which 16 are active" scenario of
// bench/run.sh. Each session logs in and runs `SELECT 1` once (so a pooler
// or coordinator has really set it up), then stays idle.
//
//   node bench/idle-clients.mjs --port P --count N [--host H] [--user U] [--dbname D]
//
// Password: PGPASSWORD. Prints "ready N" on stdout once all N sessions are
// up. On SIGTERM/SIGINT it closes them and prints one JSON line
// {"held":N,"lost":M} (M = sessions that ended or failed while idle), exit 0.
// Exits 1 if a session cannot be opened.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pg = require('pg');

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const count = Number(args.count ?? 184);
const conf = {
  host: args.host ?? '127.0.0.1',
  port: Number(args.port),
  user: args.user ?? 'postgres',
  database: args.dbname ?? 'postgres',
  password: process.env.PGPASSWORD,
  connectionTimeoutMillis: 30_000,
};
if (!Number.isInteger(conf.port) || !Number.isInteger(count) || count < 1) {
  console.error('usage: idle-clients.mjs --port P --count N [--host H] [--user U] [--dbname D]');
  process.exit(2);
}

let lost = 0;
let closing = false;
const clients = [];

async function open() {
  const c = new pg.Client(conf);
  c.on('error', (err) => {
    if (!closing) {
      lost++;
      console.error(`idle-clients: a session failed: ${err.message}`);
    }
  });
  c.on('end', () => {
    if (!closing) lost++;
  });
  await c.connect();
  await c.query('SELECT 1');
  clients.push(c);
}

async function close(signal) {
  if (closing) return;
  closing = true;
  await Promise.allSettled(clients.map((c) => c.end()));
  process.stdout.write(JSON.stringify({ held: clients.length, lost, signal }) + '\n');
  process.exit(0);
}
process.on('SIGTERM', () => close('SIGTERM'));
process.on('SIGINT', () => close('SIGINT'));

try {
  // Open in batches of 16 so a pooler's accept queue is not flooded at once.
  for (let i = 0; i < count; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, count - i) }, open));
  }
} catch (err) {
  console.error(`idle-clients: could not open session ${clients.length + 1} of ${count} on ${conf.host}:${conf.port}: ${err.message}`);
  closing = true;
  await Promise.allSettled(clients.map((c) => c.end()));
  process.exit(1);
}
process.stdout.write(`ready ${clients.length}\n`);
setInterval(() => {}, 1 << 30); // stay alive until a signal

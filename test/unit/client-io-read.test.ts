// Client sockets read into one shared buffer (readIntoShared(),
// src/frontend/client-io.ts): it reaches into net.Socket's own keys for the
// `onread` option, so these tests fail when a Node version changes them and
// the coordinator would silently fall back to 'data' events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { readIntoShared } from '../../src/frontend/client-io.js';

/** A server whose accepted socket goes through `onAccept`; resolves with the server and a connected client. */
async function pair(onAccept: (s: net.Socket) => void): Promise<{ server: net.Server; client: net.Socket }> {
  const server = net.createServer(onAccept);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  return { server, client };
}

test('an accepted socket reads into the shared buffer: every byte in order, copies that stay intact, then end and close', async () => {
  const chunks: Buffer[] = [];
  let switched: boolean | null = null;
  let dataEvents = 0;
  let accepted: net.Socket | null = null;
  const ended = new Promise<void>((resolve) => {
    void pair((s) => {
      accepted = s;
      s.on('data', () => dataEvents++);
      s.removeAllListeners('data'); // as after the startup handshake: its listener is gone
      switched = readIntoShared(s, (c) => chunks.push(c));
      s.on('end', () => resolve());
    }).then(({ server, client }) => {
      // Small writes, then one far larger than the shared buffer (it arrives in several reads).
      const big = Buffer.alloc(300 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
      client.write('hello ');
      setTimeout(() => {
        client.write('world ');
        client.end(big);
      }, 20);
      void ended.then(() => server.close());
    });
  });
  await ended;
  assert.equal(switched, true, 'readIntoShared took the socket (net.Socket keys found)');
  assert.equal(dataEvents, 0, 'no data event: reads went to the callback');
  assert.ok(chunks.length >= 3, `several reads: ${chunks.length}`);
  const all = Buffer.concat(chunks);
  assert.equal(all.subarray(0, 12).toString(), 'hello world ');
  const big = all.subarray(12);
  assert.equal(big.length, 300 * 1024);
  for (let i = 0; i < big.length; i += 997) assert.equal(big[i], (i * 7 + 3) & 0xff, `byte ${i}`);
  // The chunks are copies: later reads into the shared buffer did not overwrite the first one.
  assert.equal(chunks[0]!.toString(), 'hello ');
  const s = accepted as net.Socket | null;
  s!.end();
  if (!s!.closed) await once(s!, 'close');
});

test('a socket still holding buffered bytes, a TLS socket, and a socket already switched are left alone', async () => {
  let results: boolean[] = [];
  const { server, client } = await pair((s) => {
    const tlsSocket = new tls.TLSSocket(new net.Socket(), { isServer: true });
    results = [readIntoShared(tlsSocket, () => {}), readIntoShared(s, () => {}), readIntoShared(s, () => {})];
    tlsSocket.destroy();
    s.destroy();
  });
  client.on('error', () => {});
  await once(client, 'close');
  server.close();
  assert.deepEqual(results, [false, true, false]);
});

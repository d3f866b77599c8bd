// The client listener: accepts TCP connections and hands each to the startup
// handshake. Sockets still in startup count against the connection limit so
// a flood of half-open connections cannot exhaust the coordinator.
import net from 'node:net';
import type { CoordinatorContext } from '../context.js';
import { handleClientStartup } from './startup.js';

export class ClientListener {
  private readonly server: net.Server;
  private readonly ctx: CoordinatorContext;
  private starting = 0;

  constructor(ctx: CoordinatorContext) {
    this.ctx = ctx;
    this.server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    const limit = this.ctx.config.coordinator.max_client_connections;
    if (this.starting + this.ctx.sessions.size >= limit * 2) {
      socket.destroy(); // far beyond the limit: do not even read the startup packet
      return;
    }
    this.starting++;
    socket.on('error', () => {});
    void handleClientStartup(socket, this.ctx).finally(() => this.starting--);
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

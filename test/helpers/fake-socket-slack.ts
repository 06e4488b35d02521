import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * Slack's side of Socket Mode on 127.0.0.1, just enough for a start and a stop: auth.test, apps.connections.open
 * (answering with `openAnswer`, by default a ws:// URL back to this server) and a WebSocket that says hello and
 * answers pings. Written by hand because the repository has no WebSocket server library.
 */
export class FakeSocketSlack {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly calls: string[] = [];
  /** What apps.connections.open answers; undefined: a URL to this server's WebSocket. */
  openAnswer: Record<string, unknown> | undefined;
  /** WebSocket connections that received hello. */
  connections = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const method = (req.url ?? "").replace(/^\/api\//, "").split("?")[0] as string;
      this.calls.push(method);
      req.resume();
      const answer =
        method === "auth.test"
          ? { ok: true, user_id: "U0DEPLOYBOT", bot_id: "B0DEPLOYBOT", team_id: "T0LOCAL" }
          : method === "apps.connections.open"
            ? (this.openAnswer ?? { ok: true, url: `ws://127.0.0.1:${this.port}/socket` })
            : { ok: false, error: "unknown_method" };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
    this.server.on("upgrade", (req, socket) => this.upgrade(req, socket as Socket));
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
  }

  get port(): number {
    return ((this.server as Server).address() as AddressInfo).port;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private upgrade(req: IncomingMessage, socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => undefined);
    const accept = createHash("sha1")
      .update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    this.connections++;
    socket.write(frame(0x1, Buffer.from(JSON.stringify({ type: "hello", num_connections: 1 }))));
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const f = readFrame(pending);
        if (!f) return;
        pending = pending.subarray(f.length);
        if (f.opcode === 0x9) socket.write(frame(0xa, f.payload));
        if (f.opcode === 0x8) {
          socket.end(frame(0x8, f.payload));
          return;
        }
      }
    });
  }
}

/** A server-to-client frame (never masked), for payloads under 64 KiB. */
function frame(opcode: number, payload: Buffer): Buffer {
  const head =
    payload.length < 126
      ? Buffer.from([0x80 | opcode, payload.length])
      : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

/** One client frame (always masked) from the front of `buf`, or undefined when it has not all arrived. */
function readFrame(buf: Buffer): { opcode: number; payload: Buffer; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const opcode = (buf[0] as number) & 0x0f;
  let len = (buf[1] as number) & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const masked = ((buf[1] as number) & 0x80) !== 0;
  const maskOffset = offset;
  if (masked) offset += 4;
  if (buf.length < offset + len) return undefined;
  const payload = Buffer.from(buf.subarray(offset, offset + len));
  if (masked)
    for (let i = 0; i < payload.length; i++)
      payload[i] = (payload[i] as number) ^ (buf[maskOffset + (i % 4)] as number);
  return { opcode, payload, length: offset + len };
}

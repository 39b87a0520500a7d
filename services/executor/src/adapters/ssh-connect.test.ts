import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { coalesceWrites } from './ssh-connect.js';

describe('coalesceWrites', () => {
  it('sends the writes of one tick as one segment, and later ticks on their own', async () => {
    const reads: Buffer[] = [];
    let peer: Socket | undefined;
    const server = createServer((socket) => {
      peer = socket;
      socket.on('data', (chunk: Buffer) => reads.push(chunk));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
    socket.setNoDelay(true);
    await once(socket, 'connect');
    coalesceWrites(socket);
    try {
      socket.write(Buffer.from('len:'));
      socket.write(Buffer.from('payload:'));
      socket.write('mac', () => undefined);
      expect(socket.writableCorked).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(socket.writableCorked).toBe(0);
      expect(reads.map(String)).toEqual(['len:payload:mac']);

      socket.write('next');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(reads.map(String)).toEqual(['len:payload:mac', 'next']);
    } finally {
      socket.destroy();
      peer?.destroy();
      server.close();
    }
  });
});

#!/usr/bin/env python3
"""slowproxy.py: a far IMAP server in miniature, for trying `connections:`.

    bench/slowproxy.py LISTEN_PORT TARGET_PORT RATE RTT_MS

Listens on 127.0.0.1:LISTEN_PORT and relays each connection to
127.0.0.1:TARGET_PORT.  What the server sends is paced at RATE bytes per
second per connection (as servers that bound each connection's speed do),
and every chunk, both ways, arrives RTT_MS / 2 milliseconds late.  The
relay does not push back on the server: it reads as fast as the server
sends and holds the rest in memory.  Loopback only; stop it with Ctrl-C.

Example (bench/README.md, "connections:"): 20 MB/s and 10 ms,

    bench/slowproxy.py 34999 PORT 20000000 10 &
    FERRY_TEST_LANES_MIN_BYTES=1048576 ferry -c CONFIG-ON-34999 sync

(the knob lifts ferry's cap on connections to a loopback server).
"""
import asyncio
import sys
import time


async def relay(reader, writer, rate, delay):
    """Copy reader to writer, each chunk `delay` s late, paced at `rate` (0: unpaced)."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                writer.close()
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    free_at = time.monotonic()
    while True:
        data = await reader.read(65536)
        now = time.monotonic()
        if not data:
            await queue.put((now, None))
            break
        if rate > 0:
            free_at = max(free_at, now) + len(data) / rate
            await queue.put((free_at + delay, data))
        else:
            await queue.put((now + delay, data))
    await sender


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    rate, delay = float(sys.argv[3]), float(sys.argv[4]) / 2000.0

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(relay(client_r, server_w, 0, delay),
                             relay(server_r, client_w, rate, delay),
                             return_exceptions=True)

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

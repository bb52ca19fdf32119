// Node's `ws` library as a peer of the raw bound: the same room, outside Python.
//
// Every text X goes to every connection, the sender included, as "Someone said: X", like
// benchmarks/raw_server.py. The broadcast is the loop the ws documentation shows, with the frame's
// payload built once: `for (const c of wss.clients) c.send(data)`. ws frames and writes it per
// client, at once, with no per-client queue and no slow-consumer policy (a stopped reader's
// messages pile up in its socket's buffer).
//
// `node benchmarks/node_ws_server.js --port 0` prints its URL first, as the Python servers do,
// then serves until SIGINT or SIGTERM. `python -m benchmarks.node_ws` finds node, installs the
// pinned ws (benchmarks/package-lock.json) and runs this file.
'use strict';

const { WebSocketServer } = require('ws');

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const PREFIX = Buffer.from('Someone said: ');
const TEXT = { binary: false }; // a Buffer would otherwise go out as a binary frame

const wss = new WebSocketServer({ host: option('host', '127.0.0.1'), port: Number(option('port', '0')) });

wss.on('connection', (ws) => {
  ws.on('message', (message, isBinary) => {
    if (isBinary) return;
    const data = Buffer.concat([PREFIX, message]);
    for (const c of wss.clients) c.send(data, TEXT);
  });
});

wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`node_ws_server serving on http://${address}:${port}`);
});

function stop() {
  for (const c of wss.clients) c.close(1001, 'server shutting down');
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref(); // a client that never answers the close
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

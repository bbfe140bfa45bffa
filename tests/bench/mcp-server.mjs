// A trivial streamable-HTTP MCP server on raw node:http (no SDK), for scripts/bench.
//
//   node tests/bench/mcp-server.mjs json   answers every JSON-RPC request as application/json
//   node tests/bench/mcp-server.mjs sse    answers as text/event-stream: one `message`
//                                          event, then the response ends
//
// Listens on 127.0.0.1, port 0 (or BENCH_PORT), keep-alive, and prints its port on the
// first line of stdout. Whatever the method, the result is a tools/call result with the
// text "hello", echoing the request's id.
import http from 'node:http';

const mode = process.argv[2] === 'sse' ? 'sse' : 'json';

function answer(body) {
  let id = null;
  try {
    const request = JSON.parse(body);
    if (request && request.id !== undefined) id = request.id;
  } catch {
    // Not JSON: answer anyway, id null.
  }
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    result: { content: [{ type: 'text', text: 'hello' }] },
  });
}

const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST' });
      res.end();
      return;
    }
    const json = answer(Buffer.concat(chunks).toString('utf8'));
    if (mode === 'sse') {
      res.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
      });
      res.end(`event: message\ndata: ${json}\n\n`);
    } else {
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(json),
      });
      res.end(json);
    }
  });
});
// Longer than any benchmark slice's idle gaps, so upstream pools keep their connections.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

server.listen(Number(process.env.BENCH_PORT || 0), '127.0.0.1', () => {
  console.log(server.address().port);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}

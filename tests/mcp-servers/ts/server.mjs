#!/usr/bin/env node
// Test fixture for authhost's integration tests: a real MCP server on the official
// TypeScript SDK (@modelcontextprotocol/sdk 1.x), stateless Streamable HTTP.
//
//   node tests/mcp-servers/ts/server.mjs --port 0 [--sse]
//
// Prints exactly one line to stdout when ready: {"url":"http://127.0.0.1:<port>/mcp"}
// Everything else goes to stderr. Exits when stdin closes and on SIGTERM/SIGINT.
//
// Routes:
//   POST /mcp            MCP endpoint (JSON responses; text/event-stream with --sse)
//   GET  /executions     JSON list of {kind, name} for every tool run, resource read, prompt get
//   DELETE /executions   clears that list
//   GET  /last-headers   headers of the last POST /mcp (lowercased names)

import http from 'node:http';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { z } from 'zod';

function parseArgs(argv) {
    const opts = { port: 0, sse: false, host: '127.0.0.1' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--port') opts.port = Number(argv[++i]);
        else if (a.startsWith('--port=')) opts.port = Number(a.slice('--port='.length));
        else if (a === '--sse') opts.sse = true;
        else {
            console.error(`unknown argument: ${a}`);
            process.exit(2);
        }
    }
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
        console.error('--port must be an integer in 0..65535');
        process.exit(2);
    }
    return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...args) => console.error('[mcp-ts]', ...args);

/** Every tool execution, resource read and prompt get, in order. */
let executions = [];
/** Headers of the last POST /mcp, as whoami shows them. */
let lastHeaders = {};

/** All headers of a request, names lowercased, repeated headers joined with ", ". */
function headerObject(req) {
    const out = {};
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
        const name = raw[i].toLowerCase();
        out[name] = name in out ? `${out[name]}, ${raw[i + 1]}` : raw[i + 1];
    }
    return out;
}

/** One McpServer per request (stateless): `req` is the HTTP request it serves. */
function buildServer(req) {
    const server = new McpServer({ name: 'authhost-test-mcp-ts', version: '0.0.0' });

    server.registerTool(
        'whoami',
        { description: 'Returns, as JSON text, every request header this server received (lowercased names).' },
        async () => {
            executions.push({ kind: 'tool', name: 'whoami' });
            return { content: [{ type: 'text', text: JSON.stringify(headerObject(req)) }] };
        }
    );
    server.registerTool(
        'echo',
        { description: 'Returns its text argument.', inputSchema: { text: z.string() } },
        async ({ text }) => {
            executions.push({ kind: 'tool', name: 'echo' });
            return { content: [{ type: 'text', text }] };
        }
    );
    server.registerTool(
        'admin_delete',
        {
            description: 'Pretends to delete its target; a policy should deny it.',
            inputSchema: { target: z.string() }
        },
        async ({ target }) => {
            executions.push({ kind: 'tool', name: 'admin_delete' });
            return { content: [{ type: 'text', text: `deleted ${target}` }] };
        }
    );

    const textResource = (name, uri, text) =>
        server.registerResource(name, uri, { mimeType: 'text/plain' }, async u => {
            executions.push({ kind: 'resource', name: u.href });
            return { contents: [{ uri: u.href, mimeType: 'text/plain', text }] };
        });
    textResource('public-readme', 'file:///public/readme.txt', 'public readme');
    textResource('secret-keys', 'file:///secret/keys.txt', 'secret keys');
    server.registerResource(
        'user-file',
        new ResourceTemplate('file:///users/{name}.txt', { list: undefined }),
        { mimeType: 'text/plain' },
        async (u, { name }) => {
            executions.push({ kind: 'resource', name: u.href });
            return { contents: [{ uri: u.href, mimeType: 'text/plain', text: `file of ${name}` }] };
        }
    );

    server.registerPrompt(
        'greet',
        { description: 'Greets someone.', argsSchema: { name: z.string() } },
        async ({ name }) => {
            executions.push({ kind: 'prompt', name: 'greet' });
            return { messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${name}!` } }] };
        }
    );
    server.registerPrompt('secret_prompt', { description: 'A prompt a policy should deny.' }, async () => {
        executions.push({ kind: 'prompt', name: 'secret_prompt' });
        return { messages: [{ role: 'user', content: { type: 'text', text: 'the secret prompt' } }] };
    });
    return server;
}

// The SDK's helper: DNS-rebinding (Host) protection for 127.0.0.1, then express.json()
// (inflates gzip/deflate/br bodies, strips a UTF-8 BOM, refuses non-UTF charsets).
const app = createMcpExpressApp({ host: opts.host });

app.post('/mcp', async (req, res) => {
    const server = buildServer(req);
    const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: !opts.sse
    });
    res.on('close', () => {
        transport.close().catch(() => {});
        server.close().catch(() => {});
    });
    try {
        await server.connect(transport);
        await transport.handleRequest(req, res, req.body);
    } catch (err) {
        log('error handling POST /mcp:', err);
        if (!res.headersSent) {
            res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
        }
    }
});

// Stateless: no standalone SSE stream (GET) and no session to delete (DELETE).
app.all('/mcp', (_req, res) => {
    res.status(405)
        .set('Allow', 'POST')
        .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
});

app.get('/executions', (_req, res) => res.json(executions));
app.delete('/executions', (_req, res) => {
    executions = [];
    res.status(204).end();
});
app.get('/last-headers', (_req, res) => res.json(lastHeaders));

// Errors from express.json() (bad JSON, unsupported charset or encoding, too large):
// answered as a JSON-RPC error with body-parser's status instead of an HTML page.
// eslint-disable-next-line no-unused-vars
app.use((err, _req, res, _next) => {
    const status = Number.isInteger(err.status) ? err.status : 500;
    log(`request failed (${status}):`, err.type ?? '', err.message);
    if (res.headersSent) return;
    res.status(status).json({
        jsonrpc: '2.0',
        error: { code: status === 400 ? -32700 : -32000, message: `${err.type ?? 'error'}: ${err.message}` },
        id: null
    });
});

// A plain HTTP server in front of the app, so /last-headers is recorded for every
// POST /mcp, including those the SDK's Host check or the body parser refuse.
const httpServer = http.createServer((req, res) => {
    if (req.method === 'POST' && (req.url === '/mcp' || req.url.startsWith('/mcp?'))) {
        lastHeaders = headerObject(req);
    }
    app(req, res);
});

httpServer.listen(opts.port, opts.host, () => {
    const { port } = httpServer.address();
    log(`listening on http://${opts.host}:${port}/mcp (${opts.sse ? 'SSE' : 'JSON'} responses)`);
    process.stdout.write(JSON.stringify({ url: `http://${opts.host}:${port}/mcp` }) + '\n');
});

function shutdown(why) {
    log(`exiting: ${why}`);
    process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.stdin.on('end', () => shutdown('stdin closed'));
process.stdin.on('close', () => shutdown('stdin closed'));
process.stdin.on('error', () => shutdown('stdin error'));
process.stdin.resume();

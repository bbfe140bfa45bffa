"""Test fixture for authhost's integration tests: a real MCP server on the official
Python SDK (`mcp` on PyPI, MCPServer — the 2.x name of FastMCP), stateless Streamable
HTTP served by uvicorn.

    tests/mcp-servers/py/.venv/bin/python tests/mcp-servers/py/server.py --port 0 [--sse]

Prints exactly one line to stdout when ready: {"url":"http://127.0.0.1:<port>/mcp"}
Everything else goes to stderr. Exits when stdin closes and on SIGTERM/SIGINT.

Routes:
  POST /mcp            MCP endpoint (JSON responses; text/event-stream with --sse)
  GET  /executions     JSON list of {kind, name} for every tool run, resource read, prompt get
  DELETE /executions   clears that list
  GET  /last-headers   headers of the last POST /mcp (lowercased names)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

HOST = "127.0.0.1"
log = logging.getLogger("mcp-py")

# Every tool execution, resource read and prompt get, in order.
executions: list[dict[str, str]] = []
# Headers of the last POST /mcp, as whoami shows them.
last_headers: dict[str, str] = {}


def header_object(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """All headers of a request, names lowercased, repeated headers joined with ", "."""
    out: dict[str, str] = {}
    for name_b, value_b in raw:
        name = name_b.decode("latin-1").lower()
        value = value_b.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def build_server() -> MCPServer:
    mcp = MCPServer(name="authhost-test-mcp-py", version="0.0.0")

    @mcp.tool(
        description="Returns, as JSON text, every request header this server received (lowercased names).",
        structured_output=False,
    )
    def whoami(ctx: Context) -> str:
        executions.append({"kind": "tool", "name": "whoami"})
        request = ctx.request_context.request
        raw = request.scope["headers"] if isinstance(request, Request) else []
        return json.dumps(header_object(raw), separators=(",", ":"))

    @mcp.tool(description="Returns its text argument.", structured_output=False)
    def echo(text: str) -> str:
        executions.append({"kind": "tool", "name": "echo"})
        return text

    @mcp.tool(description="Pretends to delete its target; a policy should deny it.", structured_output=False)
    def admin_delete(target: str) -> str:
        executions.append({"kind": "tool", "name": "admin_delete"})
        return f"deleted {target}"

    @mcp.resource("file:///public/readme.txt", name="public-readme", mime_type="text/plain")
    def public_readme() -> str:
        executions.append({"kind": "resource", "name": "file:///public/readme.txt"})
        return "public readme"

    @mcp.resource("file:///secret/keys.txt", name="secret-keys", mime_type="text/plain")
    def secret_keys() -> str:
        executions.append({"kind": "resource", "name": "file:///secret/keys.txt"})
        return "secret keys"

    @mcp.resource("file:///users/{name}.txt", name="user-file", mime_type="text/plain")
    def user_file(name: str) -> str:
        executions.append({"kind": "resource", "name": f"file:///users/{name}.txt"})
        return f"file of {name}"

    @mcp.prompt(description="Greets someone.")
    def greet(name: str) -> str:
        executions.append({"kind": "prompt", "name": "greet"})
        return f"Hello, {name}!"

    @mcp.prompt(description="A prompt a policy should deny.")
    def secret_prompt() -> str:
        executions.append({"kind": "prompt", "name": "secret_prompt"})
        return "the secret prompt"

    @mcp.custom_route("/executions", methods=["GET", "DELETE"])
    async def executions_route(request: Request) -> Response:
        if request.method == "DELETE":
            executions.clear()
            return Response(status_code=204)
        return JSONResponse(executions)

    @mcp.custom_route("/last-headers", methods=["GET"])
    async def last_headers_route(_request: Request) -> Response:
        return JSONResponse(last_headers)

    return mcp


METHOD_NOT_ALLOWED = JSONResponse(
    {"jsonrpc": "2.0", "error": {"code": -32000, "message": "Method not allowed."}, "id": None},
    status_code=405,
    headers={"Allow": "POST"},
)


class RecordHeaders:
    """ASGI middleware: remembers the headers of every POST /mcp before the SDK sees it
    (so requests that the SDK's Host check or parser refuse are recorded too), and
    answers any other method on /mcp with 405, as the TypeScript server does: stateless,
    there is no standalone SSE stream (GET) and no session to delete (DELETE)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            if scope["method"] != "POST":
                await METHOD_NOT_ALLOWED(scope, receive, send)
                return
            global last_headers
            last_headers = header_object(scope["headers"])
        await self.app(scope, receive, send)


class Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM/SIGINT ends it with status 0 (uvicorn would
    re-raise the signal after its graceful shutdown), as the TypeScript server does."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        log.info("exiting: %s", signal.Signals(sig).name)
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


def watch_stdin(loop: asyncio.AbstractEventLoop, server: Server) -> None:
    """Exit when stdin closes: the parent test process is gone."""
    try:
        # The raw fd, not sys.stdin: a daemon thread blocked inside the buffered
        # reader would hold its lock and abort the interpreter's shutdown.
        while os.read(0, 65536):
            pass
    except (OSError, ValueError):
        pass
    log.info("exiting: stdin closed")
    loop.call_soon_threadsafe(setattr, server, "should_exit", True)
    # A hard stop in case a connection holds the graceful shutdown up.
    hard_stop = threading.Timer(3.0, os._exit, args=(0,))
    hard_stop.daemon = True
    hard_stop.start()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--sse", action="store_true", help="answer with text/event-stream instead of JSON")
    args = parser.parse_args()

    mcp = build_server()
    app = RecordHeaders(
        mcp.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=not args.sse,
            host=HOST,
        )
    )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    config = uvicorn.Config(
        app,
        log_config=None,  # logging goes to the root logger: stderr
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.01)
        url = f"http://{HOST}:{port}/mcp"
        log.info("listening on %s (%s responses)", url, "SSE" if args.sse else "JSON")
        sys.stdout.write(json.dumps({"url": url}, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    loop = asyncio.get_running_loop()
    threading.Thread(target=watch_stdin, args=(loop, server), daemon=True).start()
    announcer = asyncio.create_task(announce())
    await server.serve(sockets=[sock])
    announcer.cancel()


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="[mcp-py] %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    asyncio.run(main())

"""Probe how the two fixture MCP servers parse odd requests: does a request for
`admin_delete` (or the secret resource/prompt) actually execute?

Standard library only (plus `node` for the brotli row, skipped without it).

    python3 tests/mcp-servers/py/probe.py            # both servers, Markdown table on stdout
    python3 tests/mcp-servers/py/probe.py --json     # raw results
    python3 tests/mcp-servers/py/probe.py --sse      # servers started with --sse

Each case clears GET/DELETE /executions, sends one POST /mcp, and reads the ledger.
The table in tests/mcp-servers/README.md comes from this script.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import shutil
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))  # the repository

SERVERS = {
    "ts": ["node", "tests/mcp-servers/ts/server.mjs", "--port", "0"],
    "py": ["tests/mcp-servers/py/.venv/bin/python", "tests/mcp-servers/py/server.py", "--port", "0"],
}

BASE_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}

ADMIN = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}'


# A request of the 2026-07-28 revision (per-request envelope in params._meta, routing
# headers Mcp-Method / Mcp-Name that must match the body), which the Python SDK 2.x serves.
MODERN_META = (
    '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientCapabilities":{}}'
)
MODERN_ADMIN = (
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete",'
    '"arguments":{"target":"x"},' + MODERN_META + "}}"
)
MODERN_HEADERS = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "admin_delete"}


def read_uri(uri: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}).encode()


def brotli(data: bytes) -> bytes | None:
    if not shutil.which("node"):
        return None
    js = "process.stdout.write(require('zlib').brotliCompressSync(require('fs').readFileSync(0)))"
    return subprocess.run(["node", "-e", js], input=data, capture_output=True, check=True).stdout


@dataclass
class Case:
    name: str
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)  # overrides; value None removes
    chunked: bool = False


def cases() -> list[Case]:
    a = ADMIN.encode()
    out = [
        Case("control: plain tools/call admin_delete", a),
        Case("Content-Encoding: gzip", gzip.compress(a), {"Content-Encoding": "gzip"}),
        Case("Content-Encoding: deflate (zlib-wrapped)", zlib.compress(a), {"Content-Encoding": "deflate"}),
        Case(
            "Content-Encoding: deflate (raw, no zlib header)",
            zlib.compress(a)[2:-4],
            {"Content-Encoding": "deflate"},
        ),
        Case("Content-Encoding: br", brotli(a), {"Content-Encoding": "br"}),
        Case("Content-Encoding: GZIP (upper case)", gzip.compress(a), {"Content-Encoding": "GZIP"}),
        Case("Content-Encoding: identity", a, {"Content-Encoding": "identity"}),
        Case("Content-Encoding: gzip, gzip (twice)", gzip.compress(gzip.compress(a)), {"Content-Encoding": "gzip, gzip"}),
        Case("Content-Encoding: gzip but body not compressed", a, {"Content-Encoding": "gzip"}),
        Case("UTF-8 BOM before the JSON", b"\xef\xbb\xbf" + a),
        Case(
            'duplicate "method": tools/call first, tools/list last',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list",'
            b'"params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            'duplicate "method": tools/list first, tools/call last',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call",'
            b'"params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            'duplicate params "name": echo first, admin_delete last',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
            b'"params":{"name":"echo","name":"admin_delete","arguments":{"text":"t","target":"x"}}}',
        ),
        Case(
            'duplicate params "name": admin_delete first, echo last',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
            b'"params":{"name":"admin_delete","name":"echo","arguments":{"text":"t","target":"x"}}}',
        ),
        Case(
            'duplicate "params" objects: echo first, admin_delete last',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"t"}},'
            b'"params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"Method" (key in other case)',
            b'{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"NAME" inside params (key in other case)',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"Name" and "name":"echo" inside params',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
            b'"params":{"Name":"admin_delete","name":"echo","arguments":{"text":"t","target":"x"}}}',
        ),
        Case(
            'tool name in other case: "ADMIN_DELETE"',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ADMIN_DELETE","arguments":{"target":"x"}}}',
        ),
        Case(
            'method in other case: "Tools/Call"',
            b'{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            'tool name with trailing space: "admin_delete "',
            b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_delete ","arguments":{"target":"x"}}}',
        ),
        Case(
            "\\u escapes in keys and values (\\u006dethod, tools\\u002fcall, admin\\u005fdelete)",
            b'{"jsonrpc":"2.0","id":1,"\\u006dethod":"tools\\u002fcall",'
            b'"params":{"n\\u0061me":"admin\\u005fdelete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"id": null',
            b'{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            "no id (a notification)",
            b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"id": 1.5',
            b'{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"id": true',
            b'{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"id": {} (object)',
            b'{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            "no jsonrpc member",
            b'{"id":1,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case(
            '"jsonrpc": "1.0"',
            b'{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}',
        ),
        Case("batch: [admin_delete]", b"[" + a + b"]"),
        Case(
            "batch: [echo, admin_delete]",
            b'[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"t"}}},'
            b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"admin_delete","arguments":{"target":"x"}}}]',
        ),
        Case("trailing garbage after the JSON: `}xyz`", a + b"xyz"),
        Case("a second JSON object after the first", a + b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'),
        Case("trailing whitespace/newline after the JSON", a + b" \r\n\t\n"),
        Case("leading whitespace before the JSON", b" \r\n\t" + a),
        Case("a /* comment */ inside the JSON", a.replace(b'"id":1,', b'"id":1,/* c */')),
        Case("trailing NUL byte", a + b"\x00"),
        Case(
            "charset=utf-16, body in UTF-16LE with BOM",
            ADMIN.encode("utf-16"),
            {"Content-Type": "application/json; charset=utf-16"},
        ),
        Case("charset=utf-16, body in UTF-8", a, {"Content-Type": "application/json; charset=utf-16"}),
        Case("body in UTF-16LE, no charset", ADMIN.encode("utf-16-le")),
        Case("charset=latin1, body ASCII", a, {"Content-Type": "application/json; charset=latin1"}),
        Case("charset=UTF-8 (upper case)", a, {"Content-Type": "application/json; charset=UTF-8"}),
        Case("Content-Type: Application/JSON (upper case)", a, {"Content-Type": "Application/JSON"}),
        Case("Content-Type: text/plain", a, {"Content-Type": "text/plain"}),
        Case("Content-Type: application/json-rpc", a, {"Content-Type": "application/json-rpc"}),
        Case("Content-Type: application/x-json", a, {"Content-Type": "application/x-json"}),
        Case("no Content-Type", a, {"Content-Type": None}),
        Case(
            "Content-Type: text/plain, application/json (list)",
            a,
            {"Content-Type": "text/plain, application/json"},
        ),
        Case("Accept: application/json only", a, {"Accept": "application/json"}),
        Case("Accept: */*", a, {"Accept": "*/*"}),
        Case("no Accept", a, {"Accept": None}),
        Case("no MCP-Protocol-Version", a, {"MCP-Protocol-Version": None}),
        Case("MCP-Protocol-Version: 2025-03-26", a, {"MCP-Protocol-Version": "2025-03-26"}),
        Case("MCP-Protocol-Version: 2026-07-28", a, {"MCP-Protocol-Version": "2026-07-28"}),
        Case("MCP-Protocol-Version: 1999-01-01 (unknown)", a, {"MCP-Protocol-Version": "1999-01-01"}),
        Case("2026-07-28 request, Mcp-Method/Mcp-Name match the body", MODERN_ADMIN.encode(), MODERN_HEADERS),
        Case(
            "2026-07-28 request, no Mcp-Method/Mcp-Name headers",
            MODERN_ADMIN.encode(),
            {"MCP-Protocol-Version": "2026-07-28"},
        ),
        Case(
            "2026-07-28 request, Mcp-Name: echo (body says admin_delete)",
            MODERN_ADMIN.encode(),
            {**MODERN_HEADERS, "Mcp-Name": "echo"},
        ),
        Case("2026-07-28 request with a UTF-8 BOM", b"\xef\xbb\xbf" + MODERN_ADMIN.encode(), MODERN_HEADERS),
        Case("2026-07-28 request in UTF-16LE, no charset", MODERN_ADMIN.encode("utf-16-le"), MODERN_HEADERS),
        Case("2026-07-28 request, gzip", gzip.compress(MODERN_ADMIN.encode()), {**MODERN_HEADERS, "Content-Encoding": "gzip"}),
        Case(
            '2026-07-28 request, duplicate "method" (tools/list, then tools/call)',
            MODERN_ADMIN.replace('"method":"tools/call"', '"method":"tools/list","method":"tools/call"').encode(),
            MODERN_HEADERS,
        ),
        Case(
            '2026-07-28 request, duplicate "method", Mcp-Method: tools/list',
            MODERN_ADMIN.replace('"method":"tools/call"', '"method":"tools/list","method":"tools/call"').encode(),
            {**MODERN_HEADERS, "Mcp-Method": "tools/list"},
        ),
        Case("Host: evil.example (not loopback)", a, {"Host": "evil.example"}),
        Case("Host: localhost:1", a, {"Host": "localhost:1"}),
        Case("Origin: http://evil.example", a, {"Origin": "http://evil.example"}),
        Case("Mcp-Session-Id: made-up", a, {"Mcp-Session-Id": "made-up"}),
        Case("Transfer-Encoding: chunked", a, chunked=True),
        Case("body of 150 KB (padding in arguments)", ADMIN.replace('"x"}', '"x","pad":"' + "p" * 150_000 + '"}').encode()),
        Case("resources/read file:///secret/keys.txt (control)", read_uri("file:///secret/keys.txt")),
        Case("resources/read file:///public/../secret/keys.txt", read_uri("file:///public/../secret/keys.txt")),
        Case("resources/read file:///secret/./keys.txt", read_uri("file:///secret/./keys.txt")),
        Case("resources/read file:///secret//keys.txt", read_uri("file:///secret//keys.txt")),
        Case("resources/read file://localhost/secret/keys.txt", read_uri("file://localhost/secret/keys.txt")),
        Case("resources/read FILE:///secret/keys.txt", read_uri("FILE:///secret/keys.txt")),
        Case("resources/read file:///secret/%6Beys.txt", read_uri("file:///secret/%6Beys.txt")),
        Case("resources/read file:///SECRET/keys.txt", read_uri("file:///SECRET/keys.txt")),
        Case("resources/read file:///secret/keys.txt#frag", read_uri("file:///secret/keys.txt#frag")),
        Case("resources/read file:///secret/keys.txt?q", read_uri("file:///secret/keys.txt?q")),
        Case("resources/read file:/secret/keys.txt", read_uri("file:/secret/keys.txt")),
        Case("resources/read file:///secret\\keys.txt (backslash)", read_uri("file:///secret\\keys.txt")),
        Case("resources/read file:///users/..%2Fsecret%2Fkeys.txt", read_uri("file:///users/..%2Fsecret%2Fkeys.txt")),
        Case("resources/read file:///users/../secret/keys.txt", read_uri("file:///users/../secret/keys.txt")),
        Case(
            "prompts/get secret_prompt (control)",
            b'{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"secret_prompt"}}',
        ),
        Case(
            'prompts/get "Secret_Prompt"',
            b'{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"Secret_Prompt"}}',
        ),
    ]
    return [c for c in out if c.body is not None]


def start(cmd: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, json.loads(line)["url"]


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            chunked: bool = False) -> tuple[int, str, bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        skip_host = headers is not None and "Host" in headers
        conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None and not chunked:
            conn.putheader("Content-Length", str(len(body)))
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if body is not None:
            if chunked:
                half = len(body) // 2
                for part in (body[:half], body[half:]):
                    conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                conn.send(b"0\r\n\r\n")
            else:
                conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read()
    finally:
        conn.close()


def summarize(ctype: str, raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    if ctype.startswith("text/event-stream"):
        datas = [ln[5:].strip() for ln in text.splitlines() if ln.startswith("data:") and ln[5:].strip()]
        text = "[" + ",".join(datas) + "]" if len(datas) > 1 else datas[0] if datas else text
    try:
        msg = json.loads(text)
    except ValueError:
        return text[:80]
    msgs = msg if isinstance(msg, list) else [msg]
    parts = []
    for m in msgs:
        if not isinstance(m, dict):
            parts.append(str(m)[:40])
        elif "error" in m:
            parts.append(f"error {m['error'].get('code')}: {str(m['error'].get('message'))[:70]}")
        elif "result" in m:
            r = m["result"]
            if isinstance(r, dict) and r.get("isError"):
                parts.append("isError: " + str(r.get("content", [{}])[0].get("text", ""))[:70])
            elif isinstance(r, dict) and "content" in r:
                parts.append("result: " + str(r["content"][0].get("text", ""))[:50])
            elif isinstance(r, dict) and "contents" in r:
                parts.append("result: " + str(r["contents"][0].get("text", ""))[:50])
            else:
                parts.append("result: " + ",".join(r.keys() if isinstance(r, dict) else [])[:50])
    return "; ".join(parts)


def run(which: str, extra: list[str]) -> list[dict[str, object]]:
    proc, url = start(SERVERS[which] + extra)
    results = []
    try:
        for case in cases():
            request(url, "DELETE", "/executions")
            headers = dict(BASE_HEADERS)
            for k, v in case.headers.items():
                if v is None:
                    headers.pop(k, None)
                else:
                    headers[k] = v
            headers = {k: v for k, v in headers.items() if v is not None}
            try:
                status, ctype, raw = request(url, "POST", "/mcp", case.body, headers, case.chunked)
                answer = summarize(ctype, raw)
            except (OSError, http.client.HTTPException) as e:
                status, answer = 0, f"connection error: {e}"
            _, _, ledger = request(url, "GET", "/executions")
            ran = [e["name"] for e in json.loads(ledger)]
            results.append({"case": case.name, "status": status, "answer": answer, "executed": ran})
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
    return results


def cell(r: dict[str, object]) -> str:
    ran = r["executed"]
    verdict = ("**RUNS** " + ", ".join(ran)) if ran else "no"  # type: ignore[arg-type]
    return f"{verdict} — {r['status']} {r['answer']}".replace("|", "\\|")


def main() -> None:
    extra = ["--sse"] if "--sse" in sys.argv else []
    results = {which: run(which, extra) for which in SERVERS}
    if "--json" in sys.argv:
        json.dump(results, sys.stdout, indent=1)
        return
    print("| request | TypeScript server | Python server |")
    print("| --- | --- | --- |")
    for ts, py in zip(results["ts"], results["py"]):
        print(f"| {ts['case']} | {cell(ts)} | {cell(py)} |".replace("\n", " "))


if __name__ == "__main__":
    main()

"""MCP clients without a browser calling an MCP server behind authhost, with the
official MCP Python SDK's authorization extensions. Runs in the venv of
tests/mcp-servers/py (it pins `mcp`).

- client credentials: `ClientCredentialsOAuthProvider` (a client secret, Basic or in
  the form) or `PrivateKeyJWTOAuthProvider` (a signed assertion, RFC 7523);
- enterprise-managed authorization: `IdentityAssertionOAuthProvider` redeeming an
  ID-JAG that this script signs as the enterprise identity provider would.

    client.py keygen DIR
        writes DIR/key.pem (an EC P-256 private key) and DIR/jwks.json (its public key)
    client.py call --url URL --issuer ISSUER --client-id ID
                   (--secret S [--post] | --key DIR) [--scope S]
        calls the `whoami` tool; prints {"ok": true, "whoami": {...}, "tokens": n}
        or {"ok": false, "error": "..."}
    client.py id-jag --url URL --issuer ISSUER --client-id ID --secret S
                     --idp-key DIR --idp-issuer IDP --subject SUB [--email E]
                     [--groups a,b] [--scope S]
        the same call, with an access token for an ID-JAG signed by DIR/key.pem
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import warnings

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

import httpx2
import time
import uuid

import jwt
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


class MemoryStorage:
    """Tokens in memory, counting how many the client was issued."""

    def __init__(self) -> None:
        self.tokens = None
        self.issued = 0

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens
        self.issued += 1

    async def get_client_info(self):
        return None

    async def set_client_info(self, client_info) -> None:
        pass


def keygen(directory: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(os.path.join(directory, "key.pem"), "wb") as f:
        f.write(pem)
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "machine-1", "alg": "ES256", "use": "sig"})
    with open(os.path.join(directory, "jwks.json"), "w") as f:
        json.dump({"keys": [jwk]}, f)


async def call(args: argparse.Namespace) -> dict:
    storage = MemoryStorage()
    if args.key:
        with open(os.path.join(args.key, "key.pem")) as f:
            params = SignedJWTParameters(
                issuer=args.client_id,
                subject=args.client_id,
                signing_key=f.read(),
                signing_algorithm="ES256",
                additional_claims={"jti": args.jti} if args.jti else None,
            )
        auth = PrivateKeyJWTOAuthProvider(
            server_url=args.url,
            storage=storage,
            client_id=args.client_id,
            assertion_provider=params.create_assertion_provider(),
            scope=args.scope,
            issuer=args.issuer,
        )
    else:
        auth = ClientCredentialsOAuthProvider(
            server_url=args.url,
            storage=storage,
            client_id=args.client_id,
            client_secret=args.secret,
            token_endpoint_auth_method="client_secret_post" if args.post else "client_secret_basic",
            scope=args.scope,
            issuer=args.issuer,
        )
    return await call_with(args, auth, storage)


async def id_jag(args: argparse.Namespace) -> dict:
    """As the enterprise IdP: sign an ID-JAG for the user, for authhost and the server."""
    with open(os.path.join(args.idp_key, "key.pem")) as f:
        idp_key = f.read()

    async def assertion(audience: str, resource: str) -> str:
        now = int(time.time())
        claims = {
            "iss": args.idp_issuer,
            "sub": args.subject,
            "aud": audience,
            "client_id": args.client_id,
            "resource": resource,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 300,
        }
        if args.email:
            claims["email"] = args.email
        if args.groups:
            claims["groups"] = args.groups.split(",")
        headers = {"typ": "oauth-id-jag+jwt", "kid": "machine-1"}
        return jwt.encode(claims, idp_key, algorithm="ES256", headers=headers)

    storage = MemoryStorage()
    auth = IdentityAssertionOAuthProvider(
        server_url=args.url,
        storage=storage,
        client_id=args.client_id,
        client_secret=args.secret,
        issuer=args.issuer,
        assertion_provider=assertion,
        scope=args.scope,
    )
    return await call_with(args, auth, storage)


async def call_with(args: argparse.Namespace, auth, storage: MemoryStorage) -> dict:
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with streamable_http_client(args.url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("whoami", {})
    return {
        "ok": not result.is_error,
        "whoami": result.structured_content,
        "tokens": storage.issued,
        "scope": storage.tokens.scope if storage.tokens else None,
    }


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("keygen")
    gen.add_argument("dir")
    c = sub.add_parser("call")
    c.add_argument("--url", required=True)
    c.add_argument("--issuer", required=True)
    c.add_argument("--client-id", required=True)
    c.add_argument("--secret")
    c.add_argument("--post", action="store_true")
    c.add_argument("--key")
    c.add_argument("--jti", help="a fixed jti (to replay an assertion)")
    c.add_argument("--scope")
    j = sub.add_parser("id-jag")
    for name in ["--url", "--issuer", "--client-id", "--secret", "--idp-key", "--idp-issuer", "--subject"]:
        j.add_argument(name, required=True)
    j.add_argument("--email")
    j.add_argument("--groups")
    j.add_argument("--scope")
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args.dir)
        print(json.dumps({"ok": True}))
        return
    try:
        out = asyncio.run(id_jag(args) if args.command == "id-jag" else call(args))
    except BaseException as e:  # the SDK raises exception groups from task groups
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))
    sys.exit(0)


if __name__ == "__main__":
    main()

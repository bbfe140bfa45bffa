#!/usr/bin/env python3
"""Get a real authhost access token for one protected MCP URL, the way an MCP client
does it, with the Python standard library only (for scripts/bench).

    python3 tests/bench/get_token.py http://127.0.0.1:8080/json [--user alice --password alice]

Prints the access token on stdout; progress goes to stderr with --verbose.

The flow: an unauthenticated POST to the MCP URL (401 with WWW-Authenticate naming the
protected resource metadata), the metadata, the authorization server metadata, dynamic
client registration (a public client, PKCE S256), then /authorize with resource=<MCP
URL> followed by hand, one redirect at a time, with one cookie jar for the whole flow:
authhost's consent page (its form posted back with decision=approve), the identity
provider's login page (its form posted with the username and password), back through
authhost's upstream callback, until a redirect goes to our redirect_uri, whose code is
redeemed at the token endpoint. Nothing ever connects to the redirect_uri itself.
"""

import argparse
import base64
import hashlib
import html.parser
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request

REDIRECT_URI = "http://127.0.0.1:9/callback"
VERBOSE = False


def log(*args):
    if VERBOSE:
        print("get_token:", *args, file=sys.stderr)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand: they surface as HTTPError 3xx."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Response:
    def __init__(self, status, headers, body, url):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class Browser:
    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def request(self, method, url, data=None, headers=None, form=None):
        headers = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, (dict, list)):
            data = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=30) as r:
                return Response(r.status, r.headers, r.read(), url)
        except urllib.error.HTTPError as e:
            # 3xx (redirects are not followed) and 4xx/5xx alike.
            return Response(e.code, e.headers, e.read(), url)


class Forms(html.parser.HTMLParser):
    """Every <form> of a page: its action, method and controls, markup-agnostic."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.current = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.current = {
                "action": attrs.get("action", ""),
                "method": attrs.get("method", "get").lower(),
                "inputs": [],
                "buttons": [],
            }
            self.forms.append(self.current)
        elif self.current is not None and tag in ("input", "button"):
            kind = attrs.get("type", "text" if tag == "input" else "submit").lower()
            control = {"name": attrs.get("name"), "value": attrs.get("value", ""), "type": kind}
            if kind == "submit" or tag == "button":
                self.current["buttons"].append(control)
            else:
                self.current["inputs"].append(control)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None


def fill(form, username, password):
    """The fields a person would submit: hidden and prefilled inputs kept, credentials
    typed into the login form, and the approving button pressed on a consent form."""
    fields = []
    names = set()
    for control in form["inputs"]:
        name = control["name"]
        if not name or control["type"] in ("checkbox", "radio", "file", "image", "reset"):
            continue
        value = control["value"]
        if control["type"] == "password":
            value = password
        elif control["type"] in ("text", "email") and (
            "user" in name.lower() or "login" in name.lower() or "email" in name.lower()
        ):
            value = username
        fields.append((name, value))
        names.add(name)
    approve = [b for b in form["buttons"] if b["name"] and b["value"].lower() in ("approve", "allow", "accept")]
    if approve:
        fields.append((approve[0]["name"], approve[0]["value"]))
    elif "decision" not in names and any(b["name"] == "decision" for b in form["buttons"]):
        fields.append(("decision", "approve"))
    return fields


def challenge_param(header, name):
    match = re.search(name + r'="([^"]*)"', header or "")
    return match.group(1) if match else None


def discover(browser, resource):
    """The MCP client's discovery: 401 -> resource metadata -> AS metadata."""
    probe = browser.request(
        "POST",
        resource,
        data={"jsonrpc": "2.0", "id": 0, "method": "ping"},
        headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"},
    )
    if probe.status != 401:
        sys.exit(f"get_token: expected 401 from {resource}, got {probe.status}: {probe.text()[:300]}")
    metadata_url = challenge_param(probe.headers.get("WWW-Authenticate"), "resource_metadata")
    if not metadata_url:
        parts = urllib.parse.urlsplit(resource)
        metadata_url = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"
    log("resource metadata:", metadata_url)
    prm = browser.request("GET", metadata_url).json()
    issuer = prm["authorization_servers"][0].rstrip("/")
    parts = urllib.parse.urlsplit(issuer)
    as_url = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"
    log("authorization server metadata:", as_url)
    asm = browser.request("GET", as_url)
    if asm.status != 200:
        asm = browser.request("GET", issuer + "/.well-known/openid-configuration")
    return prm.get("resource", resource), asm.json()


def main():
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("resource", help="the protected MCP URL, e.g. http://127.0.0.1:8080/json")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="alice")
    parser.add_argument("--scope", default="mcp")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    VERBOSE = args.verbose

    browser = Browser()
    resource, metadata = discover(browser, args.resource)

    registered = browser.request(
        "POST",
        metadata["registration_endpoint"],
        data={
            "client_name": "authhost bench",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        },
    )
    if registered.status not in (200, 201):
        sys.exit(f"get_token: registration failed ({registered.status}): {registered.text()[:300]}")
    client_id = registered.json()["client_id"]
    log("registered client", client_id)

    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    url = metadata["authorization_endpoint"] + "?" + urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": resource,
            "scope": args.scope,
        }
    )
    method, form = "GET", None
    code = None
    for _ in range(20):
        log(method, url.split("?")[0])
        response = browser.request(method, url, form=form)
        if response.status in (301, 302, 303, 307, 308):
            location = urllib.parse.urljoin(url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
                if "error" in query:
                    sys.exit(f"get_token: authorization failed: {query}")
                if query.get("state") != [state]:
                    sys.exit(f"get_token: state mismatch in {location}")
                code = query["code"][0]
                break
            if response.status in (307, 308) and method == "POST":
                url = location  # keep method and body
            else:
                url, method, form = location, "GET", None
            continue
        if response.status != 200:
            sys.exit(f"get_token: {method} {url} answered {response.status}: {response.text()[:500]}")
        parser_ = Forms()
        parser_.feed(response.text())
        forms = [f for f in parser_.forms if f["method"] == "post"]
        if not forms:
            sys.exit(f"get_token: no form to submit at {url}: {response.text()[:500]}")
        page_form = forms[0]
        url = urllib.parse.urljoin(url, page_form["action"] or url)
        method, form = "POST", fill(page_form, args.user, args.password)
        log("form fields:", [name for name, _ in form])
    if code is None:
        sys.exit("get_token: too many steps without reaching the redirect_uri")
    log("got code")

    token = browser.request(
        "POST",
        metadata["token_endpoint"],
        form={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": resource,
        },
    )
    if token.status != 200:
        sys.exit(f"get_token: token request failed ({token.status}): {token.text()[:300]}")
    print(token.json()["access_token"])


if __name__ == "__main__":
    main()

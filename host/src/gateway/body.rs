//! Reading a request body the way a policy needs it: completely and strictly, so that
//! the MCP server behind cannot read something other than what authhost judged. A
//! body is refused, never forwarded, when it is encoded (`Content-Encoding`), not
//! UTF-8 JSON, has a byte-order mark, trailing data, duplicate keys, keys that spell a
//! JSON-RPC or MCP field in another case (Go's `encoding/json` would match them), or
//! headers (2026-07-28's `Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`) that say
//! something else than the body. What is forwarded is the body re-serialised from
//! what was parsed.

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// What a message asks for, as far as policies care.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Tool(String),
    Resource(String),
    Prompt(String),
}

/// One JSON-RPC message of the body.
#[derive(Debug)]
pub struct Message {
    /// `None` for a notification (no `id` at all); `Some(Value::Null)` for `id: null`.
    pub id: Option<Value>,
    /// `None` for a response (the client answering the server).
    pub method: Option<String>,
    pub target: Option<Target>,
}

/// A body that passed, with the bytes to forward.
#[derive(Debug)]
pub struct Judged {
    pub messages: Vec<Message>,
    pub batch: bool,
    /// The parsed body, serialised again: exactly what was judged.
    pub canonical: Bytes,
}

impl Judged {
    /// Whether any message lists tools, resources, resource templates or prompts (the
    /// answer is then filtered).
    pub fn lists(&self) -> bool {
        self.messages.iter().any(|m| {
            matches!(
                m.method.as_deref(),
                Some("tools/list" | "resources/list" | "resources/templates/list" | "prompts/list")
            )
        })
    }
}

/// Why a body was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// 415: encoded, or not UTF-8 JSON.
    Unsupported(String),
    /// 400: not strict JSON-RPC.
    Malformed(String),
    /// 400 with JSON-RPC error -32020: the headers say something else than the body.
    HeaderMismatch(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// JSON-RPC and MCP field names a server might match without regard to case.
const ENVELOPE_KEYS: &[&str] = &["jsonrpc", "id", "method", "params", "result", "error"];
const PARAMS_KEYS: &[&str] = &["name", "uri", "arguments", "_meta"];

/// The protocol version from which `Mcp-Method` and `Mcp-Name` are required.
const HEADERS_REQUIRED_FROM: &str = "2026-07-28";

pub fn judge(headers: &HeaderMap, body: &[u8]) -> Result<Judged, Refusal> {
    check_encoding(headers)?;
    if body.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(Refusal::Malformed(
            "the body starts with a byte-order mark".into(),
        ));
    }
    let parsed = parse_strict(body)?;
    let (items, batch) = match parsed {
        Value::Array(items) => (items, true),
        single => (vec![single], false),
    };
    let mut messages = Vec::with_capacity(items.len());
    for item in &items {
        messages.push(message(item)?);
    }
    check_headers(headers, &items, &messages, batch)?;
    let value = if batch {
        Value::Array(items)
    } else {
        items.into_iter().next().unwrap_or(Value::Null)
    };
    let canonical = serde_json::to_vec(&value)
        .map_err(|e| Refusal::Malformed(format!("cannot re-serialise the body: {e}")))?;
    Ok(Judged {
        messages,
        batch,
        canonical: Bytes::from(canonical),
    })
}

/// Identity encoding and UTF-8 JSON only: a body in any other form would be read by
/// the server in a way authhost did not.
fn check_encoding(headers: &HeaderMap) -> Result<(), Refusal> {
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let encoding = value.to_str().unwrap_or("?").trim();
        if !encoding.eq_ignore_ascii_case("identity") {
            return Err(Refusal::Unsupported(format!(
                "request bodies must not be encoded (Content-Encoding: {encoding})"
            )));
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Refusal::Unsupported(format!(
            "the body must be application/json, not `{media}`"
        )));
    }
    for parameter in parts {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err(Refusal::Unsupported(format!(
                "the body must be UTF-8, not charset={value}"
            )));
        }
    }
    Ok(())
}

/// serde_json, with its recursion limit, UTF-8 and surrogate checks and no trailing
/// data, plus refusal of duplicate keys (which servers resolve differently).
fn parse_strict(body: &[u8]) -> Result<Value, Refusal> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Strict::deserialize(&mut deserializer)
        .map_err(|e| Refusal::Malformed(format!("the body is not strict JSON: {e}")))?;
    deserializer
        .end()
        .map_err(|e| Refusal::Malformed(format!("data after the JSON body: {e}")))?;
    Ok(value.0)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
        }
        Ok(Value::Object(object))
    }
}

/// A key that is not `canonical` but that a case-insensitive matcher (Go's
/// `encoding/json`, which folds case with Unicode simple folding) takes for it.
fn folds_to(key: &str, canonical: &str) -> bool {
    fn fold(c: char) -> char {
        match c {
            // Unicode simple case folds onto ASCII letters beyond plain lower-casing.
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_lowercase().next().unwrap_or(c),
        }
    }
    key != canonical
        && key.chars().count() == canonical.len()
        && key.chars().map(fold).eq(canonical.chars())
}

fn check_keys(object: &Map<String, Value>, protected: &[&str], at: &str) -> Result<(), Refusal> {
    for key in object.keys() {
        if let Some(canonical) = protected.iter().find(|p| folds_to(key, p)) {
            return Err(Refusal::Malformed(format!(
                "{at} has the key `{key}`, which some servers read as `{canonical}`"
            )));
        }
    }
    Ok(())
}

fn message(item: &Value) -> Result<Message, Refusal> {
    let object = item
        .as_object()
        .ok_or_else(|| Refusal::Malformed("a JSON-RPC message must be an object".into()))?;
    check_keys(object, ENVELOPE_KEYS, "a message")?;
    let params = object.get("params");
    if let Some(params) = params.and_then(Value::as_object) {
        check_keys(params, PARAMS_KEYS, "params")?;
    }
    let method = match object.get("method") {
        None => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(Refusal::Malformed("`method` must be a string".into())),
    };
    let field = |name: &str| {
        params
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| {
                Refusal::Malformed(format!(
                    "`{}` needs a string `params.{name}`",
                    method.as_deref().unwrap_or("")
                ))
            })
    };
    let target = match method.as_deref() {
        Some("tools/call") => Some(Target::Tool(field("name")?)),
        Some("prompts/get") => Some(Target::Prompt(field("name")?)),
        Some("resources/read") => {
            let uri = field("uri")?;
            normal_uri(&uri)?;
            Some(Target::Resource(uri))
        }
        _ => None,
    };
    Ok(Message {
        id: object.get("id").cloned(),
        method,
        target,
    })
}

/// A resource URI must be written the way a URL parser writes it (no dot segments,
/// lower-case scheme and host, no `file://localhost`, no backslashes) and without
/// percent-encoded unreserved characters: servers that normalise it would otherwise
/// read another resource than the one judged.
fn normal_uri(uri: &str) -> Result<(), Refusal> {
    let refused = |why: &str| Refusal::Malformed(format!("the resource URI `{uri}` {why}"));
    let parsed = url::Url::parse(uri).map_err(|_| refused("is not a URI"))?;
    if parsed.as_str() != uri {
        return Err(refused("is not in normal form"));
    }
    let bytes = uri.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%' {
            let hex =
                std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default()).unwrap_or("");
            let decoded = u8::from_str_radix(hex, 16).map_err(|_| refused("has a bad escape"))?;
            if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
                return Err(refused("percent-encodes a character that needs none"));
            }
        }
    }
    Ok(())
}

/// 2026-07-28 mirrors the method, the name and the protocol version in headers; a
/// server that reads the body must refuse headers that disagree with it.
fn check_headers(
    headers: &HeaderMap,
    items: &[Value],
    messages: &[Message],
    batch: bool,
) -> Result<(), Refusal> {
    let header = |name: &str| -> Result<Option<&str>, Refusal> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(Some).map_err(|_| {
                Refusal::HeaderMismatch(format!("the {name} header has invalid characters"))
            }),
        }
    };
    let (method, name, version) = (
        header("mcp-method")?,
        header("mcp-name")?,
        header("mcp-protocol-version")?,
    );
    let mismatch = |what: String| Err(Refusal::HeaderMismatch(what));
    let mirrored = version.is_some_and(|v| v >= HEADERS_REQUIRED_FROM);
    if batch {
        if method.is_some() || name.is_some() {
            return mismatch("Mcp-Method and Mcp-Name cannot describe a batch".into());
        }
        return Ok(());
    }
    let (Some(item), Some(message)) = (items.first(), messages.first()) else {
        return Ok(());
    };
    if let Some(version) = version
        && let Some(in_body) =
            item["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"].as_str()
        && in_body != version
    {
        return mismatch(format!(
            "MCP-Protocol-Version `{version}` differs from the body's `{in_body}`"
        ));
    }
    match (method, message.method.as_deref()) {
        (Some(header), Some(body)) if header != body => {
            return mismatch(format!(
                "Mcp-Method `{header}` differs from the body's `{body}`"
            ));
        }
        (Some(_), None) => return mismatch("Mcp-Method on a message without a method".into()),
        (None, Some(_)) if mirrored => return mismatch("Mcp-Method is missing".into()),
        _ => {}
    }
    let in_body = match &message.target {
        Some(Target::Tool(n) | Target::Prompt(n) | Target::Resource(n)) => Some(n.as_str()),
        None => None,
    };
    match (name.map(decode_name), in_body) {
        (Some(None), _) => mismatch("Mcp-Name is not a valid base64 value".into()),
        (Some(Some(header)), Some(body)) if header != body => mismatch(format!(
            "Mcp-Name `{header}` differs from the body's `{body}`"
        )),
        (Some(Some(_)), None) => mismatch("Mcp-Name on a message that names nothing".into()),
        (None, Some(_)) if mirrored => mismatch("Mcp-Name is missing".into()),
        _ => Ok(()),
    }
}

/// An `Mcp-Name` value: plain, or `=?base64?…?=` (UTF-8, standard alphabet). `None`
/// when the encoded form does not decode.
fn decode_name(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
    }

    fn refused(body: &str) -> Refusal {
        judge(&json_headers(), body.as_bytes()).unwrap_err()
    }

    #[test]
    fn calls_are_found_whatever_their_id() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"drop"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"drop"}}"#,
        ] {
            let judged = judge(&json_headers(), body.as_bytes()).unwrap();
            assert_eq!(
                judged.messages[0].target,
                Some(Target::Tool("drop".into())),
                "{body}"
            );
        }
        let escaped = br#"{"jsonrpc":"2.0","id":1,"\u006dethod":"tools/call","params":{"name":"adm\u0069n"}}"#;
        let judged = judge(&json_headers(), escaped).unwrap();
        assert_eq!(
            judged.messages[0].target,
            Some(Target::Tool("admin".into()))
        );
        assert!(
            !judged.canonical.windows(2).any(|w| w == b"\\u"),
            "forwarded as judged"
        );
    }

    #[test]
    fn anything_but_strict_utf8_json_is_refused() {
        for body in [
            "{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\",\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"a"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"a","name":"b"}}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"n\u{212A}me\":\"a\"}}",
            "{\"j\u{17F}onrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}} trailing"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///public/../secret/keys.txt"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file://localhost/secret/keys.txt"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///%73ecret/keys.txt"}}"#,
            "[1, 2]",
        ] {
            assert!(matches!(refused(body), Refusal::Malformed(_)), "{body}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(refused(&deep), Refusal::Malformed(_)));
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert!(judge(&json_headers(), &bom).is_err());
        assert!(judge(&json_headers(), b"{\"id\":\"\xff\"}").is_err());
    }

    #[test]
    fn encodings_and_charsets_other_than_utf8_json_are_unsupported() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        for (name, value) in [
            ("content-encoding", "gzip"),
            ("content-encoding", "deflate"),
            ("content-encoding", "br"),
            ("content-type", "application/json; charset=utf-16"),
            ("content-type", "application/json; charset=latin1"),
            ("content-type", "text/plain"),
        ] {
            let mut headers = json_headers();
            headers.insert(name, HeaderValue::from_static(value));
            let refusal = judge(&headers, body).unwrap_err();
            assert_eq!(
                refusal.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{value}"
            );
        }
        let mut headers = json_headers();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=UTF-8"),
        );
        assert!(judge(&headers, body).is_ok());
    }

    #[test]
    fn mirrored_headers_must_agree_with_the_body() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"h\u00e9llo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = json_headers();
            for (k, v) in pairs {
                headers.insert(*k, HeaderValue::from_static(v));
            }
            judge(&headers, body)
        };
        let v = ("mcp-protocol-version", "2026-07-28");
        let m = ("mcp-method", "tools/call");
        assert!(with(&[v, m, ("mcp-name", "=?base64?aMOpbGxv?=")]).is_ok());
        for bad in [
            vec![v, m, ("mcp-name", "allowed_tool")],
            vec![
                v,
                ("mcp-method", "tools/list"),
                ("mcp-name", "=?base64?aMOpbGxv?="),
            ],
            vec![v, m],
            vec![v, ("mcp-name", "=?base64?aMOpbGxv?=")],
            vec![
                ("mcp-protocol-version", "2026-08-01"),
                m,
                ("mcp-name", "=?base64?aMOpbGxv?="),
            ],
            vec![v, m, ("mcp-name", "=?base64?!!?=")],
        ] {
            assert!(
                matches!(with(&bad), Err(Refusal::HeaderMismatch(_))),
                "{bad:?}"
            );
        }
        // Before 2026-07-28 clients send no mirrored headers.
        assert!(with(&[("mcp-protocol-version", "2025-11-25")]).is_err());
        let old = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
        let mut headers = json_headers();
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        );
        assert!(judge(&headers, old).is_ok());
    }
}

//! The little of MCP's JSON-RPC the gateway writes: the errors it answers with, and
//! list results (tools, resources, resource templates, prompts) with what the caller
//! may not use taken out, in JSON and in SSE responses.

use super::body::Target;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INTERNAL_ERROR: i64 = -32603;

/// What the caller may see in list answers.
pub type Filter = std::sync::Arc<dyn Fn(&Target) -> bool + Send + Sync>;

pub fn error(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// A list in a result: its key, the field naming each entry, and what that names.
type List = (&'static str, &'static str, fn(String) -> Target);

const LISTS: [List; 4] = [
    ("tools", "name", Target::Tool),
    ("resources", "uri", Target::Resource),
    ("resourceTemplates", "uriTemplate", Target::Resource),
    ("prompts", "name", Target::Prompt),
];

/// Remove from a list result (tools, resources, resource templates, prompts) every
/// entry `keep` refuses. Other messages pass unchanged. Returns whether anything
/// changed.
pub fn filter_lists(message: &mut Value, keep: &dyn Fn(&Target) -> bool) -> bool {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    for (list, field, target) in LISTS {
        let Some(entries) = result.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        let before = entries.len();
        entries.retain(|entry| {
            entry[field]
                .as_str()
                .is_some_and(|name| keep(&target(name.to_string())))
        });
        changed |= entries.len() != before;
    }
    changed
}

/// Filter a whole JSON body (one message or a batch): the new body when anything was
/// taken out, `Ok(None)` when nothing was, `Err` when the body is not JSON (the
/// caller must not pass it on: it may hold what the filter would have taken out).
pub fn filter_json_body(
    body: &[u8],
    keep: &dyn Fn(&Target) -> bool,
) -> Result<Option<Vec<u8>>, String> {
    let mut parsed: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let changed = match &mut parsed {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, m| filter_lists(m, keep) | changed),
        single => filter_lists(single, keep),
    };
    Ok(changed.then(|| serde_json::to_vec(&parsed).unwrap_or_default()))
}

/// Filter an SSE stream event by event, passing each on as soon as it is complete.
pub fn filter_sse<S, E>(upstream: S, keep: Filter) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    futures_util::stream::unfold(
        (upstream, BytesMut::new(), false, keep),
        |(mut upstream, mut buffer, mut done, keep)| async move {
            loop {
                if let Some(end) = event_end(&buffer) {
                    let event = buffer.split_to(end);
                    let out = rewrite_event(&event, &*keep).unwrap_or_else(|| event.freeze());
                    return Some((Ok(out), (upstream, buffer, done, keep)));
                }
                if done {
                    // A last event without its blank line: pass it as it is.
                    return (!buffer.is_empty())
                        .then(|| (Ok(buffer.split().freeze()), (upstream, buffer, done, keep)));
                }
                match upstream.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e), (upstream, buffer, true, keep))),
                    None => done = true,
                }
            }
        },
    )
}

/// The length of the first complete event (through its blank line), if any.
fn event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The event with its `data` filtered, or `None` to pass it unchanged.
fn rewrite_event(event: &[u8], keep: &dyn Fn(&Target) -> bool) -> Option<Bytes> {
    let text = std::str::from_utf8(event).ok()?;
    let mut data = String::new();
    let mut other_lines = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        } else if !line.is_empty() {
            other_lines.push(line);
        }
    }
    let mut message: Value = serde_json::from_str(&data).ok()?;
    if !filter_lists(&mut message, keep) {
        return None;
    }
    let mut out = String::new();
    for line in other_lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&message.to_string());
    out.push_str("\n\n");
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_every_kind_are_filtered() {
        let mut answer = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "tools": [{"name": "echo"}, {"name": "drop"}],
            "resources": [{"uri": "file:///public/a"}, {"uri": "file:///secret/b"}],
            "resourceTemplates": [{"uriTemplate": "file:///secret/{x}"}],
            "prompts": [{"name": "greet"}, {"name": "secret_prompt"}],
        }});
        let keep = |t: &Target| match t {
            Target::Tool(n) => n != "drop",
            Target::Resource(u) => !u.starts_with("file:///secret"),
            Target::Prompt(n) => !n.starts_with("secret"),
        };
        assert!(filter_lists(&mut answer, &keep));
        let result = &answer["result"];
        assert_eq!(result["tools"], json!([{"name": "echo"}]));
        assert_eq!(result["resources"], json!([{"uri": "file:///public/a"}]));
        assert_eq!(result["resourceTemplates"], json!([]));
        assert_eq!(result["prompts"], json!([{"name": "greet"}]));
        assert!(filter_json_body(b"\x1f\x8b gzip", &keep).is_err());
    }

    #[tokio::test]
    async fn sse_tools_lists_are_filtered_event_by_event() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: mess")),
            Ok(Bytes::from_static(b"age\nid: 9\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"drop\"}]}}\r\n\r\n")),
        ];
        let filtered: Vec<Bytes> = filter_sse(
            futures_util::stream::iter(chunks),
            std::sync::Arc::new(|t: &Target| *t != Target::Tool("drop".into())),
        )
        .map(|r| r.unwrap())
        .collect()
        .await;
        assert_eq!(filtered.len(), 2);
        assert!(filtered[0].starts_with(b"event: message\ndata: {\"jsonrpc\""));
        let second = std::str::from_utf8(&filtered[1]).unwrap();
        assert!(
            second.starts_with("event: message\nid: 9\ndata: "),
            "{second}"
        );
        assert!(
            second.contains("echo") && !second.contains("drop"),
            "{second}"
        );
    }
}

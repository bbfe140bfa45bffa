//! The little of MCP's JSON-RPC the gateway reads: which tools a request calls or
//! lists, the errors it answers denials with, and `tools/list` results with the tools
//! the caller may not call taken out (in JSON and in SSE responses).

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

/// JSON-RPC error code for a call authhost's policy refuses (in the range JSON-RPC
/// leaves to servers).
pub const POLICY_DENIED: i64 = -32001;

/// Which tools the caller may see.
pub type ToolFilter = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What a request body asks for, as far as policies care.
#[derive(Debug, Default)]
pub struct Inspected {
    /// `(id, tool name)` of every `tools/call`.
    pub calls: Vec<(Value, String)>,
    /// Whether any message is a `tools/list` request.
    pub lists_tools: bool,
    /// The ids of every request in the body (for error responses).
    pub ids: Vec<Value>,
}

/// Read a request body: one message or a batch. `None` when it is not JSON-RPC; the
/// MCP server is then left to answer.
pub fn inspect(body: &[u8]) -> Option<Inspected> {
    let parsed: Value = serde_json::from_slice(body).ok()?;
    let messages = match parsed {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut inspected = Inspected::default();
    for message in &messages {
        let Some(id) = message.get("id").filter(|id| !id.is_null()) else {
            continue;
        };
        inspected.ids.push(id.clone());
        match message["method"].as_str() {
            Some("tools/call") => {
                let name = message["params"]["name"].as_str().unwrap_or("").to_string();
                inspected.calls.push((id.clone(), name));
            }
            Some("tools/list") => inspected.lists_tools = true,
            _ => {}
        }
    }
    Some(inspected)
}

pub fn error(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// Remove from a `tools/list` result every tool `keep` refuses. Other messages pass
/// unchanged. Returns whether anything changed.
pub fn filter_tools(message: &mut Value, keep: &dyn Fn(&str) -> bool) -> bool {
    let Some(tools) = message
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = tools.len();
    tools.retain(|tool| tool["name"].as_str().is_some_and(keep));
    tools.len() != before
}

/// Filter a whole JSON body (one message or a batch).
pub fn filter_json_body(body: &[u8], keep: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut parsed: Value = serde_json::from_slice(body).ok()?;
    let changed = match &mut parsed {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, m| filter_tools(m, keep) | changed),
        single => filter_tools(single, keep),
    };
    changed.then(|| serde_json::to_vec(&parsed).unwrap_or_default())
}

/// Filter an SSE stream event by event, passing each on as soon as it is complete.
pub fn filter_sse<S, E>(
    upstream: S,
    keep: ToolFilter,
) -> impl Stream<Item = Result<Bytes, E>> + Send
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
fn rewrite_event(event: &[u8], keep: &dyn Fn(&str) -> bool) -> Option<Bytes> {
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
    if !filter_tools(&mut message, keep) {
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
    fn inspects_calls_lists_and_batches() {
        let one =
            inspect(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"drop"}}"#)
                .unwrap();
        assert_eq!(one.calls, vec![(json!(7), "drop".to_string())]);
        let batch = inspect(br#"[{"jsonrpc":"2.0","id":"a","method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#).unwrap();
        assert!(batch.lists_tools && batch.calls.is_empty());
        assert_eq!(batch.ids, vec![json!("a")]);
        assert!(inspect(b"not json").is_none());
    }

    #[tokio::test]
    async fn sse_tools_lists_are_filtered_event_by_event() {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: mess")),
            Ok(Bytes::from_static(b"age\nid: 9\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"drop\"}]}}\r\n\r\n")),
        ];
        let filtered: Vec<Bytes> = filter_sse(
            futures_util::stream::iter(chunks),
            std::sync::Arc::new(|t: &str| t != "drop"),
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

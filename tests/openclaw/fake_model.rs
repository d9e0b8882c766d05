//! The model OpenClaw talks to: an OpenAI-compatible endpoint on 127.0.0.1 (`GET /v1/models`,
//! `POST /v1/chat/completions`, streamed as server-sent events or as one JSON answer) that
//! answers each chat request by a script the test writes, and records every request so the test
//! can say which prompts reached the model.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use crate::http::{Request, Response, Server};
use crate::process::tail;

/// The model's id, under the provider `fake` in OpenClaw's config.
pub const MODEL: &str = "echo";

/// After this many chat requests the model only says "stop": a script that loops (the agent
/// calling a tool for ever) ends instead of burning the test's time.
const REQUEST_CAP: usize = 300;

/// What the model answers a turn with.
pub enum Reply {
    /// Final assistant text.
    Text(String),
    /// A call of OpenClaw's `exec` tool with this shell command.
    Exec(String),
}

/// One chat request, as the script sees it.
pub struct Turn {
    pub body: Value,
}

impl Turn {
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// A message's text: its `content` string, or its text parts joined.
    pub fn text(message: &Value) -> String {
        match &message["content"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|part| part["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        }
    }

    /// The index of the last user message containing `needle`.
    pub fn last_user_message_with(&self, needle: &str) -> Option<usize> {
        self.messages()
            .iter()
            .rposition(|m| m["role"] == "user" && Self::text(m).contains(needle))
    }

    /// The texts of the tool results after message `index`.
    pub fn tool_results_after(&self, index: usize) -> Vec<String> {
        self.messages()
            .iter()
            .skip(index + 1)
            .filter(|m| m["role"] == "tool")
            .map(Self::text)
            .collect()
    }

    /// All user messages' text.
    pub fn user_text(&self) -> String {
        self.messages()
            .iter()
            .filter(|m| m["role"] == "user")
            .map(Self::text)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A field of the `Runtime: agent=main | session=... | shell=...` line OpenClaw appends to
    /// the turn's prompt: `shell` is `exec` when the turn's process ran under the exec marker.
    pub fn runtime(&self, key: &str) -> Option<String> {
        let text = self.user_text();
        let line = text.lines().rev().find(|l| l.starts_with("Runtime: "))?;
        line["Runtime: ".len()..].split(" | ").find_map(|field| {
            let (k, v) = field.split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    }
}

pub struct FakeModel {
    server: Server,
}

impl FakeModel {
    pub fn start(script: impl Fn(&Turn) -> Reply + Send + Sync + 'static) -> Self {
        let chats = AtomicUsize::new(0);
        let server = Server::start(move |request: &Request| {
            if request.method == "GET" && request.path.ends_with("/models") {
                return Response::json(&json!({
                    "object": "list",
                    "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}],
                }));
            }
            if request.method != "POST" || !request.path.ends_with("/chat/completions") {
                return Response::text(404, "not found");
            }
            let Ok(body) = serde_json::from_str::<Value>(&request.body) else {
                return Response::text(400, "the body is not JSON");
            };
            let turn = Turn { body };
            let reply = if chats.fetch_add(1, Ordering::SeqCst) >= REQUEST_CAP {
                Reply::Text("stop: the fake model's request cap was reached".into())
            } else {
                script(&turn)
            };
            let n = chats.load(Ordering::SeqCst);
            if turn.body["stream"] == true {
                Response {
                    status: 200,
                    content_type: "text/event-stream",
                    body: stream(&reply, n),
                }
            } else {
                Response::json(&whole(&reply, n))
            }
        });
        Self { server }
    }

    /// The `baseUrl` for OpenClaw's provider config.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.server.url())
    }

    /// Every chat request so far.
    pub fn turns(&self) -> Vec<Turn> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .map(|body| Turn { body })
            .collect()
    }

    /// The request log for a failure message: each request's line, and for chat requests the
    /// non-system messages, trimmed.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for request in self.server.requests() {
            let _ = writeln!(out, "{} {}", request.method, request.path);
            let Ok(body) = serde_json::from_str::<Value>(&request.body) else {
                continue;
            };
            for message in (Turn { body }).messages() {
                if message["role"] != "system" {
                    let text = Turn::text(message);
                    let calls = message.get("tool_calls").map(ToString::to_string);
                    let _ = writeln!(
                        out,
                        "    {}: {} {}",
                        message["role"].as_str().unwrap_or("?"),
                        tail(&text, 400).replace('\n', "\\n"),
                        calls.unwrap_or_default(),
                    );
                }
            }
        }
        tail(&out, 20_000)
    }
}

fn exec_call(command: &str, n: usize) -> Value {
    json!([{
        "index": 0,
        "id": format!("call_{n}"),
        "type": "function",
        "function": {"name": "exec", "arguments": json!({"command": command}).to_string()},
    }])
}

/// The reply as `chat.completion.chunk` events, a usage chunk, then `[DONE]`.
fn stream(reply: &Reply, n: usize) -> String {
    let chunk = |choices: Value, usage: Value| {
        let mut chunk = json!({
            "id": format!("chatcmpl-{n}"), "object": "chat.completion.chunk", "created": 0,
            "model": MODEL, "choices": choices,
        });
        if !usage.is_null() {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    let (delta, finish) = match reply {
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::Exec(command) => (
            json!({"role": "assistant", "tool_calls": exec_call(command, n)}),
            "tool_calls",
        ),
    };
    let usage = json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12});
    [
        chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
            Value::Null,
        ),
        chunk(json!([]), usage),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat()
}

/// The reply as one `chat.completion` object.
fn whole(reply: &Reply, n: usize) -> Value {
    let (message, finish) = match reply {
        Reply::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Reply::Exec(command) => (
            json!({"role": "assistant", "content": null, "tool_calls": exec_call(command, n)}),
            "tool_calls",
        ),
    };
    json!({
        "id": format!("chatcmpl-{n}"), "object": "chat.completion", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    })
}

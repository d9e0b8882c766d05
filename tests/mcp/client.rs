//! A minimal MCP client over stdio, as Claude Code or mcporter would speak to `seq-mcp`: one
//! JSON-RPC message per line, `initialize`, `notifications/initialized`, then `tools/list` and
//! `tools/call`. Every tool result's shape is checked here, so each test reads as the calls it
//! makes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Workspace;

pub const MCP: &str = env!("CARGO_BIN_EXE_seq-mcp");

/// How long one request may take before the test fails (a cancel takes up to ~5 s).
const PATIENCE: Duration = Duration::from_secs(30);

/// The protocol version this client asks for: the newest one with an `initialize` handshake.
pub const PROTOCOL: &str = "2025-11-25";

/// A running `seq-mcp` and the client's end of its pipes.
pub struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
    /// Everything the server said, for failure messages.
    transcript: Vec<String>,
}

/// One tool result: its text, its structured content, whether it is an error.
#[derive(Debug)]
pub struct Reply {
    pub text: String,
    pub json: Value,
    pub is_error: bool,
}

impl Client {
    /// Starts `seq-mcp` in the workspace (with its environment) and initializes the session.
    pub fn start(ws: &Workspace) -> Self {
        let mut child = ws
            .command(MCP)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn seq-mcp");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        // A thread reads, so that a silent server fails the test after PATIENCE, not never.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut client = Self {
            stdin: child.stdin.take(),
            child,
            lines,
            next_id: 1,
            transcript: Vec::new(),
        };
        client.initialize();
        client
    }

    fn initialize(&mut self) {
        let result = self.request(
            "initialize",
            &json!({
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": { "name": "seq-mcp-test", "version": "0" },
            }),
        );
        assert_eq!(result["protocolVersion"], PROTOCOL, "{result:#}");
        assert_eq!(result["serverInfo"]["name"], "seq-mcp", "{result:#}");
        assert_eq!(
            result["serverInfo"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{result:#}"
        );
        assert!(result["capabilities"]["tools"].is_object(), "{result:#}");
        assert!(
            result["instructions"]
                .as_str()
                .is_some_and(|i| i.contains("plan_start")),
            "{result:#}"
        );
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
    }

    /// The tools the server lists, by name.
    pub fn tools(&mut self) -> Vec<Value> {
        let result = self.request("tools/list", &json!({}));
        result["tools"].as_array().expect("tools").clone()
    }

    /// Calls a tool and checks the result's shape: one text content, and an object as
    /// `structuredContent` (for an error, `{"error": <the text>}`).
    pub fn call(&mut self, tool: &str, arguments: &Value) -> Reply {
        let result = self.request(
            "tools/call",
            &json!({ "name": tool, "arguments": arguments }),
        );
        let is_error = result["isError"]
            .as_bool()
            .unwrap_or_else(|| panic!("{tool}: no isError in {result:#}"));
        let content = result["content"].as_array().expect("content");
        assert_eq!(content.len(), 1, "{tool}: {result:#}");
        assert_eq!(content[0]["type"], "text", "{tool}: {result:#}");
        let text = content[0]["text"].as_str().unwrap().to_owned();
        assert!(!text.is_empty(), "{tool}: empty text: {result:#}");
        let json = result["structuredContent"].clone();
        if is_error && text.starts_with("failed to deserialize parameters") {
            // rmcp's own answer to arguments that do not fit the schema: text only.
            assert!(json.is_null(), "{tool}: {result:#}");
        } else {
            assert!(json.is_object(), "{tool}: {result:#}");
        }
        if is_error && json.is_object() {
            assert_eq!(json, json!({ "error": text }), "{tool}: {result:#}");
        }
        Reply {
            text,
            json,
            is_error,
        }
    }

    /// Calls a tool that must succeed; returns its structured content.
    #[track_caller]
    pub fn ok(&mut self, tool: &str, arguments: &Value) -> Value {
        let reply = self.call(tool, arguments);
        assert!(!reply.is_error, "{tool} {arguments}: {}", reply.text);
        reply.json
    }

    /// Calls a tool that must fail; returns its message.
    #[track_caller]
    pub fn err(&mut self, tool: &str, arguments: &Value) -> String {
        let reply = self.call(tool, arguments);
        assert!(
            reply.is_error,
            "{tool} {arguments} succeeded: {}",
            reply.text
        );
        reply.text
    }

    /// Sends a request and waits for its response (skipping notifications); returns `result`.
    pub fn request(&mut self, method: &str, params: &Value) -> Value {
        let response = self.raw(method, params);
        assert!(
            response.get("error").is_none(),
            "{method}: protocol error {response:#}"
        );
        response["result"].clone()
    }

    /// Sends a request and returns the whole response, error or not.
    pub fn raw(&mut self, method: &str, params: &Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "{method}: no answer ({e})\nserver said:\n{}",
                    self.transcript.join("\n")
                )
            });
            self.transcript.push(line.clone());
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == id {
                return message;
            }
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").expect("write to seq-mcp");
        stdin.flush().unwrap();
    }

    /// Closes the client's end, as a client does when it quits, and waits for the server to
    /// exit; returns its exit code.
    pub fn close(mut self) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "seq-mcp did not exit after its stdin closed"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // A failed test must not leave a server behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

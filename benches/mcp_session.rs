//! seq-mcp's start-up time and peak memory, measured as a client sees them (benches/mcp.sh runs
//! it). Run as `mcp_session SEQ_MCP SEQ_CHECK RUNS DIR`:
//!
//! - the floor: RUNS times, spawning `seq-check --version` and waiting for its exit;
//! - start-up: RUNS times, from spawning the server to the answer to `tools/list` (after
//!   `initialize` and `notifications/initialized`, as a client sends them), and its peak RSS
//!   then (VmHWM, read before the client closes it);
//! - a working session: one server validates, starts and follows a 1,000-step plan (agent
//!   `true`) to the end, then reads its result and a page of 1,000 events; its peak RSS.

use std::fs;
use std::io::{BufRead, BufReader, Lines, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    id: u64,
}

impl Server {
    fn start(bin: &str, dir: &Path) -> Self {
        let mut child = Command::new(bin)
            .current_dir(dir)
            .env("STEP_AGENT_CMD", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn seq-mcp");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            lines,
            id: 0,
        }
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: &Value) -> Value {
        self.id += 1;
        let id = self.id;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let line = self.lines.next().expect("an answer").unwrap();
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
        }
    }

    fn handshake(&mut self) -> usize {
        self.request(
            "initialize",
            &json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                     "clientInfo": { "name": "bench", "version": "0" } }),
        );
        self.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        self.request("tools/list", &json!({}))["tools"]
            .as_array()
            .unwrap()
            .len()
    }

    fn call(&mut self, tool: &str, arguments: &Value) -> Value {
        let result = self.request(
            "tools/call",
            &json!({ "name": tool, "arguments": arguments }),
        );
        assert_eq!(result["isError"], false, "{tool}: {result}");
        result["structuredContent"].clone()
    }

    /// Peak RSS so far in KiB, then the client closes the connection.
    fn close(mut self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap();
        drop(self.stdin);
        self.child.wait().unwrap();
        kib
    }
}

fn plan(steps: usize) -> Value {
    let ids: Vec<String> = (1..=steps).map(|i| format!("s{i}")).collect();
    let defined: serde_json::Map<String, Value> = ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                json!({ "title": id, "instruction": format!("do {id}") }),
            )
        })
        .collect();
    json!({ "plan": { "steps": defined }, "stepQueue": ids })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: mcp_session SEQ_MCP SEQ_CHECK RUNS DIR";
    let bin = args.next().expect(usage);
    let check = args.next().expect(usage);
    let runs: usize = args.next().expect(usage).parse().expect(usage);
    let dir = args.next().expect(usage);
    let dir = Path::new(&dir);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut floor: Vec<Duration> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            let status = Command::new(&check).arg("--version").output().unwrap();
            assert!(status.status.success());
            t0.elapsed()
        })
        .collect();
    floor.sort();
    println!(
        "floor: seq-check --version, spawn to exit, {runs} runs: median {:.2} ms",
        ms(floor[runs / 2])
    );

    let mut times = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut server = Server::start(&bin, dir);
        let tools = server.handshake();
        times.push(t0.elapsed());
        assert_eq!(tools, 13);
        peaks.push(server.close());
    }
    times.sort();
    peaks.sort_unstable();
    println!(
        "start-up to the tools/list answer, {runs} runs: median {:.2} ms (min {:.2}, max {:.2})",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1])
    );
    println!(
        "peak RSS after start-up: median {:.1} MiB (max {:.1})",
        peaks[runs / 2] as f64 / 1024.0,
        peaks[runs - 1] as f64 / 1024.0
    );

    let work = dir.join("session");
    fs::create_dir_all(&work).unwrap();
    let t0 = Instant::now();
    let mut server = Server::start(&bin, &work);
    server.handshake();
    let plan = plan(1000);
    assert_eq!(
        server.call("plan_validate", &json!({ "plan": plan }))["valid"],
        true
    );
    server.call("plan_start", &json!({ "plan": plan }));
    while server.call("plan_status", &json!({}))["status"] != "success" {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.call("plan_result", &json!({}));
    server.call("plan_events", &json!({ "limit": 1000 }));
    server.call("step_logs", &json!({ "step": "s1000" }));
    let took = t0.elapsed();
    println!(
        "working session (1,000-step plan validated, started, followed to the end, its result \
         and 1,000 events read): peak RSS {:.1} MiB, {:.1} s",
        server.close() as f64 / 1024.0,
        took.as_secs_f64()
    );
}

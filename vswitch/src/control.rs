//! The control protocol: one JSON request per line, one JSON response per
//! line, over a unix socket (mode 0600).
//!
//! Request: `{"v":1,"cmd":"dump-flows","args":{"bridge":"br-int"}}`.
//! Response: `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`.
//! Every change is validated and built before it is published: a bad
//! request leaves the running state untouched. Lines are capped at
//! `MAX_REQUEST` bytes, clients at `MAX_CLIENTS`, and each connection has a
//! read timeout, so a slow or hostile client cannot hold the daemon.

use crate::daemon::Shared;
use pipeline::flow::text::{parse_flow, parse_match};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const PROTOCOL_VERSION: u32 = 1;
pub const MAX_REQUEST: usize = 1 << 20;
pub const MAX_CLIENTS: usize = 16;

#[derive(Debug, Deserialize, Serialize)]
pub struct Request {
    pub v: u32,
    pub cmd: String,
    #[serde(default)]
    pub args: Value,
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, String> {
    args.get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("missing argument `{name}`"))
}

/// Carries out one request.
pub fn handle(shared: &Shared, req: &Request) -> Result<Value, String> {
    if req.v != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} not supported (this daemon speaks {PROTOCOL_VERSION})",
            req.v
        ));
    }
    let a = &req.args;
    match req.cmd.as_str() {
        "version" => Ok(json!({ "protocol": PROTOCOL_VERSION, "host": shared.host })),
        "show" => Ok(json!(crate::offline::show(&shared.snapshot.load()))),
        "dump-flows" => {
            let sw = shared.snapshot.load();
            crate::offline::dump_flows(&sw, arg(a, "bridge")?, shared.now_ns()).map(Value::from)
        }
        "add-flow" | "add-flows" => {
            let bridge = arg(a, "bridge")?.to_string();
            let lines: Vec<String> = match a.get("flows").and_then(|v| v.as_array()) {
                Some(v) => v
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                None => vec![arg(a, "flow")?.to_string()],
            };
            let now = shared.now_ns();
            shared.update(|st| {
                let names = st.config.port_names(&bridge).map_err(|e| e.to_string())?;
                let mut flows = Vec::new();
                for (i, l) in lines.iter().enumerate() {
                    flows.push(parse_flow(l, &names).map_err(|e| format!("flow {}: {e}", i + 1))?);
                }
                let n = flows.len();
                st.config
                    .add_flows(&bridge, flows, now)
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "added": n }))
            })
        }
        "del-flows" => {
            let bridge = arg(a, "bridge")?.to_string();
            let m = a
                .get("match")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            shared.update(|st| {
                let names = st.config.port_names(&bridge).map_err(|e| e.to_string())?;
                let sel = if m.trim().is_empty() {
                    pipeline::flow::Flow {
                        matches: pipeline::flow::Match::ANY,
                        ..Default::default()
                    }
                } else {
                    let text = if m.contains("actions=") {
                        m.clone()
                    } else {
                        format!("{m} actions=drop")
                    };
                    parse_flow(&text, &names).map_err(|e| e.to_string())?
                };
                let selector = pipeline::switch::FlowSelector {
                    table: m.contains("table=").then_some(sel.table),
                    matches: sel.matches,
                    strict: false,
                    priority: sel.priority,
                    cookie: sel.cookie,
                    cookie_mask: sel.cookie_mask,
                };
                let n = st
                    .config
                    .del_flows(&bridge, &selector)
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "deleted": n }))
            })
        }
        "trace" => {
            let sw = shared.snapshot.load();
            let packet = arg(a, "packet")?;
            let bridge = a.get("bridge").and_then(|v| v.as_str());
            let t = pipeline::trace::trace_text(&sw, bridge, packet, shared.now_ns())
                .map_err(|e| e.to_string())?;
            Ok(json!({ "text": t.render(), "trace": t }))
        }
        "fdb-show" => {
            let sw = shared.snapshot.load();
            let b = sw.bridge(arg(a, "bridge")?).ok_or("no such bridge")?;
            let rows: Vec<Value> = b
                .macs
                .rows(shared.now_ns())
                .into_iter()
                .map(|r| json!({ "port": sw.port(r.port).map(|p| p.ofport), "vlan": r.vlan, "mac": r.mac.to_string(), "age": r.age_secs }))
                .collect();
            Ok(Value::from(rows))
        }
        "conntrack-dump" => {
            let sw = shared.snapshot.load();
            let zone = a.get("zone").and_then(|v| v.as_u64()).map(|z| z as u16);
            let addr = match a.get("addr").and_then(|v| v.as_str()) {
                Some(s) => Some(
                    s.parse()
                        .map_err(|_| format!("`{s}` is not an IPv4 address"))?,
                ),
                None => None,
            };
            serde_json::to_value(sw.conntrack.dump(zone, addr)).map_err(|e| e.to_string())
        }
        "conntrack-flush" => {
            let sw = shared.snapshot.load();
            let zone = a.get("zone").and_then(|v| v.as_u64()).map(|z| z as u16);
            Ok(json!({ "deleted": sw.conntrack.flush(zone) }))
        }
        "pmd-stats" => {
            let reports: Vec<Value> = shared
                .reports
                .iter()
                .map(|r| {
                    serde_json::to_value(&*r.lock().unwrap_or_else(|e| e.into_inner()))
                        .unwrap_or(Value::Null)
                })
                .collect();
            Ok(Value::from(reports))
        }
        "topology-show" => {
            let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            serde_json::to_value(&st.topology).map_err(|e| e.to_string())
        }
        "topology-load" => {
            let text = arg(a, "toml")?;
            let t = pipeline::topology::load_toml(text).map_err(|e| e.to_string())?;
            let now = shared.now_ns();
            let host = shared.host.clone();
            shared.update(|st| {
                let deleted =
                    pipeline::topology::update_host(&mut st.config, &st.topology, &t, &host, now)
                        .map_err(|e| e.to_string())?;
                st.topology = t;
                Ok(json!({ "connections_deleted": deleted }))
            })
        }
        "match-check" => {
            // Parses a match for the given bridge (for clients that validate input).
            let sw = shared.snapshot.load();
            let b = sw.bridge(arg(a, "bridge")?).ok_or("no such bridge")?;
            parse_match(arg(a, "match")?, b)
                .map(|m| json!(pipeline::flow::text::format_match(&m, b)))
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

/// The listening socket and its thread.
pub struct ControlServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl ControlServer {
    /// Listens on `path` (its directory is created; a stale socket file is
    /// replaced; mode 0600).
    pub fn start(path: &Path, shared: Arc<Shared>) -> Result<ControlServer, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(format!("{}: another daemon is listening", path.display()));
            }
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(AtomicUsize::new(0));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                while !stop2.load(Ordering::Acquire) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if clients.load(Ordering::Acquire) >= MAX_CLIENTS {
                                let mut s = stream;
                                let _ = writeln!(
                                    s,
                                    "{}",
                                    json!({ "ok": false, "error": "too many clients" })
                                );
                                continue;
                            }
                            clients.fetch_add(1, Ordering::AcqRel);
                            let shared = shared.clone();
                            let clients = clients.clone();
                            let _ = std::thread::Builder::new()
                                .name("control-client".into())
                                .spawn(move || {
                                    serve(stream, &shared);
                                    clients.fetch_sub(1, Ordering::AcqRel);
                                });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(ControlServer {
            stop,
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers the requests of one client until it hangs up.
fn serve(stream: UnixStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let n = match (&mut reader)
            .take(MAX_REQUEST as u64 + 1)
            .read_line(&mut line)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let resp = if n > MAX_REQUEST {
            json!({ "ok": false, "error": format!("request longer than {MAX_REQUEST} bytes") })
        } else {
            match serde_json::from_str::<Request>(line.trim_end()) {
                Err(e) => json!({ "ok": false, "error": format!("malformed request: {e}") }),
                Ok(req) => match handle(shared, &req) {
                    Ok(result) => json!({ "ok": true, "result": result }),
                    Err(error) => json!({ "ok": false, "error": error }),
                },
            }
        };
        if writeln!(writer, "{resp}").is_err() {
            return;
        }
        if n > MAX_REQUEST {
            return;
        }
    }
}

/// Sends one request to the daemon at `path` and returns its result.
pub fn call(path: &Path, cmd: &str, args: Value) -> Result<Value, String> {
    let mut s = UnixStream::connect(path)
        .map_err(|e| format!("{}: {e} (is vswitchd running?)", path.display()))?;
    let req = json!({ "v": PROTOCOL_VERSION, "cmd": cmd, "args": args });
    writeln!(s, "{req}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&line).map_err(|e| format!("bad response: {e}"))?;
    if v.get("ok").and_then(|x| x.as_bool()) == Some(true) {
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    } else {
        Err(v
            .get("error")
            .and_then(|x| x.as_str())
            .unwrap_or("unknown error")
            .to_string())
    }
}

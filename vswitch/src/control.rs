//! The control protocol: one JSON request per line, one JSON response per
//! line, over a unix socket.
//!
//! The socket is the daemon's whole authority, so its file is guarded:
//! mode 0600 (0660 and the configured group with `socket_group`), created
//! under a umask that never lets it exist with looser bits; its directory
//! is created 0755 and must be owned by us (or root) and writable by
//! no one else; a path someone else owns is never replaced; a stale socket
//! of our own is.
//!
//! Request: `{"v":1,"cmd":"dump-flows","args":{"bridge":"br-int"}}`.
//! Response: `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`.
//! Every change is validated and built before it is published: a bad
//! request leaves the running state untouched. Lines are capped at
//! `MAX_REQUEST` bytes, clients at `MAX_CLIENTS`, and each connection has a
//! read timeout, so a slow or hostile client cannot hold the daemon.

use crate::config::Backend;
use crate::daemon::Shared;
use pipeline::flow::text::{parse_flow, parse_match};
use pipeline::flow::PortNames;
use pipeline::switch::{FlowSelector, PortConfig, PortKind, VlanMode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use topology::model::Port as TopoPort;
use topology::Topology;

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

fn opt_str<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name).and_then(|v| v.as_str())
}

fn opt_u64(args: &Value, name: &str) -> Result<Option<u64>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("argument `{name}` must be a non-negative integer")),
    }
}

fn opt_u16(args: &Value, name: &str) -> Result<Option<u16>, String> {
    match opt_u64(args, name)? {
        None => Ok(None),
        Some(v) => u16::try_from(v)
            .map(Some)
            .map_err(|_| format!("argument `{name}`: {v} is out of range")),
    }
}

fn opt_bool(args: &Value, name: &str) -> bool {
    args.get(name).and_then(|v| v.as_bool()).unwrap_or(false)
}

fn opt_ipv4(args: &Value, name: &str) -> Result<Option<Ipv4Addr>, String> {
    match opt_str(args, name) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("argument `{name}`: `{s}` is not an IPv4 address")),
    }
}

/// The backend of an `add-port`/`set-port`/`vm-port-add` request, if any.
fn backend_arg(args: &Value) -> Result<Option<(Backend, usize)>, String> {
    let Some(b) = args.get("backend").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let backend: Backend =
        serde_json::from_value(b.clone()).map_err(|e| format!("backend: {e}"))?;
    let queues = opt_u64(args, "queues")?.unwrap_or(1) as usize;
    Ok(Some((backend, queues)))
}

/// A flow selector from a match text (`table=`, `priority=`, `cookie=`
/// honoured) for `del-flows`/`mod-flows`.
fn selector(
    names: &dyn PortNames,
    text: &str,
    strict: bool,
) -> Result<(FlowSelector, pipeline::flow::Flow), String> {
    let sel = if text.trim().is_empty() {
        pipeline::flow::Flow {
            matches: pipeline::flow::Match::ANY,
            ..Default::default()
        }
    } else {
        let t = if text.contains("actions=") {
            text.to_string()
        } else {
            format!("{text} actions=drop")
        };
        parse_flow(&t, names).map_err(|e| e.to_string())?
    };
    Ok((
        FlowSelector {
            table: text.contains("table=").then_some(sel.table),
            matches: sel.matches,
            strict,
            priority: sel.priority,
            cookie: sel.cookie,
            cookie_mask: sel.cookie_mask,
        },
        sel,
    ))
}

/// Port kind and VLAN mode from `add-port`/`set-port` arguments, applied
/// over `p`.
fn apply_port_args(p: &mut PortConfig, a: &Value) -> Result<(), String> {
    match opt_str(a, "kind") {
        None => {}
        Some("system") => p.kind = PortKind::System,
        Some("internal") => p.kind = PortKind::Internal,
        Some("patch") => {
            let peer = opt_str(a, "peer").ok_or("a patch port needs `peer`")?;
            p.kind = PortKind::Patch {
                peer: peer.to_string(),
            };
        }
        Some(k) => return Err(format!("kind `{k}`: not system, internal or patch")),
    }
    if let (Some(peer), PortKind::Patch { .. }) = (opt_str(a, "peer"), &p.kind) {
        p.kind = PortKind::Patch {
            peer: peer.to_string(),
        };
    }
    if let Some(tag) = opt_u16(a, "tag")? {
        p.vlan = VlanMode::Access { tag };
    }
    if let Some(t) = a.get("trunks").filter(|v| !v.is_null()) {
        let trunks: Vec<u16> =
            serde_json::from_value(t.clone()).map_err(|e| format!("trunks: {e}"))?;
        p.vlan = VlanMode::Trunk { trunks };
    }
    if let Some(n) = a.get("no_flood").and_then(|v| v.as_bool()) {
        p.no_flood = n;
    }
    Ok(())
}

/// The arguments each command takes. A request naming any other is
/// refused before anything runs: a misspelt key (`flow` for `del-flows`'s
/// `match`) must not silently widen what the command does.
fn known_args(cmd: &str) -> Option<&'static [&'static str]> {
    Some(match cmd {
        "version" | "show" | "conntrack-stats" | "pmd-stats" | "topology-show" => &[],
        "dump-flows" | "add-br" | "del-br" | "fdb-show" => &["bridge"],
        "add-flow" | "add-flows" => &["bridge", "flow", "flows"],
        "mod-flows" => &["bridge", "flow", "strict"],
        "del-flows" => &["bridge", "match", "strict"],
        "add-port" => &[
            "bridge", "port", "ofport", "kind", "peer", "tag", "trunks", "no_flood", "backend",
            "queues",
        ],
        "del-port" => &["port"],
        "set-port" => &[
            "port", "unbind", "kind", "peer", "tag", "trunks", "no_flood", "backend", "queues",
        ],
        "dump-ports" => &["bridge", "port"],
        "trace" => &["bridge", "packet"],
        "conntrack-dump" | "conntrack-flush" => &["addr", "zone"],
        "router-show" => &["router"],
        "topology-load" => &["toml"],
        "vm-port-add" => &[
            "name",
            "device",
            "host",
            "network",
            "mac",
            "ip",
            "no_port_security",
            "ofport",
            "backend",
            "queues",
        ],
        "vm-port-del" => &["name"],
        "fip-associate" => &["address", "port", "router"],
        "fip-disassociate" => &["address"],
        "capture" => &["port", "file", "count", "duration_ms"],
        "match-check" => &["bridge", "match"],
        _ => return None,
    })
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
    if let Some(known) = known_args(&req.cmd) {
        match a {
            Value::Null => {}
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(format!(
                        "{}: unknown argument `{k}` (it takes: {})",
                        req.cmd,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
            }
            _ => return Err(format!("{}: arguments must be an object", req.cmd)),
        }
    }
    match req.cmd.as_str() {
        "version" => Ok(json!({ "protocol": PROTOCOL_VERSION, "host": shared.host })),
        "show" => {
            let view = crate::render::SwitchView::of(&shared.switch());
            let mut text = view.text();
            let bindings = shared.bindings();
            for b in &bindings {
                text.push_str(&format!(
                    "I/O {}: {} ({} queue{})\n",
                    b.port,
                    serde_json::to_string(&b.backend).unwrap_or_default(),
                    b.queues,
                    if b.queues == 1 { "" } else { "s" }
                ));
            }
            let mut v = serde_json::to_value(&view).map_err(|e| e.to_string())?;
            v["io"] = serde_json::to_value(&bindings).map_err(|e| e.to_string())?;
            v["host"] = json!(shared.host);
            v["text"] = json!(text);
            Ok(v)
        }
        "dump-flows" => {
            let sw = shared.switch();
            crate::render::dump_flows(&sw, arg(a, "bridge")?, shared.now_ns())
                .map(Value::from)
                .map_err(|e| e.to_string())
        }
        "add-flow" | "add-flows" => {
            let bridge = arg(a, "bridge")?.to_string();
            let lines: Vec<String> = match a.get("flows").and_then(|v| v.as_array()) {
                Some(v) => v
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| "flows: every flow must be a string".to_string())
                    })
                    .collect::<Result<_, _>>()?,
                None => vec![arg(a, "flow")?.to_string()],
            };
            let now = shared.now_ns();
            update(shared, |st| {
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
        "mod-flows" => {
            let bridge = arg(a, "bridge")?.to_string();
            let text = arg(a, "flow")?.to_string();
            if !text.contains("actions=") {
                return Err("mod-flows needs `actions=`".into());
            }
            let strict = opt_bool(a, "strict");
            update(shared, |st| {
                let names = st.config.port_names(&bridge).map_err(|e| e.to_string())?;
                let (sel, flow) = selector(&names, &text, strict)?;
                let n = st
                    .config
                    .mod_flows(&bridge, &sel, flow.actions)
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "modified": n }))
            })
        }
        "del-flows" => {
            let bridge = arg(a, "bridge")?.to_string();
            let m = opt_str(a, "match").unwrap_or("").to_string();
            let strict = opt_bool(a, "strict");
            update(shared, |st| {
                let names = st.config.port_names(&bridge).map_err(|e| e.to_string())?;
                let (sel, _) = selector(&names, &m, strict)?;
                let n = st
                    .config
                    .del_flows(&bridge, &sel)
                    .map_err(|e| e.to_string())?;
                Ok(json!({ "deleted": n }))
            })
        }
        "add-br" => {
            let bridge = arg(a, "bridge")?.to_string();
            update(shared, |st| {
                st.config.add_bridge(&bridge).map_err(|e| e.to_string())?;
                Ok(json!({ "bridge": bridge }))
            })
        }
        "del-br" => {
            let bridge = arg(a, "bridge")?.to_string();
            let ports = update(shared, |st| {
                let ports = st.config.port_names_of(&bridge);
                st.config.del_bridge(&bridge).map_err(|e| e.to_string())?;
                Ok(ports)
            })?;
            for p in ports {
                let _ = shared.unbind_port(&p);
            }
            Ok(json!({ "bridge": bridge }))
        }
        "add-port" => {
            let bridge = arg(a, "bridge")?.to_string();
            let name = arg(a, "port")?.to_string();
            let backend = backend_arg(a)?;
            let mut p =
                PortConfig::new(&name, PortKind::System, VlanMode::Trunk { trunks: vec![] });
            apply_port_args(&mut p, a)?;
            p.ofport = opt_u64(a, "ofport")?
                .map(|n| u32::try_from(n).map_err(|_| format!("ofport {n} is out of range")))
                .transpose()?;
            if backend.is_some() && p.kind != PortKind::System {
                return Err(format!("{name}: only system ports carry I/O"));
            }
            let ofport = update(shared, |st| {
                st.config.add_port(&bridge, p).map_err(|e| e.to_string())
            })?;
            if let Some((b, q)) = backend {
                if let Err(e) = shared.bind_port(&name, &b, q).map_err(|e| e.to_string()) {
                    // All or nothing: take the port back out.
                    let _ = update(shared, |st| {
                        st.config.del_port(&name).map_err(|e| e.to_string())
                    });
                    return Err(e);
                }
            }
            Ok(json!({ "port": name, "ofport": ofport }))
        }
        "del-port" => {
            let name = arg(a, "port")?.to_string();
            update(shared, |st| {
                st.config.del_port(&name).map_err(|e| e.to_string())
            })?;
            let _ = shared.unbind_port(&name);
            Ok(json!({ "port": name }))
        }
        "set-port" => {
            let name = arg(a, "port")?.to_string();
            let backend = backend_arg(a)?;
            let changes_port = ["kind", "peer", "tag", "trunks", "no_flood"]
                .iter()
                .any(|k| a.get(*k).is_some_and(|v| !v.is_null()));
            // The port as it was, to put back if the new I/O cannot open.
            let before = shared
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .config
                .port_config(&name)
                .map(|(_, c)| c.clone());
            if changes_port {
                let mut err = None;
                update(shared, |st| {
                    st.config
                        .set_port(&name, |p| {
                            if let Err(e) = apply_port_args(p, a) {
                                err = Some(e);
                            }
                        })
                        .map_err(|e| e.to_string())?;
                    match err.take() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    }
                })?;
            } else if shared.switch().port_by_name(&name).is_none() {
                return Err(format!("no port named `{name}`"));
            }
            if opt_bool(a, "unbind") {
                shared.unbind_port(&name).map_err(|e| e.to_string())?;
            } else if let Some((b, q)) = backend {
                if let Err(e) = shared.bind_port(&name, &b, q).map_err(|e| e.to_string()) {
                    if let (true, Some(old)) = (changes_port, before) {
                        let _ = update(shared, |st| {
                            st.config
                                .set_port(&name, |p| *p = old)
                                .map_err(|e| e.to_string())
                        });
                    }
                    return Err(e);
                }
            }
            Ok(json!({ "port": name }))
        }
        "dump-ports" => {
            let sw = shared.switch();
            let bridge = opt_str(a, "bridge");
            if let Some(b) = bridge {
                if sw.bridge(b).is_none() {
                    return Err(format!("no bridge named `{b}`"));
                }
            }
            let port = opt_str(a, "port");
            let bound: Vec<String> = shared.bindings().into_iter().map(|b| b.port).collect();
            let rows: Vec<Value> = shared
                .port_counters()
                .into_iter()
                .filter(|(name, _, _)| {
                    let p = sw.port_by_name(name);
                    let br = p.and_then(|p| sw.bridges.get(p.bridge)).map(|b| b.name.as_str());
                    bridge.is_none_or(|b| Some(b) == br) && port.is_none_or(|x| x == name)
                })
                .map(|(name, ofport, c)| {
                    let br = sw
                        .port_by_name(&name)
                        .and_then(|p| sw.bridges.get(p.bridge))
                        .map(|b| b.name.clone());
                    json!({ "bridge": br, "port": name, "ofport": ofport, "io": bound.contains(&name), "counters": c })
                })
                .collect();
            if let Some(p) = port {
                if rows.is_empty() {
                    return Err(format!("no port named `{p}`"));
                }
            }
            Ok(Value::from(rows))
        }
        "trace" => {
            let sw = shared.switch();
            let packet = arg(a, "packet")?;
            let bridge = opt_str(a, "bridge");
            let t = pipeline::trace::trace_text(&sw, bridge, packet, shared.now_ns())
                .map_err(|e| e.to_string())?;
            Ok(json!({ "text": t.render(), "trace": t }))
        }
        "fdb-show" => {
            let sw = shared.switch();
            let name = arg(a, "bridge")?;
            let b = sw
                .bridge(name)
                .ok_or_else(|| format!("no bridge named `{name}`"))?;
            let rows: Vec<Value> = b
                .macs
                .rows(shared.now_ns())
                .into_iter()
                .map(|r| json!({ "port": sw.port(r.port).map(|p| p.ofport), "vlan": r.vlan, "mac": r.mac.to_string(), "age": r.age_secs }))
                .collect();
            Ok(Value::from(rows))
        }
        "conntrack-dump" => {
            let sw = shared.switch();
            let zone = opt_u16(a, "zone")?;
            let addr = opt_ipv4(a, "addr")?;
            serde_json::to_value(sw.conntrack.dump(zone, addr)).map_err(|e| e.to_string())
        }
        "conntrack-flush" => {
            let sw = shared.switch();
            let zone = opt_u16(a, "zone")?;
            let deleted = match opt_ipv4(a, "addr")? {
                Some(ip) => sw.conntrack.flush_addr(zone, ip),
                None => sw.conntrack.flush(zone),
            };
            Ok(json!({ "deleted": deleted }))
        }
        "conntrack-stats" => {
            let sw = shared.switch();
            Ok(conntrack_stats(&sw.conntrack))
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
        "router-show" => {
            let sw = shared.switch();
            let routers =
                crate::render::routers(&sw, opt_str(a, "router")).map_err(|e| e.to_string())?;
            let text = crate::render::routers_text(&routers);
            Ok(json!({ "routers": routers, "text": text }))
        }
        "topology-show" => {
            let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            serde_json::to_value(&st.topology).map_err(|e| e.to_string())
        }
        "topology-load" => {
            let text = arg(a, "toml")?;
            let t = topology::load_toml(text).map_err(|e| e.to_string())?;
            apply_topology(shared, |_| Ok(t))
        }
        "vm-port-add" => {
            let port = TopoPort {
                name: arg(a, "name")?.to_string(),
                device: arg(a, "device")?.to_string(),
                host: opt_str(a, "host").unwrap_or(&shared.host).to_string(),
                network: arg(a, "network")?.to_string(),
                mac: arg(a, "mac")?.parse().map_err(|_| {
                    format!("mac `{}`: not a MAC address", arg(a, "mac").unwrap_or(""))
                })?,
                ip: opt_ipv4(a, "ip")?.ok_or("missing argument `ip`")?,
                owner: topology::model::PortOwner::Compute,
                port_security: !opt_bool(a, "no_port_security"),
                allowed_address_pairs: Vec::new(),
                ofport: opt_u64(a, "ofport")?
                    .map(|n| u32::try_from(n).map_err(|_| format!("ofport {n} is out of range")))
                    .transpose()?,
            };
            let backend = backend_arg(a)?;
            let (name, device, here) = (
                port.name.clone(),
                port.device.clone(),
                port.host == shared.host,
            );
            if backend.is_some() && !here {
                return Err(format!(
                    "{name}: I/O can be bound only to a port of this host ({})",
                    shared.host
                ));
            }
            let mut v = apply_topology(shared, |mut t| {
                if t.ports.iter().any(|p| p.name == port.name) {
                    return Err(format!("port `{}` already exists", port.name));
                }
                t.ports.push(port);
                Ok(t)
            })?;
            if let Some((b, q)) = backend {
                if let Err(e) = shared.bind_port(&device, &b, q).map_err(|e| e.to_string()) {
                    // All or nothing: take the port back out.
                    let _ = apply_topology(shared, |mut t| {
                        t.ports.retain(|p| p.name != name);
                        Ok(t)
                    });
                    return Err(e);
                }
            }
            v["port"] = json!(name);
            Ok(v)
        }
        "vm-port-del" => {
            let name = arg(a, "name")?.to_string();
            let mut device = None;
            let v = apply_topology(shared, |mut t| {
                let i = t
                    .ports
                    .iter()
                    .position(|p| p.name == name)
                    .ok_or_else(|| format!("no port named `{name}` in the topology"))?;
                let p = t.ports.remove(i);
                if t.floating_ips
                    .iter()
                    .any(|f| f.port.as_deref() == Some(&name))
                {
                    return Err(format!(
                        "port `{name}` has a floating IP: disassociate it first"
                    ));
                }
                device = Some(p.device);
                Ok(t)
            })?;
            if let Some(d) = device {
                let _ = shared.unbind_port(&d);
            }
            Ok(v)
        }
        "fip-associate" => {
            let address = opt_ipv4(a, "address")?.ok_or("missing argument `address`")?;
            let port = arg(a, "port")?.to_string();
            let router = opt_str(a, "router").map(str::to_string);
            apply_topology(shared, |mut t| {
                let p = t
                    .ports
                    .iter()
                    .find(|p| p.name == port)
                    .ok_or_else(|| format!("no port named `{port}` in the topology"))?
                    .clone();
                let router = match router {
                    Some(r) => r,
                    None => router_of(&t, &p)?,
                };
                match t.floating_ips.iter_mut().find(|f| f.address == address) {
                    Some(f) => {
                        if let Some(other) = &f.port {
                            if *other != port {
                                return Err(format!(
                                    "floating IP {address} is associated with `{other}`: disassociate it first"
                                ));
                            }
                        }
                        f.port = Some(port);
                        f.router = router;
                    }
                    None => t.floating_ips.push(topology::model::FloatingIp {
                        address,
                        port: Some(port),
                        router,
                        rule_priority: None,
                    }),
                }
                Ok(t)
            })
        }
        "fip-disassociate" => {
            let address = opt_ipv4(a, "address")?.ok_or("missing argument `address`")?;
            apply_topology(shared, |mut t| {
                let f = t
                    .floating_ips
                    .iter_mut()
                    .find(|f| f.address == address)
                    .ok_or_else(|| format!("no floating IP {address} in the topology"))?;
                if f.port.take().is_none() {
                    return Err(format!("floating IP {address} is not associated"));
                }
                Ok(t)
            })
        }
        "capture" => capture(shared, a),
        "match-check" => {
            // Parses a match for the given bridge (for clients that validate input).
            let sw = shared.switch();
            let name = arg(a, "bridge")?;
            let b = sw
                .bridge(name)
                .ok_or_else(|| format!("no bridge named `{name}`"))?;
            parse_match(arg(a, "match")?, b)
                .map(|m| json!(pipeline::flow::text::format_match(&m, b)))
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

/// Error text (until the protocol has its own error type).
struct Text(String);

impl From<pipeline::switch::ConfigError> for Text {
    fn from(e: pipeline::switch::ConfigError) -> Text {
        Text(e.to_string())
    }
}

/// `Shared::update` with errors as text.
fn update<T>(
    shared: &Shared,
    change: impl FnOnce(&mut crate::daemon::ControlState) -> Result<T, String>,
) -> Result<T, String> {
    shared
        .update::<T, Text>(|st| change(st).map_err(Text))
        .map_err(|t| t.0)
}

/// The router whose subnet the port is on (for a floating IP).
fn router_of(t: &Topology, p: &TopoPort) -> Result<String, String> {
    let subnets: Vec<&str> = t
        .subnets
        .iter()
        .filter(|s| s.network == p.network)
        .map(|s| s.name.as_str())
        .collect();
    let routers: Vec<&str> = t
        .routers
        .iter()
        .filter(|r| {
            r.interfaces
                .iter()
                .any(|i| subnets.contains(&i.subnet.as_str()))
        })
        .map(|r| r.name.as_str())
        .collect();
    match routers.as_slice() {
        [r] => Ok(r.to_string()),
        [] => Err(format!(
            "no router has an interface on network `{}` of port `{}`",
            p.network, p.name
        )),
        _ => Err(format!(
            "several routers serve network `{}`: give --router",
            p.network
        )),
    }
}

/// Changes the running topology with `change` (given a copy), validates
/// it, brings this host's switch to it and publishes, all or nothing.
fn apply_topology(
    shared: &Shared,
    change: impl FnOnce(Topology) -> Result<Topology, String>,
) -> Result<Value, String> {
    let now = shared.now_ns();
    let host = shared.host.clone();
    update(shared, |st| {
        let t = change(st.topology.clone())?;
        topology::validate::validate(&t).map_err(|e| e.to_string())?;
        let deleted = topology::update_host(&mut st.config, &st.topology, &t, &host, now)
            .map_err(|e| e.to_string())?;
        st.topology = t;
        Ok(json!({ "connections_deleted": deleted }))
    })
}

/// Conntrack size and counters per reason.
pub fn conntrack_stats(ct: &pipeline::conntrack::ConnTable) -> Value {
    serde_json::to_value(ct.stats()).unwrap_or(Value::Null)
}

/// `capture`: copies a port's frames into a pcap file until `count`
/// frames or `duration_ms` (default 10 s, at most an hour), then reports.
fn capture(shared: &Shared, a: &Value) -> Result<Value, String> {
    let port = arg(a, "port")?.to_string();
    let file = PathBuf::from(arg(a, "file")?);
    if !file.is_absolute() {
        return Err(format!("{}: give an absolute path", file.display()));
    }
    let count = opt_u64(a, "count")?;
    if count == Some(0) {
        return Err("count must be at least 1".into());
    }
    let duration = Duration::from_millis(opt_u64(a, "duration_ms")?.unwrap_or(10_000))
        .min(crate::capture::MAX_DURATION);
    if shared.switch().port_by_name(&port).is_none() {
        return Err(format!("no port named `{port}` on host {}", shared.host));
    }
    let (cap, writer) = crate::capture::Capture::start(&file, count).map_err(|e| e.to_string())?;
    if let Err(e) = shared
        .add_capture(&port, cap.clone())
        .map_err(|e| e.to_string())
    {
        writer.finish(cap);
        let _ = std::fs::remove_file(&file);
        return Err(e);
    }
    let start = std::time::Instant::now();
    while start.elapsed() < duration && !cap.full() && !shared.stopping() {
        std::thread::sleep(Duration::from_millis(10));
    }
    shared.remove_capture(&cap);
    // Workers drop the capture at their next burst boundary.
    std::thread::sleep(Duration::from_millis(20));
    let r = writer.finish(cap);
    Ok(json!({ "port": port, "file": file, "packets": r.written, "dropped": r.dropped }))
}

/// Creates (0755) or checks the socket's directory: a directory, owned by
/// us or root, writable by neither group nor others.
fn check_socket_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let md = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !md.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    if md.uid() != crate::os::euid() && md.uid() != 0 {
        return Err(format!(
            "{}: owned by uid {}, not by us (uid {}) or root; refusing to put the control socket there",
            dir.display(),
            md.uid(),
            crate::os::euid()
        ));
    }
    if md.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: writable by others (mode {:o}); the control socket's directory must be 0755 or stricter",
            dir.display(),
            md.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Binds the control socket at `path` (see the module notes).
fn bind_socket(path: &Path, gid: Option<u32>) -> Result<UnixListener, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_socket_dir(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) => {
            if md.uid() != crate::os::euid() {
                return Err(format!(
                    "{shown}: exists and is owned by uid {}, not by us (uid {}); refusing to replace it",
                    md.uid(),
                    crate::os::euid()
                ));
            }
            if !md.file_type().is_socket() {
                return Err(format!(
                    "{shown}: exists and is not a socket; refusing to replace it"
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(format!("{shown}: another daemon is listening"));
            }
            // A stale socket of ours (a daemon that did not clean up).
            std::fs::remove_file(path).map_err(|e| format!("{shown}: {e}"))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    // The socket file takes its mode from the umask at bind: never let it
    // exist with more than 0600, even for the moment before chmod.
    let bound = crate::os::with_umask(0o177, || UnixListener::bind(path));
    let listener = bound.map_err(|e| format!("{shown}: {e}"))?;
    let finish = || -> Result<(), String> {
        if let Some(g) = gid {
            std::os::unix::fs::chown(path, None, Some(g))
                .map_err(|e| format!("{shown}: chown to gid {g}: {e}"))?;
        }
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{shown}: {e}"))
    };
    if let Err(e) = finish() {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// The listening socket and its thread.
pub struct ControlServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl ControlServer {
    /// Listens on `path`, mode 0600 (see the module notes).
    pub fn start(path: &Path, shared: Arc<Shared>) -> Result<ControlServer, String> {
        ControlServer::start_with_group(path, None, shared)
    }

    /// Listens on `path`; with a `group`, the socket is mode 0660 and
    /// belongs to that group (an unknown group is an error naming it).
    /// Errors name the path or group and leave nothing behind.
    pub fn start_with_group(
        path: &Path,
        group: Option<&str>,
        shared: Arc<Shared>,
    ) -> Result<ControlServer, String> {
        let gid = group
            .map(|g| crate::os::group_id(g).map_err(|e| format!("socket_group `{g}`: {e}")))
            .transpose()?;
        let listener = bind_socket(path, gid)?;
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
            respond(shared, &line)
        };
        if writeln!(writer, "{resp}").is_err() {
            return;
        }
        if n > MAX_REQUEST {
            return;
        }
    }
}

/// The response to one request line: decoded, handled, and the result or
/// the error as the protocol's JSON object.
pub fn respond(shared: &Shared, line: &str) -> Value {
    match serde_json::from_str::<Request>(line.trim_end()) {
        Err(e) => json!({ "ok": false, "error": format!("malformed request: {e}") }),
        Ok(req) => match handle(shared, &req) {
            Ok(result) => json!({ "ok": true, "result": result }),
            Err(error) => json!({ "ok": false, "error": error }),
        },
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

//! A scenario directory: bridges, ports, flows, static MAC entries and test
//! packets, in the format of `shared/tools/ovs-oracle` so that one directory
//! can be run both through this switch and through a real Open vSwitch.
//!
//! Layout:
//! * `ports.conf`: `bridge NAME`, `port BRIDGE NAME [ofport=N]
//!   [type=dummy|system|internal|patch] [peer=P] [tag=V] [trunks=V1,V2]
//!   [mac=M]`, `fdb BRIDGE PORT VLAN MAC`, `noflood BRIDGE PORT`
//!   (`noflood BR BR` names OVS's bridge-local port, which this switch does
//!   not have, and is accepted and ignored).
//! * `flows/BRIDGE.flows`: `ovs-ofctl add-flows` format, port names allowed.
//! * `packets.txt` (optional): `[label |] [--ct-next FLAGS ...] BRIDGE FLOW`
//!   per line; each `--ct-next` (ofproto/trace's option) gives the
//!   `ct_state` one `ct(table=...)` recirculation sees, in order.

use pipeline::flow::text::parse_flow;
use pipeline::key::Mac;
use pipeline::switch::{PortConfig, PortKind, SwitchConfig, VlanMode};
use std::path::Path;

/// A static MAC entry to install once the switch is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    pub bridge: String,
    pub port: String,
    pub vlan: u16,
    pub mac: Mac,
}

/// A packet line of `packets.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketLine {
    pub label: String,
    pub bridge: String,
    pub flow: String,
    /// `--ct-next` states, first recirculation first.
    pub ct_next: Vec<u8>,
}

impl PacketLine {
    /// The trace options this line asks for.
    pub fn trace_options(&self) -> pipeline::xlate::trace::TraceOptions {
        pipeline::xlate::trace::TraceOptions {
            ct_next: self.ct_next.clone(),
        }
    }
}

pub struct ScenarioDir {
    pub config: SwitchConfig,
    pub fdb: Vec<FdbEntry>,
    pub packets: Vec<PacketLine>,
}

/// An error naming the file, line and item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Loads a scenario from text (what `load_dir` reads from files).
/// `flows` holds (bridge, text of its .flows file).
pub fn load(
    ports_conf: &str,
    flows: &[(String, String)],
    packets: Option<&str>,
    n_workers: usize,
) -> Result<ScenarioDir, ScenarioError> {
    let mut config = SwitchConfig::new(n_workers);
    let mut fdb = Vec::new();
    let mut noflood = Vec::new();
    let err = |file: &str, line: usize, message: String| ScenarioError {
        file: file.to_string(),
        line,
        message,
    };
    for (i, raw) in ports_conf.lines().enumerate() {
        let ln = i + 1;
        let line = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&kind) = words.first() else { continue };
        let e = |m: String| err("ports.conf", ln, m);
        match kind {
            "bridge" => {
                let name = words
                    .get(1)
                    .ok_or_else(|| e("bridge needs a name".into()))?;
                config.add_bridge(name).map_err(|x| e(x.to_string()))?;
                // Its own (LOCAL) port, as Open vSwitch gives every bridge.
                let local =
                    PortConfig::new(name, PortKind::Internal, VlanMode::Trunk { trunks: vec![] });
                config.add_port(name, local).map_err(|x| e(x.to_string()))?;
            }
            "port" => {
                let (Some(bridge), Some(name)) = (words.get(1), words.get(2)) else {
                    return Err(e("port needs BRIDGE NAME".into()));
                };
                let mut p =
                    PortConfig::new(name, PortKind::System, VlanMode::Trunk { trunks: vec![] });
                let mut kind_word = "dummy";
                let mut peer = None;
                for kv in &words[3..] {
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| e(format!("`{kv}`: expected KEY=VALUE")))?;
                    let num = |v: &str| {
                        v.parse::<u32>()
                            .map_err(|_| e(format!("`{kv}`: not a number")))
                    };
                    match k {
                        "ofport" => p.ofport = Some(num(v)?),
                        "type" => kind_word = v,
                        "peer" => peer = Some(v.to_string()),
                        "tag" => {
                            p.vlan = VlanMode::Access {
                                tag: num(v)? as u16,
                            }
                        }
                        "trunks" => {
                            let trunks = v
                                .split(',')
                                .map(|t| {
                                    t.parse::<u16>()
                                        .map_err(|_| e(format!("`{kv}`: bad VLAN `{t}`")))
                                })
                                .collect::<Result<Vec<_>, _>>()?;
                            p.vlan = VlanMode::Trunk { trunks };
                        }
                        "vlan_mode" => {}
                        "mac" => {
                            p.mac = Some(v.parse().map_err(|_| e(format!("`{kv}`: bad MAC")))?)
                        }
                        _ if k.starts_with("opt:") => {}
                        _ => return Err(e(format!("`{kv}`: unknown port setting `{k}`"))),
                    }
                }
                p.kind = match kind_word {
                    "dummy" | "system" | "afpacket" | "dpdk" => PortKind::System,
                    "internal" => PortKind::Internal,
                    "patch" => PortKind::Patch {
                        peer: peer.ok_or_else(|| e(format!("patch port `{name}` needs peer=")))?,
                    },
                    other => return Err(e(format!("port `{name}`: unknown type `{other}`"))),
                };
                config.add_port(bridge, p).map_err(|x| e(x.to_string()))?;
            }
            "fdb" => {
                let [_, bridge, port, vlan, mac] = words[..] else {
                    return Err(e("fdb needs BRIDGE PORT VLAN MAC".into()));
                };
                fdb.push(FdbEntry {
                    bridge: bridge.to_string(),
                    port: port.to_string(),
                    vlan: vlan
                        .parse()
                        .map_err(|_| e(format!("fdb: bad VLAN `{vlan}`")))?,
                    mac: mac
                        .parse()
                        .map_err(|_| e(format!("fdb: bad MAC `{mac}`")))?,
                });
            }
            "noflood" => {
                let [_, bridge, port] = words[..] else {
                    return Err(e("noflood needs BRIDGE PORT".into()));
                };
                let _ = bridge;
                noflood.push((ln, port.to_string()));
            }
            other => return Err(e(format!("unknown statement `{other}`"))),
        }
    }
    for (ln, port) in noflood {
        config
            .set_port(&port, |p| p.no_flood = true)
            .map_err(|x| err("ports.conf", ln, x.to_string()))?;
    }
    for (bridge, text) in flows {
        let file = format!("flows/{bridge}.flows");
        let names = config
            .port_names(bridge)
            .map_err(|x| err(&file, 0, x.to_string()))?;
        let mut parsed = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            parsed.push(parse_flow(l, &names).map_err(|x| err(&file, i + 1, x.to_string()))?);
        }
        config
            .add_flows(bridge, parsed, 0)
            .map_err(|x| err(&file, 0, x.to_string()))?;
    }
    let packets = match packets {
        None => Vec::new(),
        Some(text) => parse_packets(text).map_err(|(ln, m)| err("packets.txt", ln, m))?,
    };
    Ok(ScenarioDir {
        config,
        fdb,
        packets,
    })
}

fn parse_packets(text: &str) -> Result<Vec<PacketLine>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        // A label ends at ` | `, as oracle.py reads it: `trk|est` is not one.
        let (label, rest) = match l.split_once(" | ") {
            Some((a, b)) => (a.trim().to_string(), b.trim()),
            None => (format!("packet{}", out.len() + 1), l),
        };
        let mut rest = rest;
        let mut ct_next = Vec::new();
        while let Some(opt) = rest.strip_prefix("--") {
            let (name, after) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
            match name {
                "ct-next" => {
                    let after = after.trim_start();
                    let (flags, tail) =
                        after.split_once(char::is_whitespace).unwrap_or((after, ""));
                    if flags.is_empty() {
                        return Err((i + 1, "--ct-next needs FLAGS, e.g. `trk,new`".into()));
                    }
                    let state = pipeline::trace::parse_ct_state_flags(flags)
                        .map_err(|m| (i + 1, format!("--ct-next: {m}")))?;
                    ct_next.push(state);
                    rest = tail.trim_start();
                }
                other => return Err((i + 1, format!("unknown option `--{other}`"))),
            }
        }
        let (bridge, flow) = rest
            .split_once(char::is_whitespace)
            .ok_or((i + 1, "expected BRIDGE FLOW".to_string()))?;
        out.push(PacketLine {
            label,
            bridge: bridge.to_string(),
            flow: flow.trim().to_string(),
            ct_next,
        });
    }
    Ok(out)
}

/// Loads a scenario directory.
pub fn load_dir(dir: &Path, n_workers: usize) -> Result<ScenarioDir, ScenarioError> {
    let read = |rel: &str| {
        std::fs::read_to_string(dir.join(rel)).map_err(|e| ScenarioError {
            file: dir.join(rel).display().to_string(),
            line: 0,
            message: e.to_string(),
        })
    };
    let ports = read("ports.conf")?;
    let mut flows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("flows")) {
        let mut names: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names {
            if p.extension().is_some_and(|x| x == "flows") {
                let bridge = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                flows.push((bridge.clone(), read(&format!("flows/{bridge}.flows"))?));
            }
        }
    }
    let packets = if dir.join("packets.txt").exists() {
        Some(read("packets.txt")?)
    } else {
        None
    };
    load(&ports, &flows, packets.as_deref(), n_workers)
}

impl ScenarioDir {
    /// Builds the snapshot and installs the static MAC entries.
    pub fn build(&mut self) -> Result<std::sync::Arc<pipeline::switch::Switch>, ScenarioError> {
        let sw = self.config.build().map_err(|e| ScenarioError {
            file: "flows".into(),
            line: 0,
            message: e.to_string(),
        })?;
        for f in &self.fdb {
            let bad = |m: String| ScenarioError {
                file: "ports.conf".into(),
                line: 0,
                message: m,
            };
            let b = sw
                .bridge(&f.bridge)
                .ok_or_else(|| bad(format!("fdb: no bridge `{}`", f.bridge)))?;
            let p = sw
                .port_by_name(&f.port)
                .ok_or_else(|| bad(format!("fdb: no port `{}`", f.port)))?;
            b.macs.add_static(f.vlan, f.mac, p.id);
        }
        Ok(sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::key::ct_state::{EST, INV, NEW, TRK};

    #[test]
    fn packet_lines_take_ct_next_options_in_order() {
        let p = parse_packets(
            "a | --ct-next trk,new br0 in_port=p1,tcp\n\
             --ct-next trk,est --ct-next trk,inv br0 in_port=p1,udp\n\
             c | br0 in_port=p1,icmp\n",
        )
        .expect("parses");
        assert_eq!(p.len(), 3);
        assert_eq!((p[0].label.as_str(), p[0].bridge.as_str()), ("a", "br0"));
        assert_eq!(p[0].flow, "in_port=p1,tcp");
        assert_eq!(p[0].ct_next, vec![TRK | NEW]);
        assert_eq!(p[1].label, "packet2");
        assert_eq!(p[1].ct_next, vec![TRK | EST, TRK | INV]);
        assert_eq!(p[1].flow, "in_port=p1,udp");
        assert!(p[2].ct_next.is_empty());
    }

    #[test]
    fn bad_ct_next_is_an_error_naming_the_line_and_flags() {
        let e = parse_packets("x | br0 in_port=p1\ny | --ct-next trk,bogus br0 in_port=p1\n")
            .unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.contains("bogus"), "{}", e.1);
        let e = parse_packets("--ct-next new br0 in_port=p1").unwrap_err();
        assert!(e.1.contains("trk"), "{}", e.1);
        let e = parse_packets("--ct-next trk,new,est br0 in_port=p1").unwrap_err();
        assert!(e.1.contains("exclude"), "{}", e.1);
        // ofproto/trace refuses these spellings, and so do we.
        for flags in ["+trk+new", "trk|new", "0x21", "trk,,new"] {
            let e = parse_packets(&format!("--ct-next {flags} br0 in_port=p1")).unwrap_err();
            assert!(e.1.contains("unknown ct_state flag"), "{flags}: {}", e.1);
        }
        let e = parse_packets("--ct-next").unwrap_err();
        assert!(e.1.contains("FLAGS"), "{}", e.1);
        let e = parse_packets("--l7 x br0 in_port=p1").unwrap_err();
        assert!(e.1.contains("--l7"), "{}", e.1);
    }
}

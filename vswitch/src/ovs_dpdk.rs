//! The replay benchmark's side-by-side run: Open vSwitch with DPDK
//! (`datapath_type=netdev`, one PMD on the core our worker uses, `net_pcap`
//! with `infinite_rx=1` in, `net_null` out, no hugepages) forwarding the
//! same capture through the same Neutron flows.
//!
//! The model is built from our own switch after the scenario's warm-up:
//! - every bridge, port (OpenFlow number, VLAN tag, patch peer) and flow
//!   of the host as our switch compiled them (`dump-flows`, loaded with
//!   `ovs-ofctl add-flows`);
//! - the MAC tables NORMAL learned during the warm-up (`fdb/add`), so both
//!   switches start from the same steady state;
//! - the router namespaces, which Open vSwitch does not have, as OpenFlow
//!   bridges joined by patch ports in place of their internal ports: the
//!   qrouter (`br-qr`: match the interface MAC, `dec_ttl`, per neighbour a
//!   /32 that rewrites both MACs and outputs on the right interface; DVR's
//!   neighbours are permanent) and, on the SNAT host, the snat namespace
//!   (`br-snat`: `dec_ttl`, `ct(commit,nat(src=gateway))` in one pass, the
//!   upstream router's MAC, out of the `qg-` port). The model does less
//!   than the namespaces (no conntrack in the qrouter, no ip rules), so the
//!   ratio errs in Open vSwitch's favour. The FIP namespace is not
//!   modelled: its ports discard, and the FIP scenarios have no
//!   side-by-side run.
//!
//! Every other port is a `net_null` device with `no-rx=1` (without it
//! `net_null` generates frames on receive and the PMD spends its time on
//! them), as our run discards on every port but the input.

use pipeline::key::Mac;
use pipeline::switch::{PortKind, Switch, VlanMode};
use pipeline::topology::Topology;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's `openvswitch-switch-dpdk` binary.
pub const DEFAULT_BINARY: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";

/// The scenarios the model covers (the others need the FIP namespace).
pub const SCENARIOS: [&str; 6] = [
    "l2-egress",
    "l2-ingress",
    "dvr-egress",
    "dvr-ingress",
    "routed-same-host",
    "snat-egress",
];

/// The OVS-DPDK binary to run (`VSWITCH_BENCH_OVS` overrides), if it is
/// installed and we are root (DPDK needs it).
pub fn binary() -> Option<PathBuf> {
    let p = std::env::var_os("VSWITCH_BENCH_OVS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BINARY));
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    (root && p.exists()).then_some(p)
}

/// One port of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsPort {
    pub name: String,
    pub ofport: u32,
    pub tag: Option<u16>,
    /// `type=...` and options, as `ovs-vsctl set Interface` arguments.
    pub interface: Vec<String>,
}

/// One bridge of the model.
#[derive(Clone, Debug, Default)]
pub struct OvsBridge {
    pub name: String,
    pub ports: Vec<OvsPort>,
    /// `ovs-ofctl add-flows` text.
    pub flows: String,
}

/// What Open vSwitch is given.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub bridges: Vec<OvsBridge>,
    /// (bridge, port, VLAN, MAC) for `ovs-appctl fdb/add`.
    pub fdb: Vec<(String, String, u16, Mac)>,
    /// The port frames come in by, and the DPDK devices by port name.
    pub in_port: String,
    pub devices: Vec<(String, String)>,
}

impl Model {
    pub fn n_flows(&self) -> usize {
        self.bridges
            .iter()
            .map(|b| b.flows.lines().filter(|l| !l.trim().is_empty()).count())
            .sum()
    }
}

/// A flow line of `dump-flows` without its statistics.
fn strip_stats(line: &str) -> String {
    line.split(", ")
        .flat_map(|part| part.split(','))
        .filter(|f| {
            let f = f.trim();
            !(f.starts_with("duration=")
                || f.starts_with("n_packets=")
                || f.starts_with("n_bytes=")
                || f.starts_with("idle_age=")
                || f.starts_with("hard_age="))
        })
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",")
        // the match and the actions are separated by a space
        .replacen(",actions=", " actions=", 1)
}

/// Builds the model of `host` from our switch `sw` (after warm-up) and
/// the topology, with `in_port` reading `pcap`.
pub fn model(
    sw: &Switch,
    t: &Topology,
    host: &str,
    in_port: &str,
    pcap: &Path,
    now_ns: u64,
) -> Result<Model, String> {
    let mut m = Model {
        in_port: in_port.to_string(),
        ..Model::default()
    };
    // Router ports we model: qrouter interfaces (every host), and on the
    // SNAT host the snat namespace's sg- and qg- ports.
    let mut qr: Vec<(&str, Mac, String)> = Vec::new(); // device, mac, subnet
    let mut snat: Vec<(&str, Mac)> = Vec::new();
    let mut snat_gw: Option<(&str, Mac, std::net::Ipv4Addr)> = None;
    for r in &t.routers {
        let on_host = |dev: &str| sw.port_by_name(dev).is_some();
        for i in &r.interfaces {
            if on_host(&i.device) {
                qr.push((&i.device, i.mac, i.subnet.clone()));
            }
            if r.snat_host.as_deref() == Some(host) {
                if let (Some(d), Some(mac)) = (&i.snat_device, i.snat_mac) {
                    if on_host(d) {
                        snat.push((d, mac));
                    }
                }
            }
        }
        if let Some(g) = &r.gateway {
            if r.snat_host.as_deref() == Some(host) && on_host(&g.device) {
                snat_gw = Some((&g.device, g.mac, g.ip));
            }
        }
    }
    let modelled = |name: &str| {
        qr.iter().any(|(d, _, _)| *d == name)
            || snat.iter().any(|(d, _)| *d == name)
            || snat_gw.is_some_and(|(d, _, _)| d == name)
    };
    let mut nulls = 0;
    for b in &sw.bridges {
        let mut ob = OvsBridge {
            name: b.name.clone(),
            ..OvsBridge::default()
        };
        for id in &b.ports {
            let Some(p) = sw.port(*id) else { continue };
            let tag = match p.vlan {
                VlanMode::Access { tag } => Some(tag),
                VlanMode::Trunk { .. } => None,
            };
            let interface = match &p.kind {
                PortKind::Patch { peer } => {
                    vec!["type=patch".into(), format!("options:peer={peer}")]
                }
                PortKind::Internal if modelled(&p.name) => {
                    vec!["type=patch".into(), format!("options:peer=r-{}", p.name)]
                }
                _ if p.name == in_port => {
                    let dev = format!("net_pcap0,rx_pcap={},infinite_rx=1", pcap.display());
                    m.devices.push((p.name.clone(), dev.clone()));
                    vec![
                        "type=dpdk".into(),
                        format!("options:dpdk-devargs=\"{dev}\""),
                    ]
                }
                _ => {
                    let dev = format!("net_null{nulls},no-rx=1");
                    nulls += 1;
                    m.devices.push((p.name.clone(), dev.clone()));
                    vec![
                        "type=dpdk".into(),
                        format!("options:dpdk-devargs=\"{dev}\""),
                    ]
                }
            };
            ob.ports.push(OvsPort {
                name: p.name.clone(),
                ofport: p.ofport,
                tag,
                interface,
            });
        }
        let dump = crate::offline::dump_flows(sw, &b.name, now_ns)?;
        for l in dump.lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(ob.flows, "{}", strip_stats(l));
        }
        for r in b.macs.rows(now_ns) {
            if let Some(p) = sw.port(r.port) {
                m.fdb.push((b.name.clone(), p.name.clone(), r.vlan, r.mac));
            }
        }
        m.bridges.push(ob);
    }
    let patch = |dev: &str, ofport: u32| OvsPort {
        name: format!("r-{dev}"),
        ofport,
        tag: None,
        interface: vec!["type=patch".into(), format!("options:peer={dev}")],
    };
    if !qr.is_empty() {
        let mut b = OvsBridge {
            name: "br-qr".into(),
            ..OvsBridge::default()
        };
        let mut f =
            String::from("table=0,priority=0 actions=drop\ntable=1,priority=0 actions=drop\n");
        for (i, (dev, mac, subnet)) in qr.iter().enumerate() {
            b.ports.push(patch(dev, 1 + i as u32));
            let _ = writeln!(
                f,
                "table=0,priority=10,ip,in_port=r-{dev},dl_dst={mac} actions=dec_ttl,goto_table:1"
            );
            // DVR's permanent neighbours: every VM port of the subnet's network.
            let net = t
                .subnets
                .iter()
                .find(|s| s.name == *subnet)
                .map(|s| s.network.as_str())
                .unwrap_or("");
            for vm in t.ports.iter().filter(|p| p.network == net) {
                let _ = writeln!(
                    f,
                    "table=1,priority=10,ip,nw_dst={} actions=mod_dl_src:{mac},mod_dl_dst:{},output:r-{dev}",
                    vm.ip, vm.mac
                );
            }
        }
        b.flows = f;
        m.bridges.push(b);
    }
    if let Some((gw_dev, gw_mac, gw_ip)) = snat_gw {
        let mut b = OvsBridge {
            name: "br-snat".into(),
            ..OvsBridge::default()
        };
        b.ports.push(patch(gw_dev, 1));
        let upstream = crate::traffic::UPSTREAM_MAC;
        let mut f = String::from("table=0,priority=0 actions=drop\n");
        for (i, (dev, mac)) in snat.iter().enumerate() {
            b.ports.push(patch(dev, 2 + i as u32));
            let _ = writeln!(
                f,
                "table=0,priority=10,ip,in_port=r-{dev},dl_dst={mac} actions=dec_ttl,ct(commit,zone=1,nat(src={gw_ip})),mod_dl_src:{gw_mac},mod_dl_dst:{},output:r-{gw_dev}",
                Mac::from_u64(upstream)
            );
        }
        b.flows = f;
        m.bridges.push(b);
    }
    Ok(m)
}

/// A private Open vSwitch: ovsdb-server and ovs-vswitchd under `dir`,
/// stopped (by pid file) and removed when dropped.
struct Ovs {
    dir: PathBuf,
    ctl: Option<PathBuf>,
}

impl Ovs {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        let d = &self.dir;
        c.env("OVS_RUNDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_SYSCONFDIR", d);
        c
    }

    fn run(&self, prog: &str, args: &[String]) -> Result<String, String> {
        let out = self
            .cmd(prog)
            .args(args)
            .output()
            .map_err(|e| format!("{prog}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{prog} {}: {}",
                args.join(" ").chars().take(300).collect::<String>(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn vsctl(&self, args: &[String]) -> Result<String, String> {
        let mut a = vec![format!("--db=unix:{}/db.sock", self.dir.display())];
        a.extend_from_slice(args);
        self.run("ovs-vsctl", &a)
    }

    fn appctl(&self, args: &[&str]) -> Result<String, String> {
        let ctl = self.ctl.as_ref().ok_or("ovs-vswitchd is not running")?;
        let mut a = vec!["-t".to_string(), ctl.display().to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        self.run("ovs-appctl", &a)
    }

    fn start(bin: &Path, dir: &Path, core: usize, other: usize) -> Result<Ovs, String> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut o = Ovs {
            dir: dir.to_path_buf(),
            ctl: None,
        };
        let d = dir.display().to_string();
        o.run(
            "ovsdb-tool",
            &[
                "create".into(),
                format!("{d}/conf.db"),
                "/usr/share/openvswitch/vswitch.ovsschema".into(),
            ],
        )?;
        o.run(
            "ovsdb-server",
            &[
                format!("{d}/conf.db"),
                format!("--remote=punix:{d}/db.sock"),
                format!("--pidfile={d}/ovsdb-server.pid"),
                "--detach".into(),
                format!("--log-file={d}/ovsdb-server.log"),
            ],
        )?;
        o.vsctl(&["--no-wait".into(), "init".into()])?;
        o.vsctl(&[
            "--no-wait".into(),
            "set".into(),
            "Open_vSwitch".into(),
            ".".into(),
            "other_config:dpdk-init=true".into(),
            // --legacy-mem: otherwise OVS adds --in-memory, which EAL
            // refuses with --no-huge.
            "other_config:dpdk-extra=\"--no-huge -m 1024 --no-pci --no-telemetry --legacy-mem\""
                .into(),
            format!("other_config:dpdk-lcore-mask=0x{:x}", 1u64 << other),
            format!("other_config:pmd-cpu-mask=0x{:x}", 1u64 << core),
        ])?;
        o.run(
            &bin.display().to_string(),
            &[
                format!("unix:{d}/db.sock"),
                format!("--pidfile={d}/ovs-vswitchd.pid"),
                "--detach".into(),
                format!("--log-file={d}/ovs-vswitchd.log"),
            ],
        )?;
        let prog = bin
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(pid) = std::fs::read_to_string(dir.join("ovs-vswitchd.pid"))
                .ok()
                .map(|s| s.trim().to_string())
            {
                let ctl = dir.join(format!("{prog}.{pid}.ctl"));
                if ctl.exists() {
                    o.ctl = Some(ctl);
                    if o.appctl(&["version"]).is_ok() {
                        return Ok(o);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "ovs-vswitchd did not come up; see {d}/ovs-vswitchd.log"
        ))
    }

    /// A port's live (rx, tx) packet counters (`ovs-ofctl dump-ports`;
    /// the database's copy is refreshed only every few seconds).
    fn port_packets(&self, bridge: &str, port: &str) -> (u64, u64) {
        let Ok(out) = self.run(
            "ovs-ofctl",
            &["dump-ports".into(), bridge.into(), port.into()],
        ) else {
            return (0, 0);
        };
        let after = |tag: &str| {
            out.find(tag)
                .and_then(|i| {
                    out[i + tag.len()..]
                        .find("pkts=")
                        .map(|j| i + tag.len() + j + 5)
                })
                .and_then(|k| {
                    out[k..]
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|n| n.parse().ok())
                })
                .unwrap_or(0)
        };
        (after("rx "), after("tx "))
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for f in ["ovs-vswitchd.pid", "ovsdb-server.pid"] {
            let Some(pid) = std::fs::read_to_string(self.dir.join(f))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            else {
                continue;
            };
            // SAFETY: kill with a pid read from our own pid file.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            // SAFETY: signal 0 only checks the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: as above.
            if unsafe { libc::kill(pid, 0) } == 0 {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What Open vSwitch did.
#[derive(Clone, Debug, Default)]
pub struct OvsMeasured {
    pub mpps: f64,
    pub cycles_per_packet: f64,
    pub rx_packets: u64,
    /// Frames out of `out_port` and out of every port, per frame in.
    pub delivered: f64,
    pub outputs_per_packet: f64,
    pub flows: usize,
}

/// Runs `m` in a private OVS-DPDK with its PMD on `core` for `seconds`.
pub fn measure(
    bin: &Path,
    m: &Model,
    out_port: &str,
    dir: &Path,
    core: usize,
    seconds: f64,
) -> Result<OvsMeasured, String> {
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
    let other = if cores > 1 { (core + 1) % cores } else { core };
    let ovs = Ovs::start(bin, dir, core, other)?;
    // One transaction: bridges and ports.
    let mut a: Vec<String> = Vec::new();
    for b in &m.bridges {
        a.extend(
            [
                "--",
                "add-br",
                &b.name,
                "--",
                "set",
                "bridge",
                &b.name,
                "datapath_type=netdev",
                "fail_mode=secure",
            ]
            .map(String::from),
        );
        for p in &b.ports {
            a.extend(["--", "add-port", &b.name, &p.name].map(String::from));
            if let Some(t) = p.tag {
                a.push(format!("tag={t}"));
            }
            a.extend(["--", "set", "Interface", &p.name].map(String::from));
            a.extend(p.interface.iter().cloned());
            a.push(format!("ofport_request={}", p.ofport));
        }
    }
    ovs.vsctl(&a)?;
    for b in &m.bridges {
        let f = dir.join(format!("{}.flows", b.name));
        std::fs::write(&f, &b.flows).map_err(|e| e.to_string())?;
        ovs.run(
            "ovs-ofctl",
            &[
                "-O".into(),
                "OpenFlow13".into(),
                "del-flows".into(),
                b.name.clone(),
            ],
        )?;
        ovs.run(
            "ovs-ofctl",
            &[
                "-O".into(),
                "OpenFlow13".into(),
                "add-flows".into(),
                b.name.clone(),
                f.display().to_string(),
            ],
        )?;
    }
    for (b, p, vlan, mac) in &m.fdb {
        let vlan = vlan.to_string();
        let mac = mac.to_string();
        ovs.appctl(&["fdb/add", b, p, &vlan, &mac])?;
    }
    // Settle (megaflows and EMC filled), then measure.
    std::thread::sleep(Duration::from_millis(1_500));
    let bridge_of = |port: &str| {
        m.bridges
            .iter()
            .find(|b| b.ports.iter().any(|p| p.name == port))
            .map(|b| b.name.clone())
            .unwrap_or_default()
    };
    let sample = |o: &Ovs| {
        let rx = o.port_packets(&bridge_of(&m.in_port), &m.in_port).0;
        let (mut out, mut all) = (0, 0);
        for (p, _) in m.devices.iter().filter(|(p, _)| *p != m.in_port) {
            let tx = o.port_packets(&bridge_of(p), p).1;
            all += tx;
            if p == out_port {
                out += tx;
            }
        }
        (rx, out, all)
    };
    ovs.appctl(&["dpif-netdev/pmd-stats-clear"])?;
    let (rx0, out0, all0) = sample(&ovs);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (rx1, out1, all1) = sample(&ovs);
    let elapsed = t0.elapsed().as_secs_f64();
    let stats = ovs.appctl(&["dpif-netdev/pmd-stats-show"])?;
    let cycles = stats
        .lines()
        .find(|l| l.contains("avg processing cycles per packet"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let rx = rx1.saturating_sub(rx0);
    let n = rx.max(1) as f64;
    Ok(OvsMeasured {
        mpps: rx as f64 / elapsed / 1e6,
        cycles_per_packet: cycles,
        rx_packets: rx,
        delivered: out1.saturating_sub(out0) as f64 / n,
        outputs_per_packet: all1.saturating_sub(all0) as f64 / n,
        flows: m.n_flows(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(host: &str, in_port: &str) -> Model {
        let t = crate::lab::topology().expect("topology");
        let mut cfg = pipeline::topology::build_host(&t, host, 1).expect("host");
        let sw = cfg.build().expect("switch");
        model(&sw, &t, host, in_port, Path::new("/tmp/x.pcap"), 0).expect("model")
    }

    fn bridge<'a>(m: &'a Model, name: &str) -> &'a OvsBridge {
        m.bridges.iter().find(|b| b.name == name).expect(name)
    }

    #[test]
    fn compute1_routes_through_a_qrouter_bridge() {
        let m = model_of("compute1", "qvo-vm1");
        let int = bridge(&m, "br-int");
        let qr = int.ports.iter().find(|p| p.name == "qr-s1").expect("qr-s1");
        assert_eq!(qr.tag, Some(1));
        assert_eq!(qr.interface, ["type=patch", "options:peer=r-qr-s1"]);
        let vm1 = int.ports.iter().find(|p| p.name == "qvo-vm1").expect("vm1");
        assert!(vm1.interface[1].contains("net_pcap0,rx_pcap=/tmp/x.pcap,infinite_rx=1"));
        let vm2 = int.ports.iter().find(|p| p.name == "qvo-vm2").expect("vm2");
        assert!(vm2.interface[1].contains("no-rx=1"), "{:?}", vm2.interface);
        // Our flows, as compiled, without statistics.
        assert!(int
            .flows
            .lines()
            .any(|l| l == "cookie=0x0,table=0,priority=9,in_port=qvo-vm1 actions=goto_table:25"));
        assert!(!int.flows.contains("n_packets"));
        // vm5 (10.2.0.15, on compute2) is routed out of qr-s2 with both MACs rewritten.
        let r = bridge(&m, "br-qr");
        assert!(r.flows.contains(
            "table=0,priority=10,ip,in_port=r-qr-s1,dl_dst=fa:16:3e:aa:01:01 actions=dec_ttl,goto_table:1"
        ));
        assert!(r.flows.contains("table=1,priority=10,ip,nw_dst=10.2.0.15 actions=mod_dl_src:fa:16:3e:aa:02:01,mod_dl_dst:fa:16:3e:02:00:15,output:r-qr-s2"), "{}", r.flows);
        // compute1 is not the SNAT host; the FIP namespace is not modelled.
        assert!(m.bridges.iter().all(|b| b.name != "br-snat"));
        let fg = int.ports.iter().find(|p| p.name == "fg-c1").expect("fg-c1");
        assert!(fg.interface[1].contains("net_null"));
    }

    #[test]
    fn the_snat_host_translates_in_one_pass() {
        let m = model_of("network1", "eth1");
        let s = bridge(&m, "br-snat");
        assert!(s.flows.contains("in_port=r-sg-s1,dl_dst=fa:16:3e:bb:01:03 actions=dec_ttl,ct(commit,zone=1,nat(src=203.0.113.10)),mod_dl_src:fa:16:3e:cc:00:10,mod_dl_dst:00:00:5e:00:53:01,output:r-qg-r1"), "{}", s.flows);
        let int = bridge(&m, "br-int");
        let qg = int.ports.iter().find(|p| p.name == "qg-r1").expect("qg-r1");
        assert_eq!(qg.interface, ["type=patch", "options:peer=r-qg-r1"]);
    }

    #[test]
    fn stats_are_stripped_and_the_match_kept() {
        let l = " cookie=0x0, duration=1.5s, table=60, n_packets=3, n_bytes=180, idle_age=0, priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=strip_vlan,output:qvo-vm1";
        assert_eq!(
            strip_stats(l),
            "cookie=0x0,table=60,priority=4,dl_vlan=101,dl_dst=fa:16:3e:01:00:11 actions=strip_vlan,output:qvo-vm1"
        );
    }
}

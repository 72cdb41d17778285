//! Every vswitchctl command against a running daemon (in-memory ports), with
//! the change it makes checked on the running switch, and bad input that
//! is refused with a clear error, a non-zero exit and no change.

use pipeline::key::{Field, FlowKey};
use pipeline::packet::synth::frame_from_key;
use pipeline::wire::{ethertype, ipproto};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vswitch::config::DaemonConfig;
use vswitch::control::ControlServer;
use vswitch::daemon::Daemon;
use vswitch::io::ring::RingHandle;

fn topology_path() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/topologies/spec-example.toml")
        .display()
        .to_string()
}

fn config() -> DaemonConfig {
    let text = format!(
        "host = \"compute1\"\ntopology = \"{}\"\nidle_sleep_us = 20\n[[workers]]\n\
         [[ports]]\nname = \"qvo-vm1\"\nbackend = \"ring\"\n\
         [[ports]]\nname = \"qvo-vm2\"\nbackend = \"ring\"\n",
        topology_path()
    );
    toml::from_str(&text).expect("config")
}

/// UDP from vm1 (10.1.0.11, fa:16:3e:01:00:11) to `dst_mac`/`dst_ip`.
fn udp(dst_mac: u64, dst_ip: u32, seq: u16) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0xfa163e010011);
    k.set(Field::DlDst, dst_mac);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, dst_ip as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 1000);
    k.set(Field::TpDst, seq as u64);
    frame_from_key(&k, 8)
}

struct Ctl {
    sock: PathBuf,
}

impl Ctl {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("vswitchctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command that must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "vswitchctl {args:?} failed: {err}");
        out
    }

    /// Runs a command with --json that must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).expect("json output")
    }

    /// Runs a command that must fail with an error containing `needle`,
    /// and checks that the running configuration did not change.
    fn refused(&self, args: &[&str], needle: &str) {
        let before = self.state();
        let (ok, _, err) = self.run(args);
        assert!(!ok, "vswitchctl {args:?} should have failed");
        assert!(
            err.contains(needle),
            "vswitchctl {args:?}: error `{err}` lacks `{needle}`"
        );
        assert_eq!(
            self.state(),
            before,
            "vswitchctl {args:?} changed the state"
        );
    }

    /// Bridges, ports, flows, I/O bindings and topology.
    fn state(&self) -> String {
        let mut s = self.ok(&["--json", "show"]);
        for b in ["br-int", "br-vlan", "br-ex"] {
            s.push_str(
                &self
                    .ok(&["dump-flows", b])
                    .replace(|c: char| c.is_ascii_digit(), ""),
            );
        }
        s.push_str(&self.ok(&["topology", "show"]));
        s
    }
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("vswitch-ctl-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tempdir");
        TempDir(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(tmp: &TempDir) -> (Daemon, ControlServer, Ctl) {
    let d = Daemon::start(&config()).expect("start");
    let sock = tmp.path("ctl.sock");
    let server = ControlServer::start(&sock, d.shared.clone()).expect("socket");
    (d, server, Ctl { sock })
}

fn pcap_frames(path: &Path) -> Vec<Vec<u8>> {
    let f = std::fs::File::open(path).expect("capture file");
    let mut r = pcap_file::pcap::PcapReader::new(f).expect("pcap");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        out.push(p.expect("packet").data.into_owned());
    }
    out
}

#[test]
fn every_command_has_help() {
    let cmds: &[&[&str]] = &[
        &[],
        &["show"],
        &["trace"],
        &["dump-flows"],
        &["add-flow"],
        &["add-flows"],
        &["mod-flows"],
        &["del-flows"],
        &["dump-ports"],
        &["fdb-show"],
        &["add-br"],
        &["del-br"],
        &["add-port"],
        &["del-port"],
        &["set-port"],
        &["router", "show"],
        &["vm-port", "add"],
        &["vm-port", "del"],
        &["fip", "associate"],
        &["fip", "disassociate"],
        &["conntrack", "dump"],
        &["conntrack", "flush"],
        &["conntrack", "stats"],
        &["pmd-stats"],
        &["topology", "load"],
        &["topology", "show"],
        &["capture"],
    ];
    for c in cmds {
        let out = Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .args(*c)
            .arg("--help")
            .output()
            .expect("vswitchctl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Usage:"),
            "{c:?}: {text}"
        );
    }
}

// One daemon walked through a story, each step on the state the last left.
#[test]
fn bridges_ports_and_flows_change_the_running_switch() {
    let tmp = TempDir::new("ports");
    let (d, _server, ctl) = start(&tmp);
    let vm1 = d.ring("qvo-vm1").expect("ring");
    add_br_and_del_br(&ctl);
    let (t1, t2) = ports_and_a_flow_on_a_new_bridge(&d, &ctl);
    mod_flows_changes_the_actions(&ctl, &t1, &t2);
    del_flows_strict_needs_the_priority(&ctl);
    set_port_retags_and_rebinds(&d, &ctl);
    del_port_and_del_br_take_their_io(&d, &ctl);
    add_flows_from_a_file_is_all_or_nothing(&ctl, &tmp);
    fdb_show_after_vm1_speaks(&ctl, &vm1);
    pmd_stats_has_cycles_and_drops(&ctl);
    d.stop();
}

/// add-br makes an empty bridge; a second one of the name, or del-br of
/// a bridge that is not there, is refused.
fn add_br_and_del_br(ctl: &Ctl) {
    ctl.ok(&["add-br", "br-test"]);
    assert!(ctl.ok(&["show"]).contains("Bridge br-test (0 flows)"));
    ctl.refused(&["add-br", "br-test"], "br-test");
    ctl.refused(&["del-br", "br-nope"], "br-nope");
}

/// add-port with a ring backend, flows on the new bridge: a port moves
/// frames to another; dump-ports counts them. Returns the two ports'
/// rings (t1, t2).
fn ports_and_a_flow_on_a_new_bridge(d: &Daemon, ctl: &Ctl) -> (RingHandle, RingHandle) {
    let out = ctl.ok(&[
        "add-port",
        "br-test",
        "t1",
        "--ofport",
        "7",
        "--backend",
        "ring",
    ]);
    assert!(out.contains("ofport 7"), "{out}");
    ctl.ok(&[
        "add-port",
        "br-test",
        "t2",
        "--backend",
        "ring",
        "--tag",
        "5",
    ]);
    ctl.refused(&["add-port", "br-test", "t1"], "t1");
    ctl.refused(&["add-port", "br-nope", "t9"], "br-nope");
    ctl.refused(
        &["add-port", "br-test", "t9", "--backend", "warp-drive"],
        "warp-drive",
    );
    ctl.refused(
        &[
            "add-port",
            "br-test",
            "t9",
            "--backend",
            "pcap",
            "--pcap-rx",
            "/nonexistent/x.pcap",
        ],
        "/nonexistent/x.pcap",
    );
    ctl.refused(&["add-port", "br-test", "t9", "--tag", "4096"], "4096");
    ctl.refused(&["add-port", "br-test", "t9", "--kind", "patch"], "peer");
    ctl.ok(&["add-flow", "br-test", "in_port=t1 actions=output:t2"]);
    let t1 = d.ring("t1").expect("t1 ring");
    let t2 = d.ring("t2").expect("t2 ring");
    for i in 0..5 {
        assert!(t1.inject(udp(0xfa163e010012, 0x0a01000c, i)));
    }
    let mut got = Vec::new();
    assert!(wait_until(|| {
        got.extend(t2.collect());
        got.len() >= 5
    }));
    let ports = ctl.json(&["dump-ports", "br-test"]);
    let row = |name: &str| {
        ports
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["port"] == name)
            .cloned()
            .expect("port row")
    };
    // Counters are published by the worker when idle; the frames were seen.
    assert!(wait_until(|| {
        let p = ctl.json(&["dump-ports", "br-test", "t1"]);
        p[0]["counters"]["rx_packets"] == 5
    }));
    assert_eq!(row("t2")["ofport"], 1, "the lowest free number");
    let p = ctl.json(&["dump-ports", "br-test", "t2"]);
    assert_eq!(p[0]["counters"]["tx_packets"], 5);
    assert!(ctl.ok(&["dump-ports", "br-test"]).contains("\"t1\":"));
    ctl.refused(&["dump-ports", "br-nope"], "br-nope");
    ctl.refused(&["dump-ports", "br-test", "t9"], "t9");
    (t1, t2)
}

/// mod-flows: t1's flow now drops (t2 gets nothing); a flow without
/// actions, or to a port that is not there, is refused.
fn mod_flows_changes_the_actions(ctl: &Ctl, t1: &RingHandle, t2: &RingHandle) {
    let out = ctl.ok(&["mod-flows", "br-test", "in_port=t1 actions=drop"]);
    assert!(out.contains("1 flow(s) modified"), "{out}");
    assert!(ctl
        .ok(&["dump-flows", "br-test"])
        .contains("in_port=t1 actions=drop"));
    ctl.refused(&["mod-flows", "br-test", "in_port=t1"], "actions=");
    ctl.refused(
        &["mod-flows", "br-test", "in_port=t1 actions=output:t7"],
        "t7",
    );
    for i in 0..3 {
        t1.inject(udp(0xfa163e010012, 0x0a01000c, i));
    }
    std::thread::sleep(Duration::from_millis(150));
    assert!(t2.collect().is_empty(), "mod-flows took effect");
}

/// del-flows --strict needs the exact priority.
fn del_flows_strict_needs_the_priority(ctl: &Ctl) {
    let out = ctl.ok(&["del-flows", "br-test", "--strict", "priority=1,in_port=t1"]);
    assert!(out.contains("0 flow(s) deleted"), "{out}");
    let out = ctl.ok(&["del-flows", "br-test", "--strict", "in_port=t1"]);
    assert!(out.contains("1 flow(s) deleted"), "{out}");
}

/// set-port: VLAN tag, then unbinding and rebinding its I/O.
fn set_port_retags_and_rebinds(d: &Daemon, ctl: &Ctl) {
    ctl.ok(&["set-port", "t2", "--tag", "9"]);
    let show = ctl.json(&["show"]);
    let t2cfg = show["bridges"]
        .as_array()
        .expect("bridges")
        .iter()
        .flat_map(|b| b["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == "t2")
        .expect("t2");
    assert_eq!(t2cfg["vlan"]["access"]["tag"], 9, "{t2cfg}");
    ctl.refused(&["set-port", "t9", "--tag", "3"], "t9");
    ctl.refused(
        &[
            "set-port",
            "t2",
            "--tag",
            "11",
            "--backend",
            "pcap",
            "--pcap-rx",
            "/nonexistent/y.pcap",
        ],
        "/nonexistent/y.pcap",
    );
    ctl.ok(&["set-port", "t2", "--unbind"]);
    assert!(d.ring("t2").is_none());
    ctl.refused(&["set-port", "t2", "--unbind"], "no I/O binding");
    ctl.ok(&["set-port", "t2", "--backend", "ring", "--depth", "64"]);
    assert!(d.ring("t2").is_some());
    assert!(ctl.ok(&["show"]).contains("I/O t2"));
}

/// del-port, then del-br: each takes its ports' I/O with it.
fn del_port_and_del_br_take_their_io(d: &Daemon, ctl: &Ctl) {
    ctl.ok(&["del-port", "t2"]);
    assert!(!ctl.ok(&["show"]).contains("Port t2"));
    assert!(d.ring("t2").is_none());
    ctl.refused(&["del-port", "t2"], "t2");
    ctl.ok(&["del-br", "br-test"]);
    assert!(!ctl.ok(&["show"]).contains("br-test"));
    assert!(d.ring("t1").is_none(), "its ports' I/O went with it");
}

/// add-flows from a file, with a bad line: all or nothing.
fn add_flows_from_a_file_is_all_or_nothing(ctl: &Ctl, tmp: &TempDir) {
    let file = tmp.path("flows.txt");
    std::fs::write(
        &file,
        "# comment\ntable=0,priority=300,in_port=qvo-vm4,udp,tp_dst=1 actions=drop\n\
         table=0,priority=300,in_port=qvo-vm4,udp,tp_dst=2 actions=drop\n",
    )
    .expect("write");
    let out = ctl.ok(&["add-flows", "br-int", file.to_str().expect("path")]);
    assert!(out.contains("2 flow(s) added"), "{out}");
    std::fs::write(
        &file,
        "table=0,priority=300,in_port=qvo-vm4,udp,tp_dst=3 actions=drop\nbogus=1 actions=drop\n",
    )
    .expect("write");
    ctl.refused(
        &["add-flows", "br-int", file.to_str().expect("path")],
        "flow 2",
    );
    assert!(!ctl.ok(&["dump-flows", "br-int"]).contains("tp_dst=3"));
}

/// fdb-show lists vm1's MAC once vm1 has spoken.
fn fdb_show_after_vm1_speaks(ctl: &Ctl, vm1: &RingHandle) {
    vm1.inject(udp(0xfa163e010012, 0x0a01000c, 1));
    assert!(wait_until(|| ctl
        .ok(&["fdb-show", "br-int"])
        .contains("fa:16:3e:01:00:11")));
    ctl.refused(&["fdb-show", "br-nope"], "br-nope");
}

/// pmd-stats has cycles and per-reason drops.
fn pmd_stats_has_cycles_and_drops(ctl: &Ctl) {
    let stats = ctl.json(&["pmd-stats"]);
    assert!(stats[0]["cycles_per_packet"].as_f64().is_some(), "{stats}");
    assert!(ctl.ok(&["pmd-stats"]).contains("busy cycles/packet"));
}

// One daemon walked through a story, each step on the state the last left.
#[test]
fn topology_commands_vm_ports_floating_ips_and_routers() {
    let tmp = TempDir::new("topo");
    let (d, _server, ctl) = start(&tmp);
    let vm1 = d.ring("qvo-vm1").expect("ring");
    router_show_has_routes_rules_and_nat(&ctl);
    vm_port_add_brings_a_reachable_vm(&d, &ctl, &vm1);
    vm_port_add_refuses_a_bad_port_and_leaves_nothing(&ctl);
    fip_associate_and_disassociate(&ctl);
    vm_port_del_takes_the_port_and_its_io(&d, &ctl);
    topology_load_refuses_a_bad_file_whole(&ctl, &tmp);
    conntrack_dump_stats_and_flush(&ctl, &vm1);
    d.stop();
}

/// `vm-port add NAME --device DEVICE --network NETWORK --mac MAC --ip IP`
/// and `extra`.
fn vm_port_add<'a>(
    name: &'a str,
    device: &'a str,
    network: &'a str,
    mac: &'a str,
    ip: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "vm-port",
        "add",
        name,
        "--device",
        device,
        "--network",
        network,
        "--mac",
        mac,
        "--ip",
        ip,
    ];
    args.extend_from_slice(extra);
    args
}

/// router show: the qrouter of R1 with its routes, rules, NAT; all the
/// host's routers as JSON.
fn router_show_has_routes_rules_and_nat(ctl: &Ctl) {
    let text = ctl.ok(&["router", "show", "qrouter-R1"]);
    assert!(text.contains("qrouter-R1 (qrouter"), "{text}");
    assert!(text.contains("10.2.0.0/24 dev qr-"), "{text}");
    assert!(
        text.contains("203.0.113.101"),
        "the FIP's NAT rules: {text}"
    );
    let v = ctl.json(&["router", "show"]);
    let names: Vec<&str> = v
        .as_array()
        .expect("routers")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"qrouter-R1") && names.iter().any(|n| n.starts_with("fip-")),
        "{names:?}"
    );
    ctl.refused(&["router", "show", "qrouter-nope"], "qrouter-nope");
}

/// vm-port add: a new VM on net1 on this host with its I/O; vm1 reaches it.
fn vm_port_add_brings_a_reachable_vm(d: &Daemon, ctl: &Ctl, vm1: &RingHandle) {
    ctl.ok(&vm_port_add(
        "vm9",
        "qvo-vm9",
        "net1",
        "fa:16:3e:01:00:19",
        "10.1.0.19",
        &["--backend", "ring"],
    ));
    assert!(ctl.ok(&["show"]).contains("Port qvo-vm9"));
    assert!(ctl.ok(&["topology", "show"]).contains("vm9"));
    let vm9 = d.ring("qvo-vm9").expect("vm9 ring");
    for i in 0..5 {
        vm1.inject(udp(0xfa163e010019, 0x0a010013, i));
    }
    let mut got = Vec::new();
    assert!(wait_until(|| {
        got.extend(vm9.collect());
        got.len() >= 5
    }));
}

/// vm-port add refuses a name in use, an unknown network, a MAC in use, a
/// bad MAC; and I/O for a port of another host, or a backend that cannot
/// open: refused, and the port is not left behind.
fn vm_port_add_refuses_a_bad_port_and_leaves_nothing(ctl: &Ctl) {
    let (mac, ip) = ("fa:16:3e:01:00:18", "10.1.0.18");
    ctl.refused(
        &vm_port_add(
            "vm9",
            "qvo-x",
            "net1",
            "fa:16:3e:01:00:29",
            "10.1.0.29",
            &[],
        ),
        "vm9",
    );
    ctl.refused(&vm_port_add("vm8", "qvo-vm8", "nope", mac, ip, &[]), "nope");
    ctl.refused(
        &vm_port_add("vm8", "qvo-vm8", "net1", "fa:16:3e:01:00:11", ip, &[]),
        "fa:16:3e:01:00:11",
    );
    ctl.refused(&vm_port_add("vm8", "qvo-vm8", "net1", "zz", ip, &[]), "zz");
    ctl.refused(
        &vm_port_add(
            "vm8",
            "qvo-vm8",
            "net1",
            mac,
            ip,
            &["--host", "compute2", "--backend", "ring"],
        ),
        "this host",
    );
    ctl.refused(
        &vm_port_add(
            "vm8",
            "qvo-vm8",
            "net1",
            mac,
            ip,
            &["--backend", "af-packet", "--interface", "nonexistent0"],
        ),
        "nonexistent0",
    );
}

/// fip: associate with vm9 (its NAT rules appear), disassociate.
fn fip_associate_and_disassociate(ctl: &Ctl) {
    ctl.ok(&["fip", "associate", "203.0.113.109", "vm9"]);
    assert!(ctl
        .ok(&["router", "show", "qrouter-R1"])
        .contains("203.0.113.109"));
    ctl.refused(&["fip", "associate", "203.0.113.101", "vm9"], "vm1");
    ctl.refused(&["fip", "associate", "203.0.113.110", "vm-nope"], "vm-nope");
    ctl.refused(&["fip", "associate", "10.9.9.9", "vm9"], "10.9.9.9");
    ctl.refused(&["fip", "associate", "not-an-ip", "vm9"], "not-an-ip");
    ctl.refused(&["vm-port", "del", "vm9"], "disassociate");
    ctl.ok(&["fip", "disassociate", "203.0.113.109"]);
    assert!(!ctl
        .ok(&["router", "show", "qrouter-R1"])
        .contains("203.0.113.109"));
    ctl.refused(&["fip", "disassociate", "203.0.113.109"], "not associated");
    ctl.refused(&["fip", "disassociate", "203.0.113.200"], "203.0.113.200");
}

/// vm-port del takes the port and its I/O away.
fn vm_port_del_takes_the_port_and_its_io(d: &Daemon, ctl: &Ctl) {
    ctl.ok(&["vm-port", "del", "vm9"]);
    assert!(!ctl.ok(&["show"]).contains("qvo-vm9"));
    assert!(d.ring("qvo-vm9").is_none());
    ctl.refused(&["vm-port", "del", "vm9"], "vm9");
}

/// topology load: a bad file is refused whole; the spec's file applies.
fn topology_load_refuses_a_bad_file_whole(ctl: &Ctl, tmp: &TempDir) {
    let bad = tmp.path("bad.toml");
    std::fs::write(&bad, "[[host]]\nname = \"compute1\"\nrole = \"warp\"\n").expect("write");
    ctl.refused(&["topology", "load", bad.to_str().expect("path")], "warp");
    ctl.refused(
        &["topology", "load", "/nonexistent.toml"],
        "/nonexistent.toml",
    );
    let out = ctl.ok(&["topology", "load", &topology_path()]);
    assert!(out.contains("applied"), "{out}");
}

/// conntrack: a flow through the qrouter that NAT translates (vm1 to an
/// external host, from its floating IP) makes a connection, which dump,
/// stats and flush see; a routed flow no NAT rule selects makes none.
fn conntrack_dump_stats_and_flush(ctl: &Ctl, vm1: &RingHandle) {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0xfa163e010011);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, 0x0a01000b);
    k.set(Field::NwDst, 0xc6336407);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 4000);
    k.set(Field::TpDst, 53);
    let gw = ctl.json(&["router", "show", "qrouter-R1"]);
    let qr = gw[0]["interfaces"]
        .as_array()
        .expect("ifaces")
        .iter()
        .find(|i| i["addrs"][0] == "10.1.0.1/24")
        .expect("qr on subnet1")["mac"]
        .as_str()
        .expect("mac")
        .replace(':', "");
    k.set(Field::DlDst, u64::from_str_radix(&qr, 16).expect("mac"));
    // East-west to vm4 first: routed, not stored.
    let mut east_west = k;
    east_west.set(Field::NwDst, 0x0a02000e);
    vm1.inject(frame_from_key(&east_west, 8));
    vm1.inject(frame_from_key(&k, 8));
    assert!(wait_until(|| {
        ctl.json(&["conntrack", "dump", "--addr", "198.51.100.7"])
            .as_array()
            .is_some_and(|a| !a.is_empty())
    }));
    assert!(ctl
        .json(&["conntrack", "dump", "--addr", "10.2.0.14"])
        .as_array()
        .is_some_and(|a| a.is_empty()));
    let stats = ctl.json(&["conntrack", "stats"]);
    assert!(stats["created"].as_u64().unwrap_or(0) >= 1, "{stats}");
    assert!(ctl
        .ok(&["conntrack", "stats"])
        .contains("nat_port_exhausted: 0"));
    let dump = ctl.ok(&["conntrack", "dump"]);
    assert!(
        dump.contains("udp,orig=(src=10.1.0.11,dst=198.51.100.7,sport=4000,dport=53),reply=(src=198.51.100.7,dst=203.0.113.101,sport=53,dport=4000),zone="),
        "{dump}"
    );
    assert!(dump.contains("[snat,unreplied]"), "{dump}");
    ctl.refused(&["conntrack", "dump", "--addr", "nope"], "nope");
    let out = ctl.ok(&["conntrack", "flush", "--addr", "198.51.100.7"]);
    assert!(out.contains("1 connection(s) deleted"), "{out}");
    assert!(ctl
        .json(&["conntrack", "dump"])
        .as_array()
        .expect("conns")
        .is_empty());
    ctl.ok(&["conntrack", "flush", "--zone", "5"]);
}

#[test]
fn capture_writes_what_a_port_receives_and_sends() {
    let tmp = TempDir::new("capture");
    let (d, _server, ctl) = start(&tmp);
    let vm1 = d.ring("qvo-vm1").expect("ring");
    let vm2 = d.ring("qvo-vm2").expect("ring");
    let file = tmp.path("vm2.pcap");
    let sock = ctl.sock.clone();
    let f2 = file.clone();
    let capture = std::thread::spawn(move || {
        Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
            .arg("--socket")
            .arg(&sock)
            .args([
                "capture",
                "qvo-vm2",
                f2.to_str().expect("path"),
                "6",
                "--duration",
                "20",
            ])
            .output()
            .expect("vswitchctl")
    });
    // Feed vm1 -> vm2 until the capture is running and has its 6 frames.
    let mut sent = Vec::new();
    let mut i = 0u16;
    while !capture.is_finished() && i < 20_000 {
        let f = udp(0xfa163e010012, 0x0a01000c, i);
        vm1.inject(f.clone());
        sent.push(f);
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
        let _ = vm2.collect();
    }
    let out = capture.join().expect("capture");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("6 packet(s) captured"), "{text}");
    let frames = pcap_frames(&file);
    assert_eq!(frames.len(), 6);
    // What vm2's port sent: frames vm1 sent, unchanged, in order.
    let first = sent
        .iter()
        .position(|f| *f == frames[0])
        .expect("a sent frame");
    assert_eq!(frames, sent[first..first + 6].to_vec());

    // Bad input.
    let (ok, _, err) = ctl.run(&["capture", "qvo-nope", "/tmp/x.pcap"]);
    assert!(!ok && err.contains("qvo-nope"), "{err}");
    let (ok, _, err) = ctl.run(&["capture", "qvo-vm2", "/nonexistent/dir/x.pcap", "1"]);
    assert!(!ok && err.contains("/nonexistent/dir/x.pcap"), "{err}");
    let (ok, _, err) = ctl.run(&["capture", "qvo-vm2", "/tmp/x.pcap", "0"]);
    assert!(!ok && err.contains("count"), "{err}");
    d.stop();
}

#[test]
fn malformed_and_oversized_requests_are_refused() {
    use std::io::{BufRead, BufReader, Write};
    let tmp = TempDir::new("proto");
    let (d, _server, ctl) = start(&tmp);
    let mut s = std::os::unix::net::UnixStream::connect(&ctl.sock).expect("connect");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut ask = |line: &str| -> Value {
        // The daemon may hang up before an oversized request is all
        // written (it answers and closes): a failed write is fine there.
        let _ = writeln!(s, "{line}");
        let mut resp = String::new();
        r.read_line(&mut resp).expect("read");
        serde_json::from_str(&resp).expect("json response")
    };
    let v = ask("{not json");
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap_or("").contains("malformed"));
    let v = ask(r#"{"v":2,"cmd":"show"}"#);
    assert!(v["error"].as_str().unwrap_or("").contains("version 2"));
    let v = ask(r#"{"v":1,"cmd":"launch-missiles"}"#);
    assert!(v["error"]
        .as_str()
        .unwrap_or("")
        .contains("launch-missiles"));
    let v = ask(r#"{"v":1,"cmd":"add-port","args":{"bridge":"br-int","port":"x","tag":"ten"}}"#);
    assert!(v["error"].as_str().unwrap_or("").contains("tag"), "{v}");
    let v = ask(r#"{"v":1,"cmd":"add-flows","args":{"bridge":"br-int","flows":[1,2]}}"#);
    assert!(v["error"].as_str().unwrap_or("").contains("string"), "{v}");
    // An argument the command does not take is refused before anything
    // runs: `del-flows` with `flow` (its key is `match`) deletes nothing.
    let before = ask(r#"{"v":1,"cmd":"dump-flows","args":{"bridge":"br-int"}}"#);
    let v = ask(
        r#"{"v":1,"cmd":"del-flows","args":{"bridge":"br-int","flow":"table=0,dl_src=02:00:00:00:99:99"}}"#,
    );
    let e = v["error"].as_str().unwrap_or("");
    assert!(
        e.contains("unknown argument `flow`") && e.contains("match"),
        "{v}"
    );
    let after = ask(r#"{"v":1,"cmd":"dump-flows","args":{"bridge":"br-int"}}"#);
    let lines = |v: &Value| {
        v["result"]["text"]
            .as_str()
            .map_or(0, |t| t.lines().count())
    };
    assert!(lines(&before) > 10, "{before}");
    assert_eq!(lines(&before), lines(&after));
    let v = ask(r#"{"v":1,"cmd":"show","args":[1]}"#);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("must be an object"),
        "{v}"
    );
    let v = ask(r#"{"v":1,"cmd":"version"}"#);
    assert_eq!(v["result"]["host"], "compute1");
    // Oversized: refused and the connection closed.
    let big = format!(
        r#"{{"v":1,"cmd":"show","args":{{"pad":"{}"}}}}"#,
        "x".repeat(vswitch::control::MAX_REQUEST + 10)
    );
    let v = ask(&big);
    assert!(
        v["error"].as_str().unwrap_or("").contains("longer than"),
        "{v}"
    );
    // Other clients are still served.
    assert!(ctl.ok(&["show"]).contains("Bridge br-int"));

    // Slow clients (half a request, then nothing) hold only their own
    // connection: others are served and packets flow meanwhile.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let mut c = std::os::unix::net::UnixStream::connect(&ctl.sock).expect("connect");
            c.write_all(br#"{"v":1,"cmd":"sh"#).expect("write");
            c
        })
        .collect();
    assert!(ctl.ok(&["show"]).contains("Bridge br-int"));
    let vm1 = d.ring("qvo-vm1").expect("ring");
    let vm2 = d.ring("qvo-vm2").expect("ring");
    for i in 0..10 {
        vm1.inject(udp(0xfa163e010012, 0x0a01000c, i));
    }
    let mut got = 0;
    assert!(wait_until(|| {
        got += vm2.collect().len();
        got >= 10
    }));
    // Beyond the client limit a connection is told so and closed.
    let many: Vec<_> = (0..vswitch::control::MAX_CLIENTS)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&ctl.sock).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = std::os::unix::net::UnixStream::connect(&ctl.sock).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut line = String::new();
    let _ = BufReader::new(&mut extra).read_line(&mut line);
    assert!(line.contains("too many clients"), "{line}");
    drop(many);
    drop(slow);
    // Once they are gone, clients are served again.
    assert!(wait_until(|| ctl.run(&["show"]).0));
    d.stop();
}

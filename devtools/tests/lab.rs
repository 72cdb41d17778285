//! `vswitch lab`: the seed article's scenarios on the simulation (always)
//! and on real kernels in network namespaces (root only; skipped with a
//! message otherwise). The kernel runs are bounded in time, and every
//! namespace and daemon they create is removed, also when they fail.
#![deny(unsafe_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIOS: [&str; 11] = [
    "gateway",
    "l2-same-host",
    "l2-other-host",
    "routed-same-host",
    "routed-other-host",
    "snat-ping",
    "snat-http",
    "fip-in-ping",
    "fip-in-tcp",
    "fip-out-ping",
    "fip-out-http",
];

use vswitch::os::is_root;

fn lab_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("vsl-"))
                .collect()
        })
        .unwrap_or_default()
}

fn vswitch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
}

/// The daemon the lab runs on each host (the `vswitch` package's).
fn vswitchd() -> String {
    devtools::shipped::binary("vswitchd")
        .expect("vswitchd")
        .display()
        .to_string()
}

/// Runs `vswitch ARGS` with a deadline; returns (exit ok, stdout, stderr).
fn run(args: &[&str], deadline: Duration) -> (bool, String, String) {
    let child = vswitch()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vswitch");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        // Interrupting our own child (it cleans up on SIGINT).
        let _ = vswitch::os::send_signal(pid, libc::SIGINT);
    });
    let out = child.wait_with_output().expect("wait vswitch");
    let _ = watchdog.join();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Removes whatever a kernel lab left, when the test ends (even failing).
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let _ = vswitch().args(["lab", "down"]).output();
    }
}

/// As root: the one kernel lab at a time, none left from before, and
/// whatever this test leaves removed when it ends (even failing).
/// (The lab comes down before the lock is released: tuple fields drop in order.)
fn kernel_lab() -> Option<(Down, std::fs::File)> {
    if !is_root() {
        return None;
    }
    // One lab per machine: tests take turns on a file lock, whether they
    // run as threads of one process (cargo test) or as processes (cargo
    // nextest); each opens the file anew, and flock locks of separate
    // opens exclude each other.
    let lock = std::fs::File::create(std::env::temp_dir().join("vswitch-lab-test.lock"))
        .expect("lab test lock file");
    lock.lock().expect("lab test lock");
    let _ = vswitch().args(["lab", "down"]).output();
    Some((Down, lock))
}

fn scenario<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no scenario {id} in {report}"))
}

/// Every host's trace text of a scenario, joined.
fn traces(report: &Value, id: &str) -> String {
    scenario(report, id)["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| format!("== {}\n{}", t["host"], t["text"].as_str().unwrap_or("")))
        .collect()
}

fn hosts(report: &Value, id: &str) -> Vec<String> {
    scenario(report, id)["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| t["host"].as_str().unwrap_or("").to_string())
        .collect()
}

/// What both modes must show: every scenario passed, and each first
/// packet's trace crossed the hosts the spec's walk names, doing what it says.
fn check_report(r: &Value, mode: &str) {
    assert_eq!(r["mode"], mode);
    let ids: Vec<&str> = r["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| s["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, SCENARIOS);
    for id in SCENARIOS {
        let s = scenario(r, id);
        assert_eq!(s["passed"], true, "{id}: {}", s["detail"]);
    }
    // §8.1: the ARP for the gateway is answered on compute1 by the qrouter.
    assert_eq!(hosts(r, "gateway"), ["compute1"]);
    assert!(traces(r, "gateway").contains("reply 10.1.0.1 is-at fa:16:3e:aa:01:01"));
    // §8.3: VLAN 101 on the trunk, local VLAN 4 on compute2.
    assert_eq!(hosts(r, "l2-other-host"), ["compute1", "compute2"]);
    let t = traces(r, "l2-other-host");
    assert!(t.contains("-> output to eth1: icmp,dl_vlan=101"), "{t}");
    assert!(t.contains("mod_vlan_vid:4"), "{t}");
    // §8.4: routed on compute1, TTL 63, never on the wire.
    let t = traces(r, "routed-same-host");
    assert!(
        t.contains("TTL 64 -> 63") && !t.contains("output to eth1"),
        "{t}"
    );
    // §8.5: DVR MAC on the trunk, gateway MAC restored on compute2.
    let t = traces(r, "routed-other-host");
    assert!(t.contains("dl_vlan=102,dl_src=fa:16:3f:00:00:c1"), "{t}");
    assert!(t.contains("mod_dl_src:fa:16:3e:aa:02:01"), "{t}");
    // §8.6: to the sg- port on network1, SNATed to the router's gateway.
    assert_eq!(hosts(r, "snat-http"), ["compute2", "network1"]);
    let t = traces(r, "snat-http");
    assert!(t.contains("source NAT to 203.0.113.10"), "{t}");
    assert!(t.contains("output to eth2: tcp"), "{t}");
    // §8.7 / §8.8: the floating IP on compute1 only.
    let t = traces(r, "fip-out-ping");
    assert!(t.contains("nw_src=203.0.113.101"), "{t}");
    assert!(!t.contains("output to eth1"), "{t}");
    let t = traces(r, "fip-in-tcp");
    assert!(t.contains("nw_dst=10.1.0.11"), "{t}");
    assert!(t.contains("output to qvo-vm1"), "{t}");
}

#[test]
fn the_articles_scenarios_pass_on_the_simulation() {
    let (ok, out, err) = run(&["--json", "lab", "--sim"], Duration::from_secs(60));
    assert!(ok, "{out}\n{err}");
    let r: Value = serde_json::from_str(&out).expect("JSON report");
    check_report(&r, "simulation");
    // The simulation's external sender is the upstream station itself.
    assert!(scenario(&r, "fip-in-tcp")["detail"]
        .as_str()
        .unwrap_or("")
        .contains("server saw 203.0.113.1,"));
}

#[test]
fn the_articles_scenarios_pass_on_real_kernels_and_the_lab_comes_down() {
    let Some(_lab) = kernel_lab() else {
        eprintln!("skipped: the kernel lab needs root (network namespaces)");
        return;
    };
    let (ok, out, err) = run(
        &["--json", "lab", "--keep", "--vswitchd", vswitchd().as_str()],
        Duration::from_secs(180),
    );
    assert!(ok, "{out}\n{err}");
    let r: Value = serde_json::from_str(&out).expect("JSON report");
    check_report(&r, "kernel");
    // The kernels' own evidence of NAT: what each server saw.
    let detail = |id| {
        scenario(&r, id)["detail"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(detail("snat-http").contains("you are 203.0.113.10"));
    assert!(detail("fip-out-http").contains("you are 203.0.113.101"));
    assert!(detail("fip-in-tcp").contains("you are 198.51.100.7"));
    assert!(detail("routed-other-host").contains("ttl 63"));

    // Kept: the daemons answer on their sockets, and network1's snat
    // zone holds the finished HTTP connection, translated.
    assert_eq!(lab_namespaces().len(), 11, "{:?}", lab_namespaces());
    let ct = Command::new(devtools::shipped::binary("vswitchctl").expect("vswitchctl"))
        .args([
            "--socket",
            "/run/vswitch-lab/network1.sock",
            "conntrack",
            "dump",
        ])
        .output()
        .expect("vswitchctl");
    let dump = String::from_utf8_lossy(&ct.stdout);
    assert!(ct.status.success(), "{dump}");
    let http = dump
        .lines()
        .find(|l| l.starts_with("tcp,") && l.contains("dport=80)"))
        .unwrap_or_else(|| panic!("no HTTP connection in {dump}"));
    assert!(http.contains("dst=203.0.113.10,"), "{http}");
    assert!(http.contains("[snat]"), "{http}");
    assert!(
        http.contains("state=TIME_WAIT") || http.contains("state=CLOSE"),
        "{http}"
    );

    let (ok, out, err) = run(&["lab", "down"], Duration::from_secs(30));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("removed namespace vsl-compute1"), "{out}");
    assert!(lab_namespaces().is_empty(), "{:?}", lab_namespaces());
    assert!(!Path::new("/run/vswitch-lab").exists());
    let (ok, out, _) = run(&["lab", "down"], Duration::from_secs(30));
    assert!(ok && out.contains("no lab is up"), "{out}");
}

#[test]
fn an_interrupted_lab_removes_everything_it_created() {
    let Some(_lab) = kernel_lab() else {
        eprintln!("skipped: the kernel lab needs root (network namespaces)");
        return;
    };
    let mut child = vswitch()
        .args(["lab", "--vswitchd", vswitchd().as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Interrupt as soon as the hosts exist (mid-setup or mid-run).
    let start = Instant::now();
    while !Path::new("/run/netns/vsl-network1").exists()
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Interrupting our own child, as Ctrl-C would.
    let _ = vswitch::os::send_signal(child.id(), libc::SIGINT);
    let status = child.wait().expect("wait");
    // Either it finished before the signal landed or it stopped; both
    // leave nothing behind.
    assert!(status.code().is_some(), "{status}");
    assert!(lab_namespaces().is_empty(), "{:?}", lab_namespaces());
    assert!(!Path::new("/run/vswitch-lab").exists());
    // A lab daemon is a process whose arguments name a config in the
    // lab's run directory.
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("--config /run/vswitch-lab/"))
        .collect();
    assert!(left.is_empty(), "lab daemons still running: {left:?}");
}

/// Debian's python3-neutron (with os-ken and ovsdbapp) and Open vSwitch's
/// database tools, which `lab --neutron` runs.
fn neutron_installed() -> bool {
    let python = Command::new("/usr/bin/python3")
        .args(["-c", "import neutron, os_ken, ovsdbapp"])
        .output()
        .is_ok_and(|o| o.status.success());
    python && ovsdb::LocalServer::available().is_ok()
}

#[test]
fn under_neutrons_agents_the_articles_scenarios_pass_and_the_lab_comes_down() {
    let Some(_lab) = kernel_lab() else {
        eprintln!("skipped: the kernel lab needs root (network namespaces)");
        return;
    };
    if !neutron_installed() {
        eprintln!("skipped: lab --neutron needs Debian's openvswitch-common, python3-neutron, python3-os-ken and python3-ovsdbapp");
        return;
    }
    let (ok, out, err) = run(
        &[
            "--json",
            "lab",
            "--neutron",
            "--vswitchd",
            vswitchd().as_str(),
        ],
        Duration::from_secs(400),
    );
    assert!(ok, "{out}\n{err}");
    let r: Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(r["mode"], "neutron");
    for id in SCENARIOS {
        let s = scenario(&r, id);
        assert_eq!(s["passed"], true, "{id}: {}", s["detail"]);
    }
    // Every vswitchd restarted, the agents not run again: the switches put
    // back what the agents had set (ports with their numbers, the flows,
    // the routers) and every scenario passes again.
    let again = r["after_restart"].as_array().expect("after_restart");
    assert_eq!(again.len(), SCENARIOS.len());
    for s in again {
        assert_eq!(
            s["passed"], true,
            "after the restart: {}: {}",
            s["id"], s["detail"]
        );
    }
    // Every host was programmed by both agents: the L3 agent through the
    // extension's router class, the OVS agent binding the VM ports and the
    // router ports the extension plugged.
    let agents = r["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 3, "{agents:?}");
    for a in agents {
        let (host, l3, l2) = (&a[0], a[1].as_str().unwrap(), a[2].as_str().unwrap());
        assert!(
            l3.contains("class VswitchDvrRouter") && l3.contains("vswitchd holds R1"),
            "{host}: {l3}"
        );
        assert!(
            l2.contains("qr-s1") && l2.contains("br-int"),
            "{host}: {l2}"
        );
    }
    // The switches run the agents' configuration: the qrouter's ports as
    // the L3 agent names them, the OVS agent's DVR MAC on the trunk, SNAT
    // on network1, the floating IP on compute1.
    let t = traces(&r, "routed-other-host");
    assert!(t.contains("in qr-qr-s1") || t.contains("qr-qr-s2"), "{t}");
    assert!(t.contains("fa:16:3f:00:00:c1"), "{t}");
    assert_eq!(hosts(&r, "snat-http"), ["compute2", "network1"]);
    assert!(traces(&r, "snat-http").contains("source NAT to 203.0.113.10"));
    assert!(traces(&r, "fip-out-ping").contains("nw_src=203.0.113.101"));
    // Nothing left: namespaces, run directory, daemons, database servers.
    assert!(lab_namespaces().is_empty(), "{:?}", lab_namespaces());
    assert!(!Path::new("/run/vswitch-lab").exists());
    let left: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("/run/vswitch-lab/"))
        .collect();
    assert!(left.is_empty(), "lab processes still running: {left:?}");
}

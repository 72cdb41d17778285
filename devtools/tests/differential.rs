//! A differential test of our switch against Open vSwitch on packets
//! generated at random (a fixed seed) from compute1's ports, MACs, VLANs
//! and addresses (spec Appendix A): every port of the three bridges as
//! input, its own or another's source MAC, destinations among the hosts'
//! MACs, broadcast, multicast, reserved groups and unknown unicast, no tag
//! or a local/segment VLAN or a priority tag, ARP, ICMP and UDP.
//!
//! The packets are `config/scenarios/spec-compute1/packets-random.txt`
//! (this file's generator writes it: `DIFFERENTIAL_WRITE=1`, and the test
//! checks the file is what the seed gives); Open vSwitch's answers to them
//! are recorded with `shared/tools/ovs-oracle` (a real ovs-vswitchd, not
//! needed here) in `tests/golden/spec-compute1/oracle-random.jsonl`:
//!
//!     shared/tools/ovs-oracle/oracle.sh config/scenarios/spec-compute1 \
//!         config/scenarios/spec-compute1/packets-random.txt --format json \
//!         | grep '^{' > devtools/tests/golden/spec-compute1/oracle-random.jsonl
//!
//! Our outputs (port, MACs, VLAN) must equal OVS's on every packet, but
//! where we drop a frame a VM sends tagged (our hardening: an access port
//! takes no tagged frame, `tagged_on_access_port`; see qinq_golden.rs).
#![deny(unsafe_code)]

#[allow(dead_code)]
mod common;

use common::{effects_of, oracle, run_all};
use std::fmt::Write;
use std::path::PathBuf;
use vswitch::offline::scenario::load_dir;

const SEED: u64 = 0x5eed_0019;
const PACKETS: usize = 240;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// splitmix64: a fixed sequence from the seed, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// (bridge, port, its own MAC and IP when it has them, the tags it sees).
struct Input {
    bridge: &'static str,
    port: &'static str,
    own: Option<(&'static str, &'static str)>,
    vlans: &'static [Option<&'static str>],
}

const NONE_OR_PRIO: &[Option<&str>] = &[None, None, None, Some("vlan_tci=0xb000")];
const VM_TAGS: &[Option<&str>] = &[
    None,
    None,
    None,
    None,
    Some("vlan_tci=0xb000"),
    Some("dl_vlan=1"),
];

const INPUTS: &[Input] = &[
    Input {
        bridge: "br-int",
        port: "qvo-vm1",
        own: Some(("fa:16:3e:01:00:11", "10.1.0.11")),
        vlans: VM_TAGS,
    },
    Input {
        bridge: "br-int",
        port: "qvo-vm2",
        own: Some(("fa:16:3e:01:00:12", "10.1.0.12")),
        vlans: VM_TAGS,
    },
    Input {
        bridge: "br-int",
        port: "qvo-vm4",
        own: Some(("fa:16:3e:02:00:14", "10.2.0.14")),
        vlans: VM_TAGS,
    },
    Input {
        bridge: "br-int",
        port: "qr-s1",
        own: Some(("fa:16:3e:aa:01:01", "10.1.0.1")),
        vlans: NONE_OR_PRIO,
    },
    Input {
        bridge: "br-int",
        port: "qr-s2",
        own: Some(("fa:16:3e:aa:02:01", "10.2.0.1")),
        vlans: NONE_OR_PRIO,
    },
    Input {
        bridge: "br-int",
        port: "fg-c1",
        own: Some(("fa:16:3e:dd:00:21", "203.0.113.21")),
        vlans: NONE_OR_PRIO,
    },
    Input {
        bridge: "br-vlan",
        port: "eth1",
        own: None,
        vlans: &[
            Some("dl_vlan=101"),
            Some("dl_vlan=102"),
            Some("dl_vlan=103"),
            None,
            Some("vlan_tci=0xb000"),
        ],
    },
    Input {
        bridge: "br-vlan",
        port: "phy-br-vlan",
        own: None,
        vlans: &[
            Some("dl_vlan=1"),
            Some("dl_vlan=2"),
            Some("dl_vlan=3"),
            None,
        ],
    },
    Input {
        bridge: "br-ex",
        port: "eth2",
        own: None,
        vlans: NONE_OR_PRIO,
    },
    Input {
        bridge: "br-ex",
        port: "phy-br-ex",
        own: None,
        vlans: &[Some("dl_vlan=3"), Some("dl_vlan=1"), None],
    },
];

/// (MAC, IP) of every host the scenario knows, local and remote.
const HOSTS: &[(&str, &str)] = &[
    ("fa:16:3e:01:00:11", "10.1.0.11"),
    ("fa:16:3e:01:00:12", "10.1.0.12"),
    ("fa:16:3e:01:00:13", "10.1.0.13"),
    ("fa:16:3e:02:00:14", "10.2.0.14"),
    ("fa:16:3e:02:00:15", "10.2.0.15"),
    ("fa:16:3e:aa:01:01", "10.1.0.1"),
    ("fa:16:3e:aa:02:01", "10.2.0.1"),
    ("fa:16:3e:dd:00:21", "203.0.113.21"),
    ("fa:16:3e:cc:00:10", "203.0.113.10"),
    ("fa:16:3e:09:00:01", "203.0.113.1"),
    ("fa:16:3f:00:00:c1", "10.1.0.11"),
    ("fa:16:3f:00:00:c2", "10.2.0.15"),
];

const OTHER_DESTINATIONS: &[&str] = &[
    "ff:ff:ff:ff:ff:ff",
    "01:00:5e:00:00:fb",
    "01:80:c2:00:00:00",
    "01:00:0c:cc:cc:cc",
    "33:33:00:00:00:01",
    "fa:16:3e:77:77:77",
];

/// The generated packets, one `label | bridge flow` line each.
fn generate() -> String {
    let mut r = Rng(SEED);
    let mut out = String::from(
        "# Generated by devtools/tests/differential.rs (seed 0x5eed0019): do not edit;\n\
         # DIFFERENTIAL_WRITE=1 cargo test -p devtools --test differential writes it.\n",
    );
    for i in 0..PACKETS {
        let input = r.pick(INPUTS);
        let (src_mac, src_ip) = match input.own {
            Some(own) if r.chance(75) => own,
            _ => *r.pick(HOSTS),
        };
        let (dst_mac, dst_ip) = if r.chance(70) {
            *r.pick(HOSTS)
        } else {
            (*r.pick(OTHER_DESTINATIONS), r.pick(HOSTS).1)
        };
        let mut flow = format!("in_port={}", input.port);
        if let Some(tag) = r.pick(input.vlans) {
            let _ = write!(flow, ",{tag}");
        }
        match r.below(3) {
            0 => {
                let op = if r.chance(60) { 1 } else { 2 };
                let dst = if op == 1 && r.chance(70) {
                    "ff:ff:ff:ff:ff:ff"
                } else {
                    dst_mac
                };
                let _ = write!(
                    flow,
                    ",arp,arp_op={op},dl_src={src_mac},dl_dst={dst},arp_spa={src_ip},arp_tpa={dst_ip},arp_sha={src_mac}"
                );
            }
            1 => {
                let _ = write!(
                    flow,
                    ",icmp,dl_src={src_mac},dl_dst={dst_mac},nw_src={src_ip},nw_dst={dst_ip},nw_ttl=64,icmp_type=8,icmp_code=0"
                );
            }
            _ => {
                let _ = write!(
                    flow,
                    ",udp,dl_src={src_mac},dl_dst={dst_mac},nw_src={src_ip},nw_dst={dst_ip},nw_ttl=64,udp_src={},udp_dst={}",
                    1024 + r.below(60000),
                    1 + r.below(1024)
                );
            }
        }
        let _ = writeln!(out, "r{i:03} | {} {flow}", input.bridge);
    }
    out
}

fn packets_path() -> PathBuf {
    root().join("../config/scenarios/spec-compute1/packets-random.txt")
}

#[test]
fn the_packet_file_is_what_the_seed_generates() {
    let text = generate();
    if std::env::var_os("DIFFERENTIAL_WRITE").is_some() {
        std::fs::write(packets_path(), &text).expect("write");
    }
    let committed = std::fs::read_to_string(packets_path()).expect("packets-random.txt");
    assert_eq!(
        committed, text,
        "DIFFERENTIAL_WRITE=1 regenerates it (then record OVS again)"
    );
}

#[test]
fn random_packets_leave_as_they_leave_open_vswitch() {
    let dir = root().join("../config/scenarios/spec-compute1");
    let mut sc = vswitch::offline::scenario::load(
        &std::fs::read_to_string(dir.join("ports.conf")).expect("ports.conf"),
        &["br-int", "br-vlan", "br-ex"]
            .iter()
            .map(|b| {
                (
                    b.to_string(),
                    std::fs::read_to_string(dir.join(format!("flows/{b}.flows"))).expect("flows"),
                )
            })
            .collect::<Vec<_>>(),
        Some(&generate()),
        1,
    )
    .expect("scenario loads");
    let _ = load_dir; // the same scenario, with the generated packets
    let ours = run_all(&mut sc);
    let theirs = oracle(&root().join("tests/golden/spec-compute1/oracle-random.jsonl"));
    assert_eq!(
        ours.len(),
        theirs.len(),
        "recording and packets differ in length"
    );
    let mut same = 0;
    let mut hardening = 0;
    for ((label, t), o) in ours.iter().zip(&theirs) {
        assert_eq!(label, &o.label);
        assert_eq!(o.error, None, "{label}: OVS refused the line");
        let mine = effects_of(t);
        if mine == o.effects {
            same += 1;
            continue;
        }
        // Our one deliberate difference: a VM's (or router's) port takes
        // no tagged frame.
        if t.dropped == Some(pipeline::drop::DropReason::TaggedOnAccessPort) {
            hardening += 1;
            continue;
        }
        panic!(
            "{label}: outputs differ from Open vSwitch\n ours: {mine:?}\n OVS:  {:?}\n{}",
            o.effects,
            t.render()
        );
    }
    assert!(same > PACKETS * 3 / 4, "{same} of {PACKETS} the same");
    eprintln!("{same} the same, {hardening} dropped by our access-port hardening");
}

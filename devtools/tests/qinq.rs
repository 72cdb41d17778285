//! 802.1ad service tags (S-tags, TPID 0x88a8) and double-tagged (QinQ)
//! frames, end to end: real frames through a worker's datapath (parser,
//! megaflow cache, fast path) of compute1 of the spec's lab, compiled as
//! the agents do (`topology::build_host`), and of compute1's br-vlan alone
//! (`config/scenarios/qinq-br-vlan`).
//!
//! What must hold (the "Real traffic" issue, item 2): a VM port takes no
//! tag but a priority 802.1Q tag with nothing but payload inside, so an
//! S-tag of any VID, or a priority tag carrying another tag, reaches nobody
//! (`tagged_on_access_port`), and an ARP inside one cannot get past ARP
//! anti-spoofing; a double-tagged frame from the trunk never reaches a VM
//! still carrying its inner tag (`tagged_out_of_access_port`); on trunks an
//! S-tag is a VLAN tag as Open vSwitch treats it (its default `vlan-limit`
//! of 1: the outer tag, whatever its TPID, is the frame's VLAN; a second tag
//! is payload), and its TPID is kept on output. What Open vSwitch itself
//! does with the same frames is in `qinq_golden.rs`.
#![deny(unsafe_code)]

use pipeline::datapath::Datapath;
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::{synth::frame_from_key, PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch};
use pipeline::wire::{ethertype, ipproto};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

const VM1: &str = "fa:16:3e:01:00:11";
const VM2: &str = "fa:16:3e:01:00:12";
const VM3: &str = "fa:16:3e:01:00:13";
const VM4: &str = "fa:16:3e:02:00:14";
const GW1: &str = "fa:16:3e:aa:01:01";
const GW2: &str = "fa:16:3e:aa:02:01";
/// compute2's DVR MAC: routed frames from compute2 carry it.
const DVR_C2: &str = "fa:16:3f:00:00:c2";
const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";

const C_TAG: u16 = ethertype::VLAN;
const S_TAG: u16 = ethertype::QINQ;

/// The ports of compute1 a VM is behind (access ports).
const VM_PORTS: [&str; 3] = ["qvo-vm1", "qvo-vm2", "qvo-vm4"];

/// A host: its switch and one worker's datapath, frames in, frames out.
struct Host {
    sw: Arc<Switch>,
    dp: Datapath,
    pool: PacketPool,
    now: u64,
}

impl Host {
    fn new(sw: Arc<Switch>) -> Host {
        Host {
            sw,
            dp: Datapath::new(0, 1024),
            pool: PacketPool::new(256, 2048),
            now: 1_000_000_000,
        }
    }

    /// compute1 of the spec's lab, with MACs learned as once everyone has
    /// spoken: vm1, vm2 on their ports, vm3 (compute2) behind the trunk.
    fn compute1() -> Host {
        let t = devtools::spec::topology().expect("spec topology");
        let mut cfg = topology::build_host(&t, "compute1", 1).expect("compute1 compiles");
        let mut h = Host::new(cfg.build().expect("builds"));
        h.send("qvo-vm1", &icmp(VM1, VM2, "10.1.0.11", "10.1.0.12"));
        h.send("qvo-vm2", &icmp(VM2, VM1, "10.1.0.12", "10.1.0.11"));
        h.send("qvo-vm4", &icmp(VM4, GW2, "10.2.0.14", "10.2.0.1"));
        let from_vm3 = tagged(&icmp(VM3, VM1, "10.1.0.13", "10.1.0.11"), &[(C_TAG, 101)]);
        h.send("eth1", &from_vm3);
        h.dp.counters.drops = Default::default();
        h
    }

    /// compute1's br-vlan alone, both ports plain (`config/scenarios/qinq-br-vlan`).
    fn br_vlan() -> Host {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/scenarios/qinq-br-vlan");
        let mut sc = vswitch::offline::scenario::load_dir(&dir, 1).expect("scenario");
        Host::new(sc.build().expect("builds"))
    }

    /// Sends `frame` in on `port` (one burst); what left, by port name.
    fn send(&mut self, port: &str, frame: &[u8]) -> Vec<(String, Vec<u8>)> {
        let in_port = self.sw.port_by_name(port).expect("port").id;
        let mut buf = self.pool.get().expect("pool");
        buf.set_data(frame).expect("fits");
        let mut burst = vec![buf];
        let mut out: Vec<(PortId, Vec<u8>)> = Vec::new();
        let mut sink = |p: PortId, b: PacketBuf| out.push((p, b.data().to_vec()));
        self.now += 1_000_000;
        self.dp.process_burst(
            &self.sw,
            in_port,
            &mut burst,
            self.now,
            &mut self.pool,
            &mut sink,
        );
        out.into_iter()
            .map(|(p, b)| (self.sw.port(p).expect("port").name.clone(), b))
            .collect()
    }

    /// Drops counted under the reason named `name`.
    fn drops(&self, name: &str) -> u64 {
        self.dp
            .counters
            .drops
            .nonzero()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| c)
    }
}

fn mac(s: &str) -> Mac {
    s.parse().expect("mac")
}

fn ip(s: &str) -> u64 {
    u32::from(s.parse::<Ipv4Addr>().expect("ip")) as u64
}

/// An untagged ICMP echo request.
fn icmp(src: &str, dst: &str, nw_src: &str, nw_dst: &str) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, mac(src).to_u64());
    k.set(Field::DlDst, mac(dst).to_u64());
    k.set(Field::NwSrc, ip(nw_src));
    k.set(Field::NwDst, ip(nw_dst));
    k.set(Field::NwProto, ipproto::ICMP as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 8);
    frame_from_key(&k, 0)
}

/// An untagged ARP packet (`op` 1 request, 2 reply) from `sha`.
fn arp(sha: &str, dst: &str, op: u64, spa: &str, tpa: &str) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::ARP as u64);
    k.set(Field::DlSrc, mac(sha).to_u64());
    k.set(Field::DlDst, mac(dst).to_u64());
    k.set(Field::NwProto, op);
    k.set(Field::NwSrc, ip(spa));
    k.set(Field::NwDst, ip(tpa));
    k.set(Field::ArpSha, mac(sha).to_u64());
    frame_from_key(&k, 0)
}

/// `frame` with `tags` (TPID, TCI), outermost first, after its addresses.
fn tagged(frame: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    for (tpid, tci) in tags {
        f.extend(tpid.to_be_bytes());
        f.extend(tci.to_be_bytes());
    }
    f.extend(&frame[12..]);
    f
}

/// A frame's tags (TPID, TCI), outermost first, and what follows them.
fn tags_of(frame: &[u8]) -> (Vec<(u16, u16)>, &[u8]) {
    let mut tags = Vec::new();
    let mut ofs = 12;
    while let Some(b) = frame.get(ofs..ofs + 4) {
        let tpid = u16::from_be_bytes([b[0], b[1]]);
        if tpid != C_TAG && tpid != S_TAG {
            break;
        }
        tags.push((tpid, u16::from_be_bytes([b[2], b[3]])));
        ofs += 4;
    }
    (tags, &frame[ofs..])
}

fn assert_nobody(out: &[(String, Vec<u8>)], what: &str) {
    assert!(
        out.is_empty(),
        "{what}: reached {:?}",
        out.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
}

#[test]
fn s_tagged_frames_from_a_vm_reach_nobody_whatever_their_vid() {
    let mut h = Host::compute1();
    let mut sent = 0;
    // VID 0 (a priority S-tag), its own local VLAN and segment, the other
    // network's, 4095; to a neighbour, across the trunk, broadcast, and to
    // the gateway (routed to vm4).
    for vid in [0u16, 1, 2, 101, 102, 4095] {
        for pcp in [0u16, 5] {
            for frame in [
                icmp(VM1, VM2, "10.1.0.11", "10.1.0.12"),
                icmp(VM1, VM3, "10.1.0.11", "10.1.0.13"),
                icmp(VM1, BROADCAST, "10.1.0.11", "10.1.0.255"),
                icmp(VM1, GW1, "10.1.0.11", "10.2.0.14"),
                icmp(VM1, VM4, "10.1.0.11", "10.2.0.14"),
            ] {
                let f = tagged(&frame, &[(S_TAG, pcp << 13 | vid)]);
                assert_nobody(&h.send("qvo-vm1", &f), &format!("S-tag VID {vid}"));
                sent += 1;
            }
        }
    }
    assert_eq!(h.drops("tagged_on_access_port"), sent);
}

#[test]
fn an_arp_inside_an_s_tag_with_a_sender_not_the_vms_reaches_nobody() {
    let mut h = Host::compute1();
    let mut sent = 0;
    // Poisoning the gateway (reply and gratuitous request), claiming vm2's
    // address, an address of nobody; broadcast and to vm2.
    for (op, spa, tpa) in [
        (2, "10.1.0.1", "10.1.0.12"),
        (1, "10.1.0.1", "10.1.0.1"),
        (1, "10.1.0.12", "10.1.0.13"),
        (1, "10.1.0.99", "10.1.0.13"),
    ] {
        for dst in [BROADCAST, VM2] {
            for vid in [0u16, 1, 101] {
                let f = tagged(&arp(VM1, dst, op, spa, tpa), &[(S_TAG, vid)]);
                assert_nobody(
                    &h.send("qvo-vm1", &f),
                    &format!("ARP from {spa} in S-tag {vid}"),
                );
                sent += 1;
            }
        }
    }
    assert_eq!(h.drops("tagged_on_access_port"), sent);
    // In a priority 802.1Q tag the ARP reaches the flows, whose table 24
    // checks its sender address as it does untagged.
    let spoofed = tagged(
        &arp(VM1, BROADCAST, 2, "10.1.0.1", "10.1.0.12"),
        &[(C_TAG, 0)],
    );
    assert_nobody(
        &h.send("qvo-vm1", &spoofed),
        "spoofed ARP in a priority tag",
    );
    let own = tagged(&arp(VM1, VM2, 1, "10.1.0.11", "10.1.0.12"), &[(C_TAG, 0)]);
    let out = h.send("qvo-vm1", &own);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, "qvo-vm2");
    assert_eq!(
        out[0].1,
        arp(VM1, VM2, 1, "10.1.0.11", "10.1.0.12"),
        "untagged"
    );
}

#[test]
fn a_priority_tag_carrying_another_tag_from_a_vm_reaches_nobody() {
    let mut h = Host::compute1();
    let mut sent = 0;
    for inner in [(C_TAG, 5), (C_TAG, 101), (C_TAG, 0), (S_TAG, 5), (S_TAG, 0)] {
        for frame in [
            arp(VM1, BROADCAST, 1, "10.1.0.11", "10.1.0.13"),
            icmp(VM1, VM2, "10.1.0.11", "10.1.0.12"),
            icmp(VM1, VM3, "10.1.0.11", "10.1.0.13"),
        ] {
            let f = tagged(&frame, &[(C_TAG, 0), inner]);
            assert_nobody(
                &h.send("qvo-vm1", &f),
                &format!("priority tag over {inner:x?}"),
            );
            sent += 1;
        }
    }
    assert_eq!(h.drops("tagged_on_access_port"), sent);
}

#[test]
fn double_tagged_frames_from_the_trunk_reach_no_vm_still_tagged() {
    let mut h = Host::compute1();
    let stacks = [
        [(S_TAG, 101), (C_TAG, 7)],
        [(C_TAG, 101), (C_TAG, 7)],
        [(C_TAG, 101), (S_TAG, 7)],
        [(S_TAG, 101), (S_TAG, 7)],
        [(S_TAG, 101), (C_TAG, 101)],
    ];
    let mut unicast = 0;
    for stack in stacks {
        // To vm1 (learned on its port): NORMAL pops the outer tag.
        let f = tagged(&icmp(VM3, VM1, "10.1.0.13", "10.1.0.11"), &stack);
        assert_nobody(&h.send("eth1", &f), &format!("{stack:x?} to vm1"));
        // Routed by compute2 to vm4: table 60's `strip_vlan,output` pops it.
        let mut net2 = stack;
        net2[0].1 = 102;
        let f = tagged(&icmp(DVR_C2, VM4, "10.2.0.15", "10.2.0.14"), &net2);
        assert_nobody(&h.send("eth1", &f), &format!("{stack:x?} to vm4"));
        unicast += 2;
        // Flooded to every port of net1.
        let f = tagged(&arp(VM3, BROADCAST, 1, "10.1.0.13", "10.1.0.11"), &stack);
        for (port, bytes) in h.send("eth1", &f) {
            assert!(
                !VM_PORTS.contains(&port.as_str()) && port != "qr-s1",
                "{stack:x?} flooded reached {port}: {bytes:02x?}"
            );
        }
    }
    assert!(
        h.drops("tagged_out_of_access_port") >= unicast,
        "{:?}",
        h.dp.counters.drops.nonzero()
    );
}

#[test]
fn s_tagged_frames_from_the_trunk_reach_vms_untagged_as_c_tagged_ones_do() {
    let mut h = Host::compute1();
    let to_vm1 = icmp(VM3, VM1, "10.1.0.13", "10.1.0.11");
    for tpid in [C_TAG, S_TAG] {
        for pcp in [0u16, 3] {
            let out = h.send("eth1", &tagged(&to_vm1, &[(tpid, pcp << 13 | 101)]));
            assert_eq!(
                out,
                vec![("qvo-vm1".to_string(), to_vm1.clone())],
                "{tpid:#x}"
            );
        }
    }
    // Routed on compute2 to vm4: delivered with the gateway's MAC restored.
    let routed = icmp(DVR_C2, VM4, "10.2.0.15", "10.2.0.14");
    let mut delivered = routed.clone();
    delivered[6..12].copy_from_slice(&mac(GW2).0);
    for tpid in [C_TAG, S_TAG] {
        let out = h.send("eth1", &tagged(&routed, &[(tpid, 102)]));
        assert_eq!(
            out,
            vec![("qvo-vm4".to_string(), delivered.clone())],
            "{tpid:#x}"
        );
    }
    // A broadcast reaches every port of net1, untagged.
    let who_has = arp(VM3, BROADCAST, 1, "10.1.0.13", "10.1.0.11");
    let out = h.send("eth1", &tagged(&who_has, &[(S_TAG, 101)]));
    let mut vms: Vec<&str> = out
        .iter()
        .filter(|(p, _)| p.starts_with("qvo-"))
        .map(|(p, b)| {
            assert_eq!(b, &who_has, "{p}");
            p.as_str()
        })
        .collect();
    vms.sort();
    assert_eq!(vms, ["qvo-vm1", "qvo-vm2"], "{out:?}");
}

#[test]
fn s_tags_are_kept_on_trunk_outputs() {
    let mut h = Host::br_vlan();
    let out_frame = icmp(VM1, VM3, "10.1.0.11", "10.1.0.13");
    // br-int's side (local VLAN 1) to the wire: table 2's mod_vlan_vid:101
    // changes the VID, keeps the TPID, the PCP and an inner tag.
    for tags in [
        vec![(S_TAG, 1)],
        vec![(S_TAG, 5 << 13 | 1)],
        vec![(C_TAG, 1)],
        vec![(S_TAG, 1), (C_TAG, 7)],
        vec![(C_TAG, 1), (C_TAG, 7)],
    ] {
        let out = h.send("phy-br-vlan", &tagged(&out_frame, &tags));
        let mut want = tags.clone();
        want[0].1 = want[0].1 & 0xf000 | 101;
        assert_eq!(out.len(), 1, "{tags:x?}: {out:?}");
        assert_eq!(out[0].0, "eth1");
        let (got, rest) = tags_of(&out[0].1);
        assert_eq!(got, want, "{tags:x?}");
        assert_eq!(rest, &out_frame[12..]);
    }
    // The wire to br-int's side: NORMAL, trunk to trunk, leaves the frame
    // as it came; so does table 3's direct output of another host's DVR MAC.
    for frame in [
        tagged(&icmp(VM3, VM1, "10.1.0.13", "10.1.0.11"), &[(S_TAG, 101)]),
        tagged(
            &icmp(VM3, VM1, "10.1.0.13", "10.1.0.11"),
            &[(S_TAG, 101), (C_TAG, 7)],
        ),
        tagged(
            &icmp(DVR_C2, VM4, "10.2.0.15", "10.2.0.14"),
            &[(S_TAG, 102)],
        ),
    ] {
        let out = h.send("eth1", &frame);
        assert_eq!(out, vec![("phy-br-vlan".to_string(), frame.clone())]);
    }
}

#[test]
fn the_megaflow_of_a_tagged_frame_covers_its_tpid() {
    // A priority 802.1Q tag is allowed from a VM, a priority S-tag is not:
    // alternating them, through the cache, each gets its own outcome.
    let mut h = Host::compute1();
    let own = arp(VM1, VM2, 1, "10.1.0.11", "10.1.0.12");
    for round in 0..3 {
        let out = h.send("qvo-vm1", &tagged(&own, &[(C_TAG, 0)]));
        assert_eq!(
            out,
            vec![("qvo-vm2".to_string(), own.clone())],
            "round {round}"
        );
        let out = h.send("qvo-vm1", &tagged(&own, &[(S_TAG, 0)]));
        assert_nobody(&out, &format!("S-tag, round {round}"));
    }
    assert_eq!(h.drops("tagged_on_access_port"), 3);
    assert!(
        h.dp.cache.counters.hits >= 4,
        "the cache served the repeats"
    );
    // From the trunk: the same frame in an S-tag and in a C-tag leaves the
    // same way, and keeps its TPID towards a trunk (br-vlan).
    let mut h = Host::br_vlan();
    let f = icmp(VM1, VM3, "10.1.0.11", "10.1.0.13");
    for round in 0..3 {
        for tpid in [C_TAG, S_TAG] {
            let out = h.send("phy-br-vlan", &tagged(&f, &[(tpid, 1)]));
            assert_eq!(
                out,
                vec![("eth1".to_string(), tagged(&f, &[(tpid, 101)]))],
                "round {round}"
            );
        }
    }
}

#[test]
fn tags_the_flows_rewrite_leave_as_the_flows_say_through_the_cache() {
    // Whether an output pushes, rewrites in place, pops, or pops and pushes
    // depends on the packet's own tag and its TPID: the megaflow of a walk
    // that changed the tag covers both, in whatever order packets come.
    let ports = "bridge br0\nport br0 p1 ofport=1\nport br0 p2 ofport=2\nport br0 p3 ofport=3\n\
                 port br0 out ofport=4\n";
    let flows = "in_port=p1 actions=strip_vlan,push_vlan:0x8100,mod_vlan_vid:7,output:out\n\
                 in_port=p2 actions=mod_vlan_vid:9,output:out\n\
                 in_port=p3 actions=strip_vlan,push_vlan:0x88a8,mod_vlan_vid:4,output:out\n";
    let mut sc =
        vswitch::offline::scenario::load(ports, &[("br0".to_string(), flows.to_string())], None, 1)
            .expect("scenario");
    let mut h = Host::new(sc.build().expect("builds"));
    let f = icmp(VM1, VM3, "10.1.0.11", "10.1.0.13");
    let inputs = [vec![], vec![(C_TAG, 5)], vec![(S_TAG, 5)]];
    for round in 0..2 {
        for tags in &inputs {
            let want_vid =
                |vid: u16, input_tpid: Option<u16>| vec![(input_tpid.unwrap_or(C_TAG), vid)];
            for (port, want) in [
                ("p1", vec![(C_TAG, 7)]),
                ("p2", want_vid(9, tags.first().map(|t| t.0))),
                ("p3", vec![(S_TAG, 4)]),
            ] {
                let out = h.send(port, &tagged(&f, tags));
                assert_eq!(out.len(), 1, "{port} {tags:x?}");
                let (got, rest) = tags_of(&out[0].1);
                assert_eq!(got, want, "round {round}, in on {port} with {tags:x?}");
                assert_eq!(rest, &f[12..]);
            }
        }
    }
    assert!(
        h.dp.cache.counters.hits >= 9,
        "the second round came from the cache"
    );
}

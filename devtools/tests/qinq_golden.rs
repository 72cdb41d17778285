//! Golden tests for 802.1ad (S-tag, TPID 0x88a8) and double-tagged frames
//! against a real Open vSwitch: `config/scenarios/qinq-br-vlan` (compute1's
//! br-vlan alone) and `config/scenarios/spec-compute1/packets-qinq.txt`
//! (compute1's three bridges), recorded with `shared/tools/ovs-oracle` into
//! `tests/golden/qinq-br-vlan/oracle.jsonl` and
//! `tests/golden/spec-compute1/oracle-qinq.jsonl`.
//!
//! Two checks per packet: the outputs our trace gives (port, MACs, VLAN)
//! equal OVS's; and the frames our datapath sends carry the tags OVS's
//! datapath actions leave on them, TPIDs included (the frame's tags as
//! given, then OVS's `pop_vlan`/`push_vlan(tpid=...)` up to each output).
//!
//! Lines for frames with an S-tag are datapath flows (odp syntax on the
//! datapath `ovs-netdev`): OpenFlow's match syntax has no field for a tag's
//! TPID. Here they become the frame they describe, sent in on the port the
//! datapath number names.
//!
//! Where this switch parts from Open vSwitch on purpose, `DIVERGENCES` says
//! what OVS does, what we do instead and why: OVS takes a priority-tagged
//! S-tag, or a priority tag carrying another tag, from a VM; and when it
//! pops a double-tagged frame's outer tag towards a VM, the VM gets the
//! inner one.
#![deny(unsafe_code)]

#[allow(dead_code)]
// the scenario runner and whole-recording comparison serve the other golden tests
mod common;

use common::effects_of;
use pipeline::datapath::Datapath;
use pipeline::key::{Field, FlowKey, Mac};
use pipeline::packet::{synth::frame_from_key, PacketBuf, PacketPool};
use pipeline::switch::PortId;
use pipeline::trace::Trace;
use pipeline::xlate::trace::{trace_frame, trace_text_with};
use std::path::{Path, PathBuf};
use vswitch::offline::scenario::{load, PacketLine, ScenarioDir};

/// The datapath `ovs-netdev`: a packet line naming it is an odp flow.
const DATAPATH: &str = "ovs-netdev";

/// (label, our drop reason, what Open vSwitch does instead and why we don't).
const DIVERGENCES: [(&str, &str, &str); 7] = [
    (
        "s-tag-vm1-priority-arp",
        "tagged_on_access_port",
        "OVS takes a priority-tagged S-tag on an access port as untagged and floods it, \
         S-tag kept, onto the trunk: a VM would put 802.1ad frames on the provider's network",
    ),
    (
        "s-tag-vm1-vlan102-to-vm4",
        "tagged_on_access_port",
        "table 60's `dl_vlan=102,dl_dst=<vm4> actions=strip_vlan,output` delivers it \
         (NORMAL would have refused the tag): vm1 reaches another network's VM directly",
    ),
    (
        "priority-tag-vm1-inner-tag",
        "tagged_on_access_port",
        "OVS sees VLAN 0 and dl_type 0x8100, passes it to NORMAL (table 24 never sees the \
         ARP inside) and floods it: vm2 and qr-s1 receive the inner tag, the trunk two tags",
    ),
    (
        "qinq-eth1-to-vm1",
        "tagged_out_of_access_port",
        "NORMAL pops the outer tag: vm1 receives the frame still tagged (VLAN 7)",
    ),
    (
        "qinq-8100-eth1-to-vm1",
        "tagged_out_of_access_port",
        "NORMAL pops the outer tag: vm1 receives the frame still tagged (VLAN 7)",
    ),
    (
        "qinq-eth1-dvr-to-vm4",
        "tagged_out_of_access_port",
        "table 60's strip_vlan pops the outer tag: vm4 receives the frame still tagged",
    ),
    (
        "qinq-eth1-flood",
        "tagged_out_of_access_port",
        "NORMAL floods it with the outer tag popped: vm1, vm2 and qr-s1 receive the inner S-tag",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scenario directory with the packets of `packets` (a file in it).
fn scenario(dir: &str, packets: &str) -> (ScenarioDir, Vec<String>) {
    let dir = root().join("../config/scenarios").join(dir);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    let ports = read(&dir.join("ports.conf"));
    let mut flows = Vec::new();
    for e in std::fs::read_dir(dir.join("flows")).expect("flows") {
        let p = e.expect("entry").path();
        let bridge = p.file_stem().expect("name").to_string_lossy().to_string();
        flows.push((bridge, read(&p)));
    }
    flows.sort();
    let packets = read(&dir.join(packets));
    let sc = load(&ports, &flows, Some(&packets), 1).expect("scenario loads");
    (sc, datapath_ports(&ports))
}

/// Port names by OVS datapath port number (index + 1): ports are numbered
/// as the oracle creates them, each bridge's local port with the bridge,
/// patch ports not at all.
fn datapath_ports(ports_conf: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in ports_conf.lines() {
        let w: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        match w[..] {
            ["bridge", name, ..] => names.push(name.to_string()),
            ["port", _, name, ref rest @ ..] if !rest.contains(&"type=patch") => {
                names.push(name.to_string())
            }
            _ => {}
        }
    }
    names
}

/// One line of an oracle recording, with what the tag check needs.
struct Recorded {
    label: String,
    flow: String,
    datapath_actions: String,
    effects: common::Effects,
}

fn recording(path: &str) -> Vec<Recorded> {
    let lines = common::oracle(&root().join("tests/golden").join(path));
    let text = std::fs::read_to_string(root().join("tests/golden").join(path)).expect("read");
    text.lines()
        .zip(lines)
        .map(|(l, o)| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert_eq!(o.error, None, "{}: OVS refused the line", o.label);
            Recorded {
                label: o.label,
                flow: v["flow"].as_str().expect("flow").to_string(),
                datapath_actions: v["datapath_actions"].as_str().expect("actions").to_string(),
                effects: o.effects,
            }
        })
        .collect()
}

/// A packet of an odp flow: its datapath input port, its tags (TPID, TCI,
/// outermost first) and the rest of it as an untagged key.
struct OdpPacket {
    in_port: usize,
    tags: Vec<(u16, u16)>,
    key: FlowKey,
}

/// `name(args)` items of one level of an odp flow.
fn odp_items(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(|item| {
            let (name, rest) = item
                .split_once('(')
                .unwrap_or_else(|| panic!("odp item {item}"));
            (name, rest.strip_suffix(')').expect("closing parenthesis"))
        })
        .collect()
}

/// `k=v,...` of an odp item, as a lookup.
fn odp_arg<'a>(args: &'a str, k: &str) -> &'a str {
    args.split(',')
        .find_map(|kv| kv.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("`{k}` in {args}"))
}

fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex"),
        None => s.parse().expect("number"),
    }
}

fn ipv4(s: &str) -> u64 {
    u32::from(s.parse::<std::net::Ipv4Addr>().expect("ip")) as u64
}

fn mac(s: &str) -> u64 {
    s.parse::<Mac>().expect("mac").to_u64()
}

/// The packet of an odp flow (the subset the packet files use: in_port,
/// eth, eth_type, vlan, encap, ipv4, icmp, arp).
fn parse_odp(flow: &str) -> OdpPacket {
    let mut p = OdpPacket {
        in_port: 0,
        tags: Vec::new(),
        key: FlowKey::ZERO,
    };
    let k = &mut p.key;
    let mut level = flow.to_string();
    loop {
        let mut inner = None;
        for (name, args) in odp_items(&level) {
            match name {
                "in_port" => p.in_port = num(args) as usize,
                "eth" => {
                    k.set(Field::DlSrc, mac(odp_arg(args, "src")));
                    k.set(Field::DlDst, mac(odp_arg(args, "dst")));
                }
                "eth_type" => k.set(Field::DlType, num(args)),
                "vlan" => {
                    let tci = num(odp_arg(args, "pcp")) << 13 | num(odp_arg(args, "vid"));
                    p.tags.push((k.dl_type(), tci as u16));
                }
                "encap" => inner = Some(args.to_string()),
                "ipv4" => {
                    k.set(Field::NwSrc, ipv4(odp_arg(args, "src")));
                    k.set(Field::NwDst, ipv4(odp_arg(args, "dst")));
                    k.set(Field::NwProto, num(odp_arg(args, "proto")));
                    k.set(Field::NwTtl, num(odp_arg(args, "ttl")));
                }
                "icmp" => {
                    k.set(Field::TpSrc, num(odp_arg(args, "type")));
                    k.set(Field::TpDst, num(odp_arg(args, "code")));
                }
                "arp" => {
                    k.set(Field::NwSrc, ipv4(odp_arg(args, "sip")));
                    k.set(Field::NwDst, ipv4(odp_arg(args, "tip")));
                    k.set(Field::NwProto, num(odp_arg(args, "op")));
                    k.set(Field::ArpSha, mac(odp_arg(args, "sha")));
                    k.set(Field::ArpTha, mac(odp_arg(args, "tha")));
                }
                other => panic!("odp item `{other}` in {flow}"),
            }
        }
        match inner {
            Some(i) => level = i,
            None => break,
        }
    }
    p
}

fn frame_of(p: &OdpPacket) -> Vec<u8> {
    let untagged = frame_from_key(&p.key, 0);
    let mut f = untagged[..12].to_vec();
    for (tpid, tci) in &p.tags {
        f.extend(tpid.to_be_bytes());
        f.extend(tci.to_be_bytes());
    }
    f.extend(&untagged[12..]);
    f
}

/// Per output: (port, tags as (TPID, VID), outermost first), sorted.
type TagStacks = Vec<(String, Vec<(u16, u16)>)>;

/// What OVS's datapath actions leave on each output: the input's tags,
/// then each `pop_vlan` / `push_vlan(...)` in order.
fn ovs_tag_stacks(input: &[(u16, u16)], datapath_actions: &str) -> TagStacks {
    let mut stack: Vec<(u16, u16)> = input.iter().map(|&(t, tci)| (t, tci & 0x0fff)).collect();
    let mut out = Vec::new();
    let actions = datapath_actions.replace(" ;; ", ",");
    let mut depth = 0;
    let mut cur = String::new();
    let mut items = Vec::new();
    for c in actions.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    for a in items {
        if a == "pop_vlan" {
            stack.remove(0);
        } else if let Some(args) = a
            .strip_prefix("push_vlan(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let tpid = args
                .split(',')
                .find_map(|kv| kv.strip_prefix("tpid="))
                .map_or(0x8100, |t| num(t) as u16);
            stack.insert(0, (tpid, num(odp_arg(args, "vid")) as u16));
        } else if a == "drop" || a.starts_with("set(") || a.is_empty() {
        } else {
            out.push((a, stack.clone()));
        }
    }
    out.sort();
    out
}

/// The tags (TPID, VID) of a frame, outermost first.
fn tags_of(frame: &[u8]) -> Vec<(u16, u16)> {
    let mut tags = Vec::new();
    let mut ofs = 12;
    while let Some(b) = frame.get(ofs..ofs + 4) {
        let tpid = u16::from_be_bytes([b[0], b[1]]);
        if tpid != 0x8100 && tpid != 0x88a8 {
            break;
        }
        tags.push((tpid, u16::from_be_bytes([b[2], b[3]]) & 0x0fff));
        ofs += 4;
    }
    tags
}

/// Our datapath (a fresh switch with the scenario's MAC table) on the frame.
fn our_tag_stacks(sc: &mut ScenarioDir, port: &str, frame: &[u8]) -> TagStacks {
    let sw = sc.build().expect("builds");
    let mut dp = Datapath::new(0, 64);
    let mut pool = PacketPool::new(64, 2048);
    let mut buf = pool.get().expect("pool");
    buf.set_data(frame).expect("fits");
    let mut out: Vec<(PortId, Vec<u8>)> = Vec::new();
    let mut sink = |p: PortId, b: PacketBuf| out.push((p, b.data().to_vec()));
    let in_port = sw.port_by_name(port).expect("port").id;
    dp.process_burst(&sw, in_port, &mut vec![buf], 1, &mut pool, &mut sink);
    let mut stacks: TagStacks = out
        .into_iter()
        .map(|(p, b)| (sw.port(p).expect("port").name.clone(), tags_of(&b)))
        .collect();
    stacks.sort();
    stacks
}

/// Our trace of a packet line (an odp line as the frame it describes), and
/// for an odp line the tag stacks ours and OVS's outputs carry.
fn run(
    sc: &mut ScenarioDir,
    dp_ports: &[String],
    p: &PacketLine,
    rec: &Recorded,
) -> (Trace, Option<(TagStacks, TagStacks)>) {
    let sw = sc.build().expect("builds");
    if p.bridge != DATAPATH {
        let t = trace_text_with(&sw, Some(&p.bridge), &p.flow, 0, &p.trace_options())
            .unwrap_or_else(|e| panic!("{}: {e}", p.label));
        return (t, None);
    }
    let odp = parse_odp(&p.flow);
    let port = &dp_ports[odp.in_port - 1];
    let frame = frame_of(&odp);
    let t = trace_frame(&sw, port, &frame, 0).unwrap_or_else(|e| panic!("{}: {e}", p.label));
    let ovs = ovs_tag_stacks(&odp.tags, &rec.datapath_actions);
    let ours = our_tag_stacks(sc, port, &frame);
    (t, Some((ours, ovs)))
}

/// Runs a scenario's packets and compares them with the recording; returns
/// the labels that diverged as `DIVERGENCES` says they do.
fn compare(dir: &str, packets: &str, recorded: &str) -> Vec<String> {
    let (mut sc, dp_ports) = scenario(dir, packets);
    let recs = recording(recorded);
    let packets = sc.packets.clone();
    assert_eq!(packets.len(), recs.len(), "{packets:?} vs the recording");
    let mut diverged = Vec::new();
    for (p, rec) in packets.iter().zip(&recs) {
        assert_eq!(p.label, rec.label);
        assert_eq!(
            p.flow, rec.flow,
            "{}: packets file and recording differ",
            p.label
        );
        let (t, stacks) = run(&mut sc, &dp_ports, p, rec);
        if let Some((_, reason, why)) = DIVERGENCES.iter().find(|(l, _, _)| *l == p.label) {
            assert!(
                !rec.effects.is_empty(),
                "{}: OVS delivers it ({why})",
                p.label
            );
            assert_eq!(effects_of(&t), vec![], "{}: {why}\n{}", p.label, t.render());
            assert_eq!(
                t.dropped.map(|r| r.as_str()),
                Some(*reason),
                "{}\n{}",
                p.label,
                t.render()
            );
            if let Some((ours, _)) = stacks {
                assert_eq!(ours, vec![], "{}: our datapath sent it", p.label);
            }
            diverged.push(p.label.clone());
            continue;
        }
        assert_eq!(
            effects_of(&t),
            rec.effects,
            "{}: outputs differ from Open vSwitch\n{}",
            p.label,
            t.render()
        );
        if let Some((ours, ovs)) = stacks {
            assert_eq!(ours, ovs, "{}: tags differ from Open vSwitch's", p.label);
        }
    }
    diverged
}

#[test]
fn br_vlan_switches_s_tags_as_open_vswitch_does_tpid_kept() {
    let diverged = compare("qinq-br-vlan", "packets.txt", "qinq-br-vlan/oracle.jsonl");
    assert_eq!(diverged, Vec::<String>::new());
}

#[test]
fn compute1_matches_open_vswitch_but_where_a_vm_would_send_or_receive_a_tag() {
    let diverged = compare(
        "spec-compute1",
        "packets-qinq.txt",
        "spec-compute1/oracle-qinq.jsonl",
    );
    let mut want: Vec<String> = DIVERGENCES.iter().map(|(l, _, _)| l.to_string()).collect();
    want.sort();
    let mut diverged = diverged;
    diverged.sort();
    assert_eq!(diverged, want);
}

#[test]
fn the_odp_lines_describe_the_frames_ovs_traced() {
    // The datapath port numbering the packet files assume.
    let (_, ports) = scenario("spec-compute1", "packets-qinq.txt");
    assert_eq!(ports[6], "qvo-vm1");
    assert_eq!(ports[9], "eth1");
    let (_, ports) = scenario("qinq-br-vlan", "packets.txt");
    assert_eq!(ports, ["br-vlan", "eth1", "phy-br-vlan"]);
    // A QinQ line: two tags, outer S-tag, the ICMP inside.
    let p = parse_odp(
        "in_port(2),eth(src=fa:16:3e:01:00:13,dst=fa:16:3e:01:00:11),eth_type(0x88a8),\
         vlan(vid=101,pcp=3),encap(eth_type(0x8100),vlan(vid=7,pcp=0),encap(eth_type(0x0800),\
         ipv4(src=10.1.0.13,dst=10.1.0.11,proto=1,tos=0,ttl=64,frag=no),icmp(type=0,code=0)))",
    );
    assert_eq!(p.in_port, 2);
    assert_eq!(p.tags, [(0x88a8, 0x6065), (0x8100, 7)]);
    let f = frame_of(&p);
    assert_eq!(
        f[12..22],
        [0x88, 0xa8, 0x60, 0x65, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00]
    );
    assert_eq!(
        ovs_tag_stacks(
            &p.tags,
            "pop_vlan,push_vlan(tpid=0x88a8,vid=5,pcp=0),eth1,pop_vlan,qvo-vm1"
        ),
        [
            ("eth1".to_string(), vec![(0x88a8, 5), (0x8100, 7)]),
            ("qvo-vm1".to_string(), vec![(0x8100, 7)])
        ]
    );
}

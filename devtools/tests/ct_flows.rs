//! `ct()` in OpenFlow flows, executed: a stateful firewall that admits
//! connections started inside and their replies, and SNAT with
//! `ct(commit,nat(src=...))` whose replies are translated back by
//! `ct(nat)`, through the cached datapath.
#![deny(unsafe_code)]

use pipeline::datapath::Datapath;
use pipeline::key::{Field, FlowKey};
use pipeline::packet::{synth::frame_from_key, PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch};
use pipeline::wire::{ethertype, ipproto};
use std::sync::Arc;

fn switch(flows: &str) -> Arc<Switch> {
    let dir = std::env::temp_dir().join(format!(
        "vswitch-ct-flows-{}-{:p}",
        std::process::id(),
        flows
    ));
    std::fs::create_dir_all(dir.join("flows")).expect("tmp");
    std::fs::write(
        dir.join("ports.conf"),
        "bridge br0\nport br0 inside ofport=1\nport br0 outside ofport=2\n",
    )
    .expect("write");
    std::fs::write(dir.join("flows/br0.flows"), flows).expect("write");
    let sc = vswitch::offline::scenario::load_dir(&dir, 1);
    let _ = std::fs::remove_dir_all(&dir);
    sc.expect("scenario").build().expect("build")
}

fn udp(src: u32, sport: u16, dst: u32, dport: u16) -> Vec<u8> {
    let mut k = FlowKey::ZERO;
    k.set(Field::DlType, ethertype::IPV4 as u64);
    k.set(Field::DlSrc, 0x0200_0000_0001);
    k.set(Field::DlDst, 0x0200_0000_0002);
    k.set(Field::NwProto, ipproto::UDP as u64);
    k.set(Field::NwSrc, src as u64);
    k.set(Field::NwDst, dst as u64);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, sport as u64);
    k.set(Field::TpDst, dport as u64);
    frame_from_key(&k, 10)
}

/// Sends `frame` in on `port`; returns (output port name, parsed key) pairs.
fn send(
    sw: &Switch,
    dp: &mut Datapath,
    pool: &mut PacketPool,
    port: &str,
    frame: &[u8],
    now: u64,
) -> Vec<(String, FlowKey)> {
    let in_port = sw.port_by_name(port).expect("port").id;
    let mut b = pool.get().expect("pool");
    b.set_data(frame).expect("fits");
    let mut burst = vec![b];
    let mut out = Vec::new();
    let mut sink = |p: PortId, pkt: PacketBuf| {
        let k = pipeline::packet::parse(pkt.data(), 0).expect("parses").key;
        out.push((sw.port(p).map(|x| x.name.clone()).unwrap_or_default(), k));
    };
    dp.process_burst(sw, in_port, &mut burst, now, pool, &mut sink);
    out
}

const FIREWALL: &str = "\
table=0, priority=100,ip,ct_state=-trk actions=ct(table=1,zone=5)
table=0, priority=0 actions=drop
table=1, priority=10,ct_state=+trk+new,in_port=1 actions=ct(commit,zone=5),output:2
table=1, priority=10,ct_state=+trk+est,in_port=1 actions=output:2
table=1, priority=10,ct_state=+trk+est,in_port=2 actions=output:1
table=1, priority=0 actions=drop
";

#[test]
fn stateful_firewall_admits_replies_and_refuses_outside_initiated() {
    let sw = switch(FIREWALL);
    let mut dp = Datapath::new(0, 1024);
    let mut pool = PacketPool::new(64, 2048);
    let (a, b) = (0x0a00_0005, 0xc633_6401);
    for round in 0..3 {
        let out = send(
            &sw,
            &mut dp,
            &mut pool,
            "inside",
            &udp(a, 5000, b, 53),
            round * 10,
        );
        assert_eq!(out.len(), 1, "round {round}: outbound passes");
        assert_eq!(out[0].0, "outside");
        let back = send(
            &sw,
            &mut dp,
            &mut pool,
            "outside",
            &udp(b, 53, a, 5000),
            round * 10 + 1,
        );
        assert_eq!(back.len(), 1, "round {round}: the reply passes");
        assert_eq!(back[0].0, "inside");
    }
    // Not a reply to anything: refused.
    let out = send(
        &sw,
        &mut dp,
        &mut pool,
        "outside",
        &udp(b, 53, a, 6000),
        100,
    );
    assert!(out.is_empty());
    assert_eq!(sw.conntrack.len(), 1);
    assert!(
        dp.recirc_cache.counters.hits > 0,
        "recirculated walks are cached"
    );
    let c = &sw.conntrack.dump(Some(5), None)[0];
    assert_eq!(c.packets, [3, 3]);
}

#[test]
fn snat_by_flow_and_the_reply_translated_back() {
    let sw = switch(
        "\
table=0, priority=100,ip,ct_state=-trk actions=ct(table=1,zone=7,nat)
table=1, priority=10,ct_state=+trk+new,in_port=1 actions=ct(commit,zone=7,nat(src=192.0.2.1)),output:2
table=1, priority=10,ct_state=+trk+est,in_port=1 actions=output:2
table=1, priority=10,ct_state=+trk+est,in_port=2 actions=output:1
table=1, priority=0 actions=drop
",
    );
    let mut dp = Datapath::new(0, 1024);
    let mut pool = PacketPool::new(64, 2048);
    let (a, b, ext) = (0x0a00_0005u32, 0xc633_6401u32, 0xc000_0201u32);
    let out = send(&sw, &mut dp, &mut pool, "inside", &udp(a, 5000, b, 53), 0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.nw_src(), ext, "source NATed");
    assert_eq!(out[0].1.tp_src(), 5000, "port kept");
    let back = send(
        &sw,
        &mut dp,
        &mut pool,
        "outside",
        &udp(b, 53, ext, 5000),
        1,
    );
    assert_eq!(back.len(), 1, "reply admitted");
    assert_eq!(back[0].1.nw_dst(), a, "translated back to the inside host");
    // The trace shows the conntrack step and the recirculated table.
    let t =
        pipeline::xlate::trace::trace_frame(&sw, "inside", &udp(a, 5000, b, 53), 2).expect("trace");
    let text = t.render();
    assert!(
        text.contains("ct: zone 7, nat, recirculate to table 1"),
        "{text}"
    );
    assert!(text.contains("recirculation"), "{text}");
}

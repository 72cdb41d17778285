//! `Datapath::forward_burst`, the worker's entry: a burst's packets are
//! run in place and those whose walk ends in an output stay in the burst,
//! in order, with their ports; dropped ones go back to the pool, counted.

mod host;

use devtools::traffic::TrafficScenario;
use host::Host;
use pipeline::datapath::Datapath;
use pipeline::drop::DropReason;
use pipeline::packet::{PacketBuf, PacketPool, DEFAULT_MAX_FRAME};
use pipeline::switch::PortId;

#[test]
fn a_mixed_burst_keeps_its_outputs_in_order_with_their_ports_and_drops_the_rest() {
    use TrafficScenario::*;
    let (h, frames) = Host::for_scenarios(&[L2Egress, RoutedSameHost, FipEgress]);
    let sw = h.sw.clone();
    let port = |name: &str| sw.port_by_name(name).expect(name).id;
    let (l2, routed, fip) = (&frames[0][0], &frames[1][0], &frames[2][0]);
    let runt = vec![0u8; 10];
    let sent = [l2, routed, &runt, fip, l2];

    let mut dp = Datapath::new(0, 1024);
    let mut pool = PacketPool::new(64, DEFAULT_MAX_FRAME);
    let before = pool.available();
    let mut burst: Vec<PacketBuf> = sent
        .iter()
        .map(|f| {
            let mut b = pool.get().expect("buffer");
            b.set_data(f).expect("fits");
            b
        })
        .collect();
    let mut extra = Vec::new();
    let mut sink = |p: PortId, b: PacketBuf| extra.push((p, b));
    dp.forward_burst(
        &sw,
        port("qvo-vm1"),
        &mut burst,
        1_000_000_000,
        &mut pool,
        &mut sink,
    );

    assert!(
        extra.is_empty(),
        "no walk outputs twice, nothing is originated"
    );
    assert_eq!(
        dp.burst_ports(),
        [port("eth1"), port("qvo-vm4"), port("eth2"), port("eth1")],
        "the outputs, in the order the packets came, the runt gone"
    );
    assert_eq!(burst.len(), 4);
    // Each stayed where its walk left it: rewritten in place.
    assert_eq!(
        burst[0].len(),
        l2.len() + 4,
        "VLAN 101 pushed for the trunk"
    );
    assert_eq!(burst[3].len(), l2.len() + 4);
    assert_eq!(burst[1].data()[14 + 8], 63, "routed: TTL decremented");
    assert_ne!(
        burst[2].data()[26..30],
        fip[26..30],
        "floating IP as source"
    );
    assert_eq!(dp.counters.drops.get(DropReason::EthTruncated), 1);
    assert_eq!(dp.counters.tx_packets, 4);
    assert_eq!(pool.available(), before - 4, "the runt's buffer is back");
    for b in burst.drain(..) {
        pool.put(b);
    }
    assert_eq!(pool.available(), before);
}

#[test]
fn process_burst_hands_the_sink_what_forward_burst_leaves_in_order() {
    use TrafficScenario::*;
    let (mut h, frames) = Host::for_scenarios(&[L2Egress, RoutedSameHost]);
    let (l2, routed) = (frames[0][0].clone(), frames[1][0].clone());
    let out = h.send("qvo-vm1", &[routed.clone(), l2.clone(), vec![1; 3], routed]);
    let ports: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(ports, ["qvo-vm4", "eth1", "qvo-vm4"]);
    assert_eq!(h.drops(DropReason::EthTruncated), 1);
}

/// A run of packets of one flow goes through its program op by op for
/// the whole run (`Program::groupable`): what each port is handed, the
/// drops and the connections stored are those of the same packets sent
/// one burst each — for every scenario, conntrack steps included.
#[test]
fn a_run_of_one_flow_forwards_as_its_packets_one_by_one() {
    for s in devtools::traffic::ALL {
        let (mut grouped, frames) = Host::for_flows(s, 2);
        let (mut single, _) = Host::for_flows(s, 2);
        assert_ne!(frames[0], frames[1]);
        // Two flows' runs back to back, then the first flow again.
        let mut run: Vec<Vec<u8>> = vec![frames[0].clone(); 12];
        run.extend(vec![frames[1].clone(); 12]);
        run.extend(vec![frames[0].clone(); 8]);
        let mut by_group = grouped.send(s.in_port(), &run).0;
        // Then the two flows taking turns: one megaflow, no two keys alike
        // in a row.
        let turns: Vec<Vec<u8>> = (0..8).map(|i| frames[i % 2].clone()).collect();
        by_group.extend(grouped.send(s.in_port(), &turns).0);
        let mut one_by_one = Vec::new();
        for f in run.iter().chain(&turns) {
            one_by_one.extend(single.send(s.in_port(), std::slice::from_ref(f)).0);
        }
        by_group.sort_by(|a, b| a.0.cmp(&b.0));
        one_by_one.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(by_group.len(), run.len() + 8, "{s:?}: every packet out");
        assert!(by_group == one_by_one, "{s:?}: outputs differ");
        assert_eq!(
            grouped.dp.counters.drops.nonzero(),
            single.dp.counters.drops.nonzero(),
            "{s:?}"
        );
        assert_eq!(connections(&grouped), connections(&single), "{s:?}");
        assert!(
            grouped.dp.cache_counters().hits >= run.len() as u64 - 2,
            "{s:?}: the run is served from the cache"
        );
    }
}

/// The host's connections with their states and packet counts (not their
/// deadlines: the hosts' clocks differ), in a stable order.
fn connections(h: &Host) -> Vec<String> {
    let mut v: Vec<String> =
        h.sw.conntrack
            .dump(None, None)
            .iter()
            .map(|c| {
                format!(
                    "{:?} {:?} {:?} {} {:?}",
                    c.orig, c.reply, c.tcp, c.seen_reply, c.packets
                )
            })
            .collect();
    v.sort();
    v
}

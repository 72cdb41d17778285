//! Any bytes as a frame arriving on any port of compute1 or network1 of the
//! spec's topology (VM ports, the trunk and external NICs, the router
//! instances' ports): the first byte picks the host and port, the rest is
//! the frame. The switches and their state (MAC tables, connections,
//! neighbours) persist across runs under small limits, so sequences are
//! explored too. Never a panic; every received frame is counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeline::datapath::Datapath;
use pipeline::packet::{PacketBuf, PacketPool};
use pipeline::switch::{PortId, Switch};
use std::sync::{Arc, Mutex, OnceLock};

struct Host {
    sw: Arc<Switch>,
    dp: Datapath,
    pool: PacketPool,
    ports: Vec<PortId>,
    now: u64,
}

fn hosts() -> &'static Mutex<Vec<Host>> {
    static H: OnceLock<Mutex<Vec<Host>>> = OnceLock::new();
    H.get_or_init(|| {
        let t = topology::load_toml(include_str!(
            "../../config/topologies/spec-example.toml"
        ))
        .expect("spec topology");
        let hosts = ["compute1", "network1"]
            .iter()
            .map(|h| {
                let mut cfg = topology::build_host(&t, h, 1).expect("host");
                cfg.set_conntrack(pipeline::conntrack::ConnTable::new(
                    pipeline::conntrack::Limits {
                        max_conns: 256,
                        ..Default::default()
                    },
                    Default::default(),
                ));
                let sw = cfg.build().expect("build");
                let ports = sw.ports().map(|p| p.id).collect();
                Host {
                    sw,
                    dp: Datapath::new(0, 128),
                    pool: PacketPool::new(256, 9018),
                    ports,
                    now: 0,
                }
            })
            .collect();
        Mutex::new(hosts)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let mut hs = hosts().lock().unwrap_or_else(|e| e.into_inner());
    let n = hs.len();
    let h = &mut hs[sel as usize % n];
    let port = h.ports[(sel as usize / n) % h.ports.len()];
    let Some(mut b) = h.pool.get() else { return };
    if b.set_data(frame).is_err() {
        h.pool.put(b);
        return;
    }
    h.now += 1_000_000;
    let before = h.dp.counters.rx_packets;
    let mut burst = vec![b];
    let mut out: Vec<PacketBuf> = Vec::new();
    let mut sink = |_: PortId, b: PacketBuf| out.push(b);
    let sw = h.sw.clone();
    let now = h.now;
    h.dp.process_burst(&sw, port, &mut burst, now, &mut h.pool, &mut sink);
    assert_eq!(h.dp.counters.rx_packets, before + 1);
    for b in out {
        h.pool.put(b);
    }
});

//! Per-worker conntrack, end to end: a two-worker daemon replaying the
//! SNAT scenario from a capture its queues split as RSS does creates every
//! connection with a source NAT port whose reply reaches the worker that
//! owns it (none crosses), and forwards every packet.

use devtools::replay::{run_point, Io, Point};

#[test]
fn two_workers_own_their_snat_connections_and_steer_their_replies() {
    let t = devtools::spec::topology().expect("spec topology");
    let dir = Dir(std::env::temp_dir().join(format!("vswitch-owners-{}", std::process::id())));
    let flows = 4_096;
    let p = Point {
        scenario: "snat-egress".into(),
        io: Io::Memory,
        flows,
        size: "64".into(),
        workers: 2,
        extra_ports: 0,
        seconds: 0.2,
        updates: 0,
        setup: false,
    };
    let m = run_point(&t, &p, &dir.0).expect("point runs");
    assert!(m.drops.is_empty(), "drops: {:?}", m.drops);
    assert_eq!(m.connections, flows, "one connection per flow");
    assert_eq!(m.cross_worker, 0, "every reply steered to its owner");
    assert!(m.delivered > 0.999, "delivered {}", m.delivered);
}

/// A directory removed when the test ends, passed or failed.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! How big the table may grow, how long connections live, and the
//! counters that show both.

/// Default connection limit (Linux `nf_conntrack_max` on a 16 GiB host).
pub const DEFAULT_MAX_CONNS: usize = 262_144;
/// Ports tried before a NAT binding gives up (`nat_port_exhausted`).
pub const NAT_MAX_ATTEMPTS: u32 = 128;

/// Per-protocol timeouts in seconds (Linux defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Timeouts {
    pub tcp_syn_sent: u64,
    pub tcp_syn_recv: u64,
    pub tcp_established: u64,
    pub tcp_fin_wait: u64,
    pub tcp_close_wait: u64,
    pub tcp_last_ack: u64,
    pub tcp_time_wait: u64,
    pub tcp_close: u64,
    pub udp: u64,
    pub udp_stream: u64,
    pub icmp: u64,
    /// Any other protocol (GRE, ESP, …: tracked by addresses only).
    pub generic: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            udp: 30,
            udp_stream: 120,
            icmp: 30,
            generic: 600,
        }
    }
}

/// Limits of the table.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_conns: usize,
    /// Per-zone limits (zones not listed: only the global one).
    pub zone_max: std::collections::HashMap<u16, usize>,
    /// What reassembly in front of the table may hold.
    pub defrag: super::defrag::DefragLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: DEFAULT_MAX_CONNS,
            zone_max: std::collections::HashMap::new(),
            defrag: Default::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CtStats {
    pub connections: u64,
    pub created: u64,
    pub expired: u64,
    pub deleted: u64,
    pub invalid: u64,
    pub table_full: u64,
    pub zone_full: u64,
    pub nat_port_exhausted: u64,
    pub nat_attempts: u64,
    /// Connections whose two directions reach different workers' receive
    /// queues (a reply to a NAT port no free choice could steer, a
    /// destination NAT's reply): their reply packets take the owner's
    /// shard lock from another worker.
    pub cross_worker: u64,
    /// Packets that took another worker's shard lock (replies of those).
    pub cross_worker_packets: u64,
    /// Reassembly in front of the table.
    pub defrag: super::defrag::DefragStats,
}

//! Named reasons a packet is dropped, shared by every stage.
//!
//! Each stage reports drops through this one enum so that counters are a
//! plain array indexed by reason and `trace` can name the decision. The
//! enum is the one list: its names (snake_case, for counters, traces and
//! JSON), its count and its iteration are derived from it (strum), so adding
//! a reason is adding a variant.

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    strum::EnumCount,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DropReason {
    // packet: parse
    /// Shorter than an Ethernet header.
    EthTruncated,
    /// VLAN tag (802.1Q or 802.1ad) cut short.
    VlanTruncated,
    /// Frame longer than the configured maximum.
    FrameTooLong,
    /// ARP shorter than the Ethernet/IPv4 ARP layout, or not Ethernet/IPv4.
    ArpMalformed,
    /// IPv4 header cut short or its IHL/total length inconsistent.
    Ipv4Malformed,
    /// IPv6 header cut short.
    Ipv6Malformed,
    /// TCP/UDP/ICMP header cut short.
    L4Truncated,
    // packet: rewrite
    /// A rewrite needed a header the packet does not have.
    RewriteNoHeader,
    /// Pushing a header would exceed the buffer's headroom.
    NoHeadroom,
    // bridge: OpenFlow tables
    /// No flow matched and the table has no miss flow.
    TableMiss,
    /// The matching flow's action list was empty (`actions=drop`).
    FlowDrop,
    /// `dec_ttl` on a packet with TTL 0 or 1.
    TtlExceeded,
    /// Resubmit nesting exceeded the bound.
    ResubmitDepth,
    /// Too many patch-port crossings for one packet.
    PatchLoop,
    /// Output to a port that does not exist (or went away).
    NoSuchPort,
    /// A flow output to the packet's own input port without `IN_PORT`.
    OutputToInPort,
    /// A tagged frame entering through an access port (a VM's port): an
    /// 802.1Q tag with a nonzero VID, an 802.1ad (S-)tag of any VID, or a
    /// priority tag carrying another tag. Dropped before the flow tables,
    /// so a VM can neither address another network's segment or local VLAN
    /// directly nor put tags on the provider's network; what it may send is
    /// untagged or in a priority 802.1Q tag, whose content the anti-spoofing
    /// checks see.
    TaggedOnAccessPort,
    /// A frame that would leave through an access port still carrying a
    /// tag: the inner tag of a double-tagged frame whose outer tag NORMAL
    /// or `strip_vlan` removed (or a flow's output of a tagged frame). Not
    /// sent there: a VM (or a router's port) receives untagged frames only.
    TaggedOutOfAccessPort,
    /// An IPv4 packet from a VM's port with a source address port security
    /// does not allow (another VM's, a floating IP, ...).
    IpSourceSpoofed,
    // bridge: NORMAL
    /// Tagged frame received on an access port.
    NormalTaggedOnAccess,
    /// Frame's VLAN not carried by the input trunk.
    NormalVlanNotAllowed,
    /// Destination learned on the input port.
    NormalLearnedOnInPort,
    /// Reserved multicast (01:80:c2:00:00:0x), not forwarded by NORMAL.
    NormalReservedMulticast,
    /// Flood found no other member port of the VLAN.
    NormalNoPorts,
    // conntrack / nat
    /// Connection table (or zone) at its limit.
    CtTableFull,
    /// No NAT port free after bounded attempts.
    NatPortExhausted,
    /// Conntrack classified the packet invalid and a flow dropped it.
    CtInvalid,
    // conntrack: IPv4 reassembly before tracking
    /// A fragment whose datagram was not complete within the reassembly
    /// timeout (Linux `ipfrag_time`); counted per fragment held.
    FragTimeout,
    /// A fragment overlapping another of its datagram: the whole datagram
    /// is discarded (Linux since 4.19, RFC 5722's rule for IPv6).
    FragOverlap,
    /// A fragment already held (same offset and length).
    FragDuplicate,
    /// A fragment that cannot belong to a valid datagram: a non-final one
    /// whose length is not a multiple of 8, one reaching past 65,535
    /// bytes or past the datagram's end, two different ends.
    FragMalformed,
    /// A datagram in more fragments than the bound: discarded whole.
    FragTooMany,
    /// Reassembly memory (or datagram count) at its limit.
    FragTableFull,
    // router instances
    /// No route to the destination.
    NoRoute,
    /// Neighbour unresolved and its pending queue is full.
    NeighbourQueueFull,
    /// Neighbour resolution failed (no ARP reply to any request).
    NeighbourFailed,
    /// Not addressed to the router and not forwardable.
    NotForUs,
    /// An IPv4 header whose checksum does not sum (a router's `ip_rcv`
    /// drops it before routing; bridges do not look).
    Ipv4BadChecksum,
    /// A source no router accepts (Linux's martian source: multicast,
    /// broadcast, 0.0.0.0/8, loopback).
    MartianSource,
    /// A destination no router forwards to (Linux's martian destination:
    /// 0.0.0.0/8, loopback).
    MartianDestination,
    /// A multicast destination: a router without multicast routing does
    /// not forward it.
    MulticastNotForwarded,
    // datapath
    /// Packet buffer pool empty when a copy was needed.
    PoolExhausted,
    /// Output queue to a port full.
    TxQueueFull,
    /// Output to a port of the switch that has no I/O bound (daemon), or
    /// input from an I/O binding whose port left the switch.
    PortNotBound,
    /// Output to a port whose device is gone (deleted while bound); the
    /// daemon binds it again when a device of that name comes back.
    DeviceMissing,
}

impl DropReason {
    /// How many reasons there are (the size of a counter array).
    pub const COUNT: usize = <DropReason as strum::EnumCount>::COUNT;

    /// Every reason, in index order.
    pub fn all() -> impl Iterator<Item = DropReason> {
        <DropReason as strum::IntoEnumIterator>::iter()
    }

    /// Index into a per-reason counter array.
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The reason's name, as counters and traces show it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Per-reason drop counters owned by one worker.
#[derive(Clone, Debug)]
pub struct DropCounters {
    pub counts: [u64; DropReason::COUNT],
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters {
            counts: [0; DropReason::COUNT],
        }
    }
}

impl DropCounters {
    #[inline(always)]
    pub fn count(&mut self, r: DropReason) {
        self.counts[r.index()] += 1;
    }

    /// Counts `n` drops for reason `r`.
    pub fn count_n(&mut self, r: DropReason, n: u64) {
        self.counts[r.index()] += n;
    }

    pub fn get(&self, r: DropReason) -> u64 {
        self.counts[r.index()]
    }
    /// Non-zero counters by name.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        self.iter_nonzero().collect()
    }

    /// Non-zero counters by name, in reason order, without allocating.
    pub fn iter_nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::all()
            .zip(self.counts.iter())
            .filter(|(_, &n)| n != 0)
            .map(|(r, &n)| (r.as_str(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_index_order_with_distinct_names() {
        for (i, r) in DropReason::all().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let mut names: Vec<_> = DropReason::all().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), <DropReason as strum::EnumCount>::COUNT);
    }

    #[test]
    fn names_are_the_serialized_snake_case_names() {
        for r in DropReason::all() {
            let json = serde_json::to_string(&r).expect("serializes");
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(
            DropReason::TaggedOnAccessPort.as_str(),
            "tagged_on_access_port"
        );
        assert_eq!(DropReason::PortNotBound.as_str(), "port_not_bound");
    }
}

//! Where the headers of a parsed frame start, and which they are.

/// The network-layer header a frame carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L3 {
    #[default]
    None,
    Arp,
    Ipv4,
    Ipv6,
}

/// The transport header a frame carries (only on first fragments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L4 {
    #[default]
    None,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

/// Where the headers of a parsed frame start (offsets from the frame start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub vlan: bool,
    pub l3: L3,
    pub l3_ofs: u16,
    pub l4: L4,
    pub l4_ofs: u16,
}

impl Layout {
    /// Shifts the L3/L4 offsets after a header of `by` bytes was pushed (+)
    /// or popped (-) in front of them.
    pub(super) fn shift(&mut self, by: i16) {
        self.l3_ofs = self.l3_ofs.wrapping_add_signed(by);
        self.l4_ofs = self.l4_ofs.wrapping_add_signed(by);
    }
}

//! Wire formats: one file per protocol, each a typed view over a byte
//! buffer and, where the pipeline builds that header, a plain struct that
//! writes it.
//!
//! Design: a view (`Ipv4Packet<T: AsRef<[u8]>>`) checks its buffer's
//! length once, in `new_checked`, which returns `None` when the fixed
//! header does not fit. After that every getter reads, and every setter
//! (when `T` is also `AsMut<[u8]>`) writes, a named field range
//! (`ipv4::field::TTL`) through the big-endian readers and writers in
//! `bytes`, which never panic. Getters read from the header as an array of
//! its fixed length (`bytes::fixed`), so with the offsets constant each
//! access compiles to a plain load, and neighbouring loads combine, as if
//! the bytes had been indexed by hand. Setters named `update_*` also patch
//! the checksum incrementally (RFC 1624, `checksum`), which is how rewrites
//! change headers without reading payloads. A `*Repr` (`Ipv4Repr`,
//! `ArpRepr`, ...) holds a header as values and `emit`s it into a view.
//!
//! Protocol numbers live with the protocol that defines them:
//! `ethernet::ethertype` and `ip::ipproto` (both re-exported here),
//! `icmp::types`/`codes`, `arp::op`; each header's length is its file's
//! `HEADER_LEN`. Nothing here knows about flow keys or packet buffers
//! (`mac::Mac`, the Ethernet address, is the flow key's too).

pub mod arp;
pub(crate) mod bytes;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod mac;
pub mod tcp;
pub mod udp;
pub mod vlan;

pub use arp::{ArpPacket, ArpRepr};
pub use ethernet::{ethertype, EthernetFrame, EthernetRepr};
pub use icmp::{IcmpPacket, IcmpRepr};
pub use ip::{ipproto, L4Ports};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use tcp::{TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::VlanTag;

//! What a bridge is to OpenFlow: its datapath id and the controllers
//! it connects to (the database says; a bridge it does not name gets an
//! id from its name and no controller).

/// What the database says of a bridge's OpenFlow side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeControl {
    pub datapath_id: u64,
    /// Controller targets (`tcp:HOST:PORT`, `unix:PATH`).
    pub controllers: Vec<String>,
    /// The OpenFlow versions `Bridge.protocols` allows, as a HELLO
    /// bitmap (bit 1 = 1.0 … bit 6 = 1.5; empty protocols allow all, as
    /// in OVS). Without 1.3 the switch offers what is allowed and every
    /// negotiation fails (it speaks 1.3 only).
    pub versions: u32,
}

/// Every version OVS 3.1 speaks (1.0 to 1.5), the default.
pub const ALL_VERSIONS: u32 = 0b111_1110;

/// `Bridge.protocols` as a HELLO version bitmap; unknown names ignored.
pub fn versions_of(protocols: &[String]) -> u32 {
    if protocols.is_empty() {
        return ALL_VERSIONS;
    }
    protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "OpenFlow10" => Some(1 << 1),
            "OpenFlow11" => Some(1 << 2),
            "OpenFlow12" => Some(1 << 3),
            "OpenFlow13" => Some(1 << 4),
            "OpenFlow14" => Some(1 << 5),
            "OpenFlow15" => Some(1 << 6),
            _ => None,
        })
        .fold(0, |a, b| a | b)
}

impl BridgeControl {
    /// Whether OpenFlow 1.3 is allowed on the bridge.
    pub fn openflow13(&self) -> bool {
        self.versions & (1 << 4) != 0
    }
}

/// The datapath id of a bridge: `other_config:datapath-id` when set,
/// else one derived from its name (stable across restarts, a locally
/// administered MAC in the low 48 bits as OVS's are).
pub fn datapath_id(name: &str, request: Option<u64>) -> u64 {
    request.unwrap_or_else(|| pipeline::key::Mac::stable_local(name.as_bytes()).to_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datapath_ids_are_the_request_or_stable_local_macs() {
        assert_eq!(datapath_id("br-int", Some(0xabc)), 0xabc);
        let a = datapath_id("br-int", None);
        assert_eq!(a, datapath_id("br-int", None));
        assert_ne!(a, datapath_id("br-ex", None));
        assert_eq!(a >> 48, 0, "48 bits");
        assert_eq!((a >> 40) & 0x03, 0x02, "locally administered, unicast");
    }
}

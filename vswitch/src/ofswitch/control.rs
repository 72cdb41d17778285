//! What a bridge is to OpenFlow: its datapath id and the controllers
//! it connects to (the database says; a bridge it does not name gets an
//! id from its name and no controller).

/// What the database says of a bridge's OpenFlow side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeControl {
    pub datapath_id: u64,
    /// Controller targets (`tcp:HOST:PORT`, `unix:PATH`).
    pub controllers: Vec<String>,
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

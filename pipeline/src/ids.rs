//! Identities shared across the dataplane's modules: a switch port, a router
//! interface. They live apart from the structures that hold ports and
//! routers so that every module can name them without depending on those.

/// A port's index in the switch (unique across bridges, stable while the
/// port exists). Distinct from its bridge-local OpenFlow port number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PortId(pub u32);

/// Where a router instance's interface sits: instance index in the
/// snapshot's `routers`, interface index in that instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouterIfaceRef {
    pub instance: usize,
    pub iface: usize,
}

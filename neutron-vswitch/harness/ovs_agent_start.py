#!/usr/bin/python3
"""Neutron's OVS agent starts on a DVR compute node and binds a VM port.

The whole OVSNeutronAgent of neutron-openvswitch-agent (native OpenFlow
mode, Debian python3-neutron: Zed) is constructed as on the spec's
compute1 (physnet1 on br-vlan, VLAN tenant networks, distributed routing
on, no tunnels), with its RPC to neutron-server replaced by mocks that
answer what the server would (this host's DVR MAC and the other hosts'),
as Neutron's functional tests do (neutron/tests/functional/agent/l2/
base.py). Constructing it is what the agent does at start: the
integration bridge set up (secure mode, controller, default tables,
canary), the physical bridge created and patched to it (the patch ports
deleted and made again, drop flows on both ends), and the DVR flows of
both bridges. Then a VM port is plugged as nova's os-vif plugs it (a
port on br-int whose interface's external_ids name the Neutron port) and
the agent processes it as its rpc_loop does (process_network_ports, with
the port's details as the server gives them: VLAN 101 on physnet1, one
fixed IP, port security on): local VLAN, the port's tag, ARP and MAC
spoofing protection, IPv6 neighbour-advertisement protection. Nothing
here speaks OVSDB or OpenFlow itself.

On success it prints `agent-start: ok` and the flows os-ken dumped back;
any failure is a traceback and exit status 1.

    /usr/bin/python3 ovs_agent_start.py --ovsdb unix:/path/db.sock --of-port 6633 \
        [--vm tap1=fa:16:3e:01:00:11,10.1.0.11 ...]
"""

import sys

import agent_host  # first: it patches eventlet

from unittest import mock  # noqa: E402

from oslo_config import cfg  # noqa: E402

from neutron.agent.l2 import l2_agent_extensions_manager as ext_manager  # noqa: E402
from neutron.plugins.ml2.drivers.openvswitch.agent import (  # noqa: E402
    ovs_neutron_agent as ovs_agent)

DVR_MAC = "fa:16:3f:00:00:c1"
OTHER_DVR_MAC = "fa:16:3f:00:00:c2"
# (name, MAC, IP, a system device?) of the VM ports to bind; --vm sets
# them (system devices the caller made), else one internal port.
VMS = [("qvo-vm1", "fa:16:3e:01:00:11", "10.1.0.11", False)]
NET_ID = "5e0a6a3e-0000-4000-8000-0000000000a1"
SUBNET_ID = "9c0b7b4f-0000-4000-8000-0000000000a2"


def fake_setup_rpc(agent):
    """What OVSNeutronAgent.setup_rpc sets, answering as neutron-server."""
    agent.plugin_rpc = mock.Mock()
    agent.sg_plugin_rpc = mock.Mock()
    agent.state_rpc = mock.Mock()
    agent.context = mock.Mock()
    agent.connection = mock.Mock()
    dvr = mock.Mock()
    dvr.get_dvr_mac_address_by_host.return_value = {
        "host": agent.conf.host, "mac_address": DVR_MAC}
    dvr.get_dvr_mac_address_list.return_value = [
        {"host": agent.conf.host, "mac_address": DVR_MAC},
        {"host": "compute2", "mac_address": OTHER_DVR_MAC},
    ]
    agent.dvr_plugin_rpc = dvr


def start(bridge_classes):
    conf = cfg.CONF
    # The physical bridge exists before the agent starts (the operator's).
    bridge_classes["br_phys"]("br-vlan",
                              datapath_type=conf.OVS.datapath_type).create()
    ext_mgr = ext_manager.L2AgentExtensionsManager(conf)
    with mock.patch.object(ovs_agent.OVSNeutronAgent, "setup_rpc",
                           fake_setup_rpc):
        agent = ovs_agent.OVSNeutronAgent(bridge_classes, ext_mgr, conf)
    agent.sg_agent = mock.Mock()
    for i, (name, mac, ip, system) in enumerate(VMS):
        port_id = "8b3c1d2e-0000-4000-8000-%012x" % (0xb1 + i)
        bind_vm_port(agent, name, mac, ip, port_id, system)
    tag = agent.int_br.db_get_val("Port", VMS[0][0], "tag")
    ofports = {"int-br-vlan": agent.int_ofports["physnet1"],
               "phy-br-vlan": agent.phys_ofports["physnet1"]}
    return "agent-start: ok br-int=%d br-vlan=%d ofports=%s %s tag=%s" % (
        len(agent.int_br.dump_flows()),
        len(agent.phys_brs["physnet1"].dump_flows()), ofports, VMS[0][0], tag)


def bind_vm_port(agent, name, mac, ip, port_id, system):
    """A VM port plugged and processed as one rpc_loop iteration does."""
    attrs = [("external_ids", {"iface-id": port_id, "iface-status": "active",
                               "attached-mac": mac, "vm-uuid": name})]
    if not system:
        attrs.insert(0, ("type", "internal"))
    agent.int_br.add_port(name, *attrs)
    details = {
        "device": port_id, "port_id": port_id, "network_id": NET_ID,
        "network_type": "vlan", "physical_network": "physnet1",
        "segmentation_id": 101, "admin_state_up": True,
        "fixed_ips": [{"subnet_id": SUBNET_ID, "ip_address": ip}],
        "device_owner": "compute:nova", "mac_address": mac,
        "port_security_enabled": True, "allowed_address_pairs": [],
    }
    rpc = agent.plugin_rpc
    rpc.get_devices_details_list_and_failed_devices.return_value = {
        "devices": [details], "failed_devices": []}
    rpc.update_device_list.return_value = {
        "devices_up": [port_id], "failed_devices_up": [],
        "devices_down": [], "failed_devices_down": []}
    port_info = {"current": {port_id}, "added": {port_id},
                 "removed": set(), "updated": set(), "re_added": set()}
    failed = agent.process_network_ports(port_info, True)
    if failed["added"] or failed["removed"]:
        raise RuntimeError("the agent failed devices: %s" % failed)


def main():
    p = agent_host.parser(__doc__)
    p.add_argument("--vm", action="append", default=[],
                   metavar="DEVICE=MAC,IP",
                   help="bind this existing network device as a VM port "
                        "(repeatable; default: one internal port qvo-vm1)")
    args = p.parse_args()
    if args.vm:
        VMS.clear()
        for v in args.vm:
            name, rest = v.split("=", 1)
            mac, ip = rest.split(",", 1)
            VMS.append((name, mac, ip, True))
    agent_host.configure(args, {
        (None, "host"): "compute1",
        ("OVS", "bridge_mappings"): ["physnet1:br-vlan"],
        ("AGENT", "enable_distributed_routing"): True,
        ("AGENT", "tunnel_types"): [],
    })
    return agent_host.run(start)


if __name__ == "__main__":
    sys.exit(main())

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

import argparse
import sys
import traceback

import eventlet

eventlet.monkey_patch()

from unittest import mock  # noqa: E402

from oslo_config import cfg  # noqa: E402

from neutron.conf import common as common_config  # noqa: E402
from neutron.conf.agent import common as agent_config  # noqa: E402
from neutron.conf.agent import ovs_conf as ovs_agent_config  # noqa: E402
from neutron.conf.plugins.ml2.drivers import agent as l2_agent_config  # noqa: E402
from neutron.conf.plugins.ml2.drivers import ovs_conf  # noqa: E402
from neutron.plugins.ml2.drivers.openvswitch.agent import (  # noqa: E402
    ovs_neutron_agent as ovs_agent)
from neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native import (  # noqa: E402
    main as of_main)
from neutron.agent.l2 import l2_agent_extensions_manager as ext_manager  # noqa: E402

DVR_MAC = "fa:16:3f:00:00:c1"
OTHER_DVR_MAC = "fa:16:3f:00:00:c2"
# (name, MAC, IP, a system device?) of the VM ports to bind; --vm sets
# them (system devices the caller made), else one internal port.
VMS = [("qvo-vm1", "fa:16:3e:01:00:11", "10.1.0.11", False)]
NET_ID = "5e0a6a3e-0000-4000-8000-0000000000a1"
SUBNET_ID = "9c0b7b4f-0000-4000-8000-0000000000a2"

RESULT = {}


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
    RESULT["tag"] = agent.int_br.db_get_val("Port", VMS[0][0], "tag")
    RESULT["br-int"] = len(agent.int_br.dump_flows())
    RESULT["br-vlan"] = len(agent.phys_brs["physnet1"].dump_flows())
    RESULT["ofports"] = {"int-br-vlan": agent.int_ofports["physnet1"],
                         "phy-br-vlan": agent.phys_ofports["physnet1"]}


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


def agent_main(bridge_classes):
    try:
        start(bridge_classes)
    except Exception:
        RESULT["error"] = traceback.format_exc()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ovsdb", required=True, help="unix:PATH or tcp:IP:PORT")
    p.add_argument("--of-port", type=int, required=True,
                   help="the port the agent's OpenFlow controller listens on")
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
    # The options the agent's process registers (as the functional tests'
    # _get_config_opts).
    cfg.CONF.register_opts(common_config.core_opts)
    l2_agent_config.register_agent_opts(cfg.CONF)
    ovs_conf.register_ovs_agent_opts(cfg.CONF)
    agent_config.register_interface_opts(cfg.CONF)
    agent_config.register_interface_driver_opts_helper(cfg.CONF)
    agent_config.register_agent_state_opts_helper(cfg.CONF)
    ovs_agent_config.register_ovs_agent_opts(cfg.CONF)
    ext_manager.register_opts(cfg.CONF)
    cfg.CONF([], project="neutron")
    cfg.CONF.set_override("host", "compute1")
    cfg.CONF.set_override("ovsdb_connection", args.ovsdb, group="OVS")
    cfg.CONF.set_override("of_listen_address", "127.0.0.1", group="OVS")
    cfg.CONF.set_override("of_listen_port", args.of_port, group="OVS")
    cfg.CONF.set_override("datapath_type", "netdev", group="OVS")
    cfg.CONF.set_override("of_connect_timeout", 20, group="OVS")
    cfg.CONF.set_override("bridge_mappings", ["physnet1:br-vlan"],
                          group="OVS")
    cfg.CONF.set_override("enable_distributed_routing", True, group="AGENT")
    cfg.CONF.set_override("tunnel_types", [], group="AGENT")
    of_main.init_config()
    with mock.patch.object(ovs_agent, "main", agent_main):
        of_main.main()
    if "error" in RESULT:
        print(RESULT["error"], file=sys.stderr)
        return 1
    print("agent-start: ok br-int=%d br-vlan=%d ofports=%s %s tag=%s" % (
        RESULT["br-int"], RESULT["br-vlan"], RESULT["ofports"], VMS[0][0],
        RESULT["tag"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

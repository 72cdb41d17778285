#!/usr/bin/python3
"""Neutron's own OVS agent code programs a switch, as on a DVR compute node.

Runs the real bridge classes of neutron-openvswitch-agent's native
OpenFlow mode (Debian python3-neutron: Zed) under the agent's os-ken
OpenFlow controller, the way Neutron's functional tests do
(neutron/tests/functional/agent/l2/base.py: OVSOFControllerHelper), against
the switch behind an OVSDB server: ovs-vswitchd, or vswitchd. Bridges and
ports are created through OVSDB (ovsdbapp), flows are sent over OpenFlow
1.3 by os-ken; nothing here speaks either protocol itself.

The host is the spec's compute1 (physnet1 on br-vlan, network net1 on VLAN
101 as local VLAN 1, the router's qr- port and a VM port, DVR MACs), and
the agent's calls are those ovs_dvr_neutron_agent makes for it. On
success it prints `agent-flows: ok` and the flow count os-ken dumped back
from each bridge; any failure is a traceback and exit status 1.

    /usr/bin/python3 ovs_agent_dvr.py --ovsdb unix:/path/db.sock --of-port 6633
"""

import sys

import agent_host  # first: it patches eventlet

from oslo_config import cfg  # noqa: E402

# The spec's compute1 (Appendix A).
DVR_MAC = "fa:16:3f:00:00:c1"
OTHER_DVR_MAC = "fa:16:3f:00:00:c2"
QR_MAC = "fa:16:3e:aa:01:01"
GATEWAY_IP = "10.1.0.1"
VM_MAC = "fa:16:3e:01:00:11"
VM_IP = "10.1.0.11"
SEGMENT = 101
LVID = 1


def program(bridge_classes):
    """What the agent does for compute1, through its own classes."""
    dp = cfg.CONF.OVS.datapath_type
    br_int = bridge_classes["br_int"]("br-int", datapath_type=dp)
    br_vlan = bridge_classes["br_phys"]("br-vlan", datapath_type=dp)
    for br in (br_int, br_vlan):
        br.create()
        br.set_secure_mode()
        br.setup_controllers(cfg.CONF)
        br.setup_default_table()
    int_patch = br_int.add_patch_port("int-br-vlan", "phy-br-vlan")
    phy_patch = br_vlan.add_patch_port("phy-br-vlan", "int-br-vlan")
    qr = br_int.add_port("qr-net1", ("type", "internal"))
    vm = br_int.add_port("qvo-vm1", ("type", "internal"))
    br_int.set_db_attribute("Port", "qr-net1", "tag", LVID)
    br_int.set_db_attribute("Port", "qvo-vm1", "tag", LVID)

    # Local VLAN for net1 (ovs_neutron_agent.provision_local_vlan).
    br_int.provision_local_vlan(port=int_patch, lvid=LVID,
                                segmentation_id=SEGMENT)
    br_vlan.provision_local_vlan(port=phy_patch, lvid=LVID,
                                 segmentation_id=SEGMENT, distributed=True)
    # DVR on VLAN (ovs_dvr_neutron_agent: setup_dvr_flows_on_integ_br,
    # setup_dvr_flows_on_phys_br, _bind_distributed_router_interface_port,
    # _bind_port_on_dvr_subnet).
    br_int.add_dvr_mac_physical(mac=OTHER_DVR_MAC, port=int_patch)
    br_vlan.add_dvr_mac_physical(mac=OTHER_DVR_MAC, port=phy_patch)
    br_vlan.install_dvr_process_ipv4(vlan_tag=LVID, gateway_ip=GATEWAY_IP)
    br_vlan.install_dvr_process(vlan_tag=LVID, vif_mac=QR_MAC,
                                dvr_mac_address=DVR_MAC)
    br_int.install_dvr_to_src_mac(network_type="vlan", vlan_tag=LVID,
                                  gateway_mac=QR_MAC, dst_mac=VM_MAC,
                                  dst_port=vm)
    br_int.install_dvr_dst_mac_for_arp(network_type="vlan", vlan_tag=LVID,
                                       gateway_mac=QR_MAC, dvr_mac=DVR_MAC,
                                       rtr_port=qr)
    # Port security of the VM port (ovs_neutron_agent.setup_arp_spoofing_
    # protection).
    br_int.install_arp_spoofing_protection(port=vm, ip_addresses=[VM_IP])
    br_int.set_allowed_macs_for_port(port=vm, mac_addresses=[VM_MAC])

    ports = {"int-br-vlan": int_patch, "phy-br-vlan": phy_patch,
             "qr-net1": qr, "qvo-vm1": vm}
    return "agent-flows: ok br-int=%d br-vlan=%d ports=%s" % (
        len(br_int.dump_flows()), len(br_vlan.dump_flows()), ports)


def main():
    args = agent_host.parser(__doc__).parse_args()
    agent_host.configure(args)
    return agent_host.run(program)


if __name__ == "__main__":
    sys.exit(main())

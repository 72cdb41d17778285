#!/usr/bin/python3
"""Neutron's OVS agent programs one host of a topology document.

The whole OVSNeutronAgent (native OpenFlow mode, distributed routing on,
VLAN and flat networks, no tunnels) is constructed for the document's
host: its bridge_mappings, with neutron-server's answers (server_model:
port details, this host's and every host's DVR MAC, each subnet's DVR
gateway MAC and the host's ports on it) in place of its RPC. Constructing
it sets up br-int and the physical bridges (patched, DVR flows); then
every port on br-int that names a Neutron port (the VM ports nova's
os-vif plugged, the router ports the L3 agent's extension plugged) is
processed as one rpc_loop iteration processes new ports: local VLANs,
tags, port security, DVR flows for qr-/sg- ports.

The operator's part comes first (br-int and the physical bridges with
their NICs, datapath_type netdev), and the L3 agent's (l3_agent.py) too
when routers are wanted. Prints a JSON summary (ports bound, flows per
bridge); exits 1 with a traceback on failure.

    /usr/bin/python3 neutron_host.py --ovsdb unix:... --of-port 6633 \
        --topology T.toml --host compute1
"""

import json
import sys

import agent_host  # first: it patches eventlet

from unittest import mock  # noqa: E402

from oslo_config import cfg  # noqa: E402

from neutron.agent.l2 import l2_agent_extensions_manager as ext_manager  # noqa: E402
from neutron.plugins.ml2.drivers.openvswitch.agent import (  # noqa: E402
    ovs_neutron_agent as ovs_agent)

import server_model  # noqa: E402

ARGS = None
MODEL = None


def fake_setup_rpc(agent):
    """What OVSNeutronAgent.setup_rpc sets, answering as neutron-server."""
    host = agent.conf.host
    agent.plugin_rpc = mock.Mock()
    agent.sg_plugin_rpc = mock.Mock()
    agent.state_rpc = mock.Mock()
    agent.context = mock.Mock()
    agent.connection = mock.Mock()
    rpc = agent.plugin_rpc

    def details(context, devices, agent_id, *args, **kwargs):
        found = [MODEL.device_details(d, host) for d in devices]
        return {'devices': [d for d in found if d],
                'failed_devices': [d for d, f in zip(devices, found)
                                   if not f]}

    def device_list(context, up, down, agent_id, *args, **kwargs):
        return {'devices_up': list(up), 'failed_devices_up': [],
                'devices_down': list(down), 'failed_devices_down': []}

    rpc.get_devices_details_list_and_failed_devices.side_effect = details
    rpc.update_device_list.side_effect = device_list
    dvr = mock.Mock()
    macs = MODEL.dvr_macs()
    dvr.get_dvr_mac_address_by_host.return_value = next(
        m for m in macs if m['host'] == host)
    dvr.get_dvr_mac_address_list.return_value = macs
    dvr.get_subnet_for_dvr.side_effect = (
        lambda ctx, subnet, fixed_ips=None: MODEL.subnet_for_dvr(subnet))
    dvr.get_ports_on_host_by_subnet.side_effect = (
        lambda ctx, h, subnet: MODEL.ports_on_host_by_subnet(h, subnet))
    agent.dvr_plugin_rpc = dvr


def program(bridge_classes):
    conf = cfg.CONF
    ext_mgr = ext_manager.L2AgentExtensionsManager(conf)
    with mock.patch.object(ovs_agent.OVSNeutronAgent, 'setup_rpc',
                           fake_setup_rpc):
        agent = ovs_agent.OVSNeutronAgent(bridge_classes, ext_mgr, conf)
    agent.sg_agent = mock.Mock()
    ids = set(agent.int_br.get_vif_port_set())
    port_info = {'current': ids, 'added': set(ids), 'removed': set(),
                 'updated': set(), 're_added': set()}
    failed = agent.process_network_ports(port_info, True)
    if failed['added'] or failed['removed']:
        raise RuntimeError('the agent failed devices: %s' % failed)
    flows = {'br-int': len(agent.int_br.dump_flows())}
    for physnet, br in agent.phys_brs.items():
        flows[br.br_name] = len(br.dump_flows())
    summary = json.dumps({'host': conf.host, 'bound': sorted(ids),
                          'flows': flows})
    if ARGS.stay:
        # Then as the agent's process goes on: its rpc_loop, until SIGTERM.
        print(summary, flush=True)
        agent.daemon_loop()
        return 'stopped'
    return summary


def main():
    global ARGS, MODEL
    p = agent_host.parser(__doc__)
    p.add_argument('--topology', required=True)
    p.add_argument('--host', required=True)
    p.add_argument('--stay', action='store_true',
                   help='print the summary, then run the agent\'s rpc_loop '
                        '(ports plugged later are bound) until SIGTERM')
    ARGS = p.parse_args()
    MODEL = server_model.Model(ARGS.topology)
    h = MODEL.host(ARGS.host)
    agent_host.configure(ARGS, {
        (None, 'host'): ARGS.host,
        ('OVS', 'bridge_mappings'): h['bridge_mappings'],
        ('AGENT', 'enable_distributed_routing'): True,
        ('AGENT', 'tunnel_types'): [],
    })
    return agent_host.run(program)


if __name__ == '__main__':
    sys.exit(main())

"""Neutron's L3 agent, with neutron-vswitch's extension, configuring one
host's vswitchd.

The real agent class (L3NATAgentWithStateReport) is built as its process
builds it, with the extension loaded by its entry point (`[agent]
extensions = vswitch`); only its RPC to neutron-server is replaced by the
answers server_model gives for a topology document. Each router the
server would schedule on the host goes through the agent's own
_process_router_if_compatible (added, or updated when seen again); with
--delete they are then removed as on router_removed_from_agent. Prints a
JSON summary: the routers processed and vswitchd's router-list.

    /usr/bin/python3 l3_agent.py --topology T.toml --host network1 \
        --agent-mode dvr_snat --ovsdb unix:... --control-socket ... \
        --state-path DIR
"""

import argparse
import json
import os
import sys
import traceback

import eventlet

eventlet.monkey_patch()

from unittest import mock  # noqa: E402

from oslo_config import cfg  # noqa: E402

from neutron.agent import l3_agent as l3_main  # noqa: E402
# Registers [OVS] ovsdb_connection, as the interface driver's import does.
from neutron.agent.ovsdb.native import connection  # noqa: E402,F401
from neutron.agent.l3 import agent as l3_agent  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The package and its entry point (neutron_vswitch.egg-info), as an
# installed neutron-vswitch provides them.
sys.path.insert(0, os.path.dirname(HERE))

import server_model  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--topology', required=True)
    p.add_argument('--host', required=True)
    p.add_argument('--agent-mode', required=True,
                   choices=['dvr', 'dvr_snat'])
    p.add_argument('--ovsdb', required=True)
    p.add_argument('--control-socket', required=True)
    p.add_argument('--state-path', required=True)
    p.add_argument('--delete', action='store_true',
                   help='then remove every router from the agent')
    p.add_argument('--no-vswitchd', action='store_true',
                   help='only the OVSDB side: plug the router ports, hand '
                        'nothing over (against Open vSwitch, to record what '
                        'the OVS agent then programs)')
    args = p.parse_args()

    l3_main.register_opts(cfg.CONF)
    cfg.CONF([], project='neutron')
    settings = {
        (None, 'host'): args.host,
        (None, 'agent_mode'): args.agent_mode,
        (None, 'state_path'): args.state_path,
        (None, 'interface_driver'): 'openvswitch',
        (None, 'enable_metadata_proxy'): False,
        ('agent', 'extensions'): ['vswitch'],
        ('OVS', 'ovsdb_connection'): args.ovsdb,
        ('OVS', 'integration_bridge'): 'br-int',
    }
    for (group, name), value in settings.items():
        cfg.CONF.set_override(name, value, group=group)
    # The extension's options, as its initialize() registers them, set
    # before the routers read them.
    from neutron_vswitch import extension
    extension.register_opts(cfg.CONF)
    cfg.CONF.set_override('control_socket', args.control_socket, 'vswitch')

    model = server_model.Model(args.topology)
    from neutron_vswitch import control
    if args.no_vswitchd:
        control.Control.request = lambda self, cmd, **kw: []
    with mock.patch('neutron.agent.l3.agent.L3PluginApi') as api, \
            mock.patch('neutron.agent.rpc.PluginReportStateAPI'), \
            mock.patch('neutron.agent.rpc.create_consumers'):
        rpc = api.return_value
        rpc.get_ports_by_subnet.side_effect = (
            lambda ctx, subnet_id: model.ports_by_subnet(subnet_id))
        rpc.get_agent_gateway_port.side_effect = (
            lambda ctx, network_id: model.agent_gateway_port(
                args.host, network_id))
        rpc.get_service_plugin_list.return_value = []
        agent = l3_agent.L3NATAgentWithStateReport(args.host, cfg.CONF)
        routers = model.routers_on(args.host)
        for r in routers:
            agent._process_router_if_compatible(r)
        classes = sorted(set(type(ri).__name__
                             for ri in agent.router_info.values()))
        if args.delete:
            for r in routers:
                agent._safe_router_removed(r['id'])
        listed = control.Control(args.control_socket).router_list()
    return {'routers': [r['id'] for r in routers], 'classes': classes,
            'vswitchd': listed}


if __name__ == '__main__':
    try:
        print(json.dumps(main()))
    except Exception:
        traceback.print_exc()
        sys.exit(1)

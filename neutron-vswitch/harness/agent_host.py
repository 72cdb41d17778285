"""Running Neutron's OVS agent code against a switch, for the harness.

What both harness scripts share: eventlet patched first (as the agent's
process does), the agent's options registered as its process registers
them (Neutron's functional tests' _get_config_opts), the switch's OVSDB
and the agent's OpenFlow controller port set, and the os-ken controller
run with the agent's main loop replaced by the script's `program`, the way
neutron/tests/functional/agent/l2/base.py (OVSOFControllerHelper) does.
Imported before anything of Neutron.
"""

import argparse
import sys
import traceback

import eventlet

eventlet.monkey_patch()

from unittest import mock  # noqa: E402

from oslo_config import cfg  # noqa: E402

from neutron.agent.l2 import l2_agent_extensions_manager as ext_manager  # noqa: E402
from neutron.conf import common as common_config  # noqa: E402
from neutron.conf.agent import common as agent_config  # noqa: E402
from neutron.conf.agent import ovs_conf as ovs_agent_config  # noqa: E402
from neutron.conf.plugins.ml2.drivers import agent as l2_agent_config  # noqa: E402
from neutron.conf.plugins.ml2.drivers import ovs_conf  # noqa: E402
from neutron.plugins.ml2.drivers.openvswitch.agent import (  # noqa: E402
    ovs_neutron_agent as ovs_agent)
from neutron.plugins.ml2.drivers.openvswitch.agent.openflow.native import (  # noqa: E402
    main as of_main)


def parser(doc):
    """The options every harness script takes: where the switch's OVSDB
    is and which port the agent's controller listens on."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--ovsdb", required=True, help="unix:PATH or tcp:IP:PORT")
    p.add_argument("--of-port", type=int, required=True,
                   help="the port the agent's OpenFlow controller listens on")
    return p


def configure(args, overrides=None):
    """Registers the agent's options and sets the switch's place;
    `overrides`: {(group, name): value}, group None for DEFAULT."""
    cfg.CONF.register_opts(common_config.core_opts)
    l2_agent_config.register_agent_opts(cfg.CONF)
    ovs_conf.register_ovs_agent_opts(cfg.CONF)
    agent_config.register_interface_opts(cfg.CONF)
    agent_config.register_interface_driver_opts_helper(cfg.CONF)
    agent_config.register_agent_state_opts_helper(cfg.CONF)
    ovs_agent_config.register_ovs_agent_opts(cfg.CONF)
    ext_manager.register_opts(cfg.CONF)
    cfg.CONF([], project="neutron")
    settings = {
        ("OVS", "ovsdb_connection"): args.ovsdb,
        ("OVS", "of_listen_address"): "127.0.0.1",
        ("OVS", "of_listen_port"): args.of_port,
        ("OVS", "datapath_type"): "netdev",
        ("OVS", "of_connect_timeout"): 20,
    }
    settings.update(overrides or {})
    for (group, name), value in settings.items():
        cfg.CONF.set_override(name, value, group=group)
    of_main.init_config()


def run(program):
    """Runs the agent's os-ken controller with `program(bridge_classes)`
    as the agent; prints the summary it returns, or its traceback.
    Returns the process's exit status."""
    result = {}

    def agent_main(bridge_classes):
        try:
            result["summary"] = program(bridge_classes)
        except Exception:
            result["error"] = traceback.format_exc()

    with mock.patch.object(ovs_agent, "main", agent_main):
        of_main.main()
    if "error" in result:
        print(result["error"], file=sys.stderr)
        return 1
    print(result["summary"])
    return 0

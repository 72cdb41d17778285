"""The L3 agent extension: `[agent] extensions = vswitch` in
l3_agent.ini (entry point `neutron.agent.l3.extensions`: vswitch).

It registers `router.VswitchDvrRouter` for distributed routers, HA or not,
in place of DvrLocalRouter/DvrEdgeRouter/DvrEdgeHaRouter (the L3 agent's
router factory keeps the last class registered for a set of features;
extensions register after the agent's own). Legacy (centralized) routers
keep the agent's classes.
"""

from neutron_lib.agent import l3_extension
from oslo_config import cfg

from neutron_vswitch import router

OPTS = [
    cfg.StrOpt('control_socket', default='/run/vswitch/vswitchd.sock',
               help='vswitchd\'s control socket.'),
]


def register_opts(conf):
    conf.register_opts(OPTS, group='vswitch')


class VswitchL3Extension(l3_extension.L3AgentExtension):

    def consume_api(self, agent_api):
        agent_api.register_router(['distributed'], router.VswitchDvrRouter)
        agent_api.register_router(['ha', 'distributed'],
                                  router.VswitchDvrRouter)

    def initialize(self, connection, driver_type):
        register_opts(cfg.CONF)

    def add_router(self, context, data):
        pass

    def update_router(self, context, data):
        pass

    def delete_router(self, context, data):
        pass

    def ha_state_change(self, context, data):
        pass

    def update_network(self, context, data):
        pass

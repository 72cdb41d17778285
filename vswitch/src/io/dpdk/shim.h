/* The static-inline parts of DPDK that bindgen cannot bind (burst rx/tx,
 * mbuf helpers, the per-lcore errno), as plain functions. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

uint16_t vs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t vs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
/* Data pointer and length of a single-segment mbuf (NULL for a chained one). */
const uint8_t *vs_mbuf_data(const struct rte_mbuf *m, uint16_t *len);
/* A new mbuf from `mp` holding a copy of `data`; NULL if none is free or it does not fit. */
struct rte_mbuf *vs_mbuf_from(struct rte_mempool *mp, const uint8_t *data, uint16_t len);
void vs_mbuf_free(struct rte_mbuf *m);
int vs_errno(void);
/* An rte_eth_conf with defaults (no RSS, no offloads). */
void vs_eth_conf_default(struct rte_eth_conf *conf);

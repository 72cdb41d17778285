/* The static-inline parts of DPDK that bindgen cannot bind (burst rx/tx,
 * mbuf helpers, the per-lcore errno), as plain functions. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

int vs_errno(void);
/* An rte_eth_conf with defaults (no RSS, no offloads). */
void vs_eth_conf_default(struct rte_eth_conf *conf);
/* Receives up to `n` frames from (port, queue) and copies each into dst[i]
 * (room for `cap` bytes each), setting lens[i] (0: a chained or too long
 * frame, not copied); frees the mbufs in bulk. Returns how many arrived. */
uint16_t vs_rx_copy_burst(uint16_t port, uint16_t queue, uint8_t *const *dst, uint16_t cap,
                          uint16_t *lens, uint16_t n);
/* Copies `n` frames into mbufs of `mp` (allocated in bulk) and sends them
 * on (port, queue); frees what the driver did not take. Returns how many
 * were sent; *no_mbuf counts frames that got no mbuf. */
uint16_t vs_tx_copy_burst(uint16_t port, uint16_t queue, struct rte_mempool *mp,
                          const uint8_t *const *frames, const uint16_t *lens, uint16_t n,
                          uint16_t *no_mbuf);

#include "shim.h"
#include <string.h>

uint16_t vs_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t vs_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_tx_burst(port, queue, pkts, n);
}

const uint8_t *vs_mbuf_data(const struct rte_mbuf *m, uint16_t *len)
{
    if (m->nb_segs != 1) {
        *len = 0;
        return NULL;
    }
    *len = rte_pktmbuf_data_len(m);
    return rte_pktmbuf_mtod(m, const uint8_t *);
}

struct rte_mbuf *vs_mbuf_from(struct rte_mempool *mp, const uint8_t *data, uint16_t len)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
    if (m == NULL)
        return NULL;
    char *dst = rte_pktmbuf_append(m, len);
    if (dst == NULL) {
        rte_pktmbuf_free(m);
        return NULL;
    }
    memcpy(dst, data, len);
    return m;
}

void vs_mbuf_free(struct rte_mbuf *m)
{
    rte_pktmbuf_free(m);
}

int vs_errno(void)
{
    return rte_errno;
}

void vs_eth_conf_default(struct rte_eth_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
}

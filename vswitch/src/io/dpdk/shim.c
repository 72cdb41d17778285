#include "shim.h"
#include <string.h>

int vs_errno(void)
{
    return rte_errno;
}

void vs_eth_conf_default(struct rte_eth_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
}

uint16_t vs_rx_copy_burst(uint16_t port, uint16_t queue, uint8_t *const *dst, uint16_t cap,
                          uint16_t *lens, uint16_t n)
{
    struct rte_mbuf *pkts[64];
    if (n > 64)
        n = 64;
    uint16_t got = rte_eth_rx_burst(port, queue, pkts, n);
    for (uint16_t i = 0; i < got; i++) {
        struct rte_mbuf *m = pkts[i];
        uint16_t len = rte_pktmbuf_data_len(m);
        if (m->nb_segs != 1 || len > cap) {
            lens[i] = 0;
            continue;
        }
        memcpy(dst[i], rte_pktmbuf_mtod(m, const uint8_t *), len);
        lens[i] = len;
    }
    if (got > 0)
        rte_pktmbuf_free_bulk(pkts, got);
    return got;
}

uint16_t vs_tx_copy_burst(uint16_t port, uint16_t queue, struct rte_mempool *mp,
                          const uint8_t *const *frames, const uint16_t *lens, uint16_t n,
                          uint16_t *no_mbuf)
{
    struct rte_mbuf *pkts[64];
    if (n > 64)
        n = 64;
    *no_mbuf = 0;
    if (n == 0)
        return 0;
    uint16_t have = n;
    if (rte_pktmbuf_alloc_bulk(mp, pkts, n) != 0) {
        /* Not enough for all: as many as there are, one by one. */
        have = 0;
        while (have < n) {
            struct rte_mbuf *m = rte_pktmbuf_alloc(mp);
            if (m == NULL)
                break;
            pkts[have++] = m;
        }
    }
    uint16_t ready = 0;
    for (uint16_t i = 0; i < have; i++) {
        char *d = rte_pktmbuf_append(pkts[i], lens[i]);
        if (d == NULL) {
            rte_pktmbuf_free(pkts[i]);
            continue;
        }
        memcpy(d, frames[i], lens[i]);
        pkts[ready++] = pkts[i];
    }
    *no_mbuf = n - ready;
    uint16_t sent = rte_eth_tx_burst(port, queue, pkts, ready);
    if (sent < ready)
        rte_pktmbuf_free_bulk(pkts + sent, ready - sent);
    return sent;
}

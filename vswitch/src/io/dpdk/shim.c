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

uint64_t vs_eth_conf_rss(struct rte_eth_conf *conf, const struct rte_eth_dev_info *info,
                         uint16_t nb_rx, const uint8_t *key, uint8_t key_len, uint8_t *key_buf)
{
    uint64_t hf = (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP |
                   RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_OTHER) &
                  info->flow_type_rss_offloads;
    if (nb_rx < 2 || hf == 0)
        return 0;
    uint8_t len = info->hash_key_size ? info->hash_key_size : key_len;
    if (len > 64)
        len = 64;
    memset(key_buf, 0, 64);
    memcpy(key_buf, key, key_len < len ? key_len : len);
    conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf->rx_adv_conf.rss_conf.rss_key = key_buf;
    conf->rx_adv_conf.rss_conf.rss_key_len = len;
    conf->rx_adv_conf.rss_conf.rss_hf = hf;
    return hf;
}

uint16_t vs_rx_burst_frames(uint16_t port, uint16_t queue, struct vs_rx_frame *out, uint16_t n,
                            uint16_t *chained)
{
    struct rte_mbuf *pkts[64];
    if (n > 64)
        n = 64;
    *chained = 0;
    uint16_t got = rte_eth_rx_burst(port, queue, pkts, n);
    uint16_t k = 0;
    for (uint16_t i = 0; i < got; i++) {
        struct rte_mbuf *m = pkts[i];
        if (m->nb_segs != 1) {
            rte_pktmbuf_free(m);
            (*chained)++;
            continue;
        }
        out[k].mbuf = m;
        out[k].buf = (uint8_t *)m->buf_addr;
        out[k].buf_len = m->buf_len;
        out[k].data_off = m->data_off;
        out[k].data_len = m->data_len;
        k++;
    }
    return k;
}

void vs_mbuf_free(struct rte_mbuf *m)
{
    rte_pktmbuf_free(m);
}

uint16_t vs_tx_burst_frames(uint16_t port, uint16_t queue, struct rte_mempool *mp,
                            struct rte_mbuf **mbufs, const uint8_t *const *frames,
                            const uint16_t *offs, const uint16_t *lens, uint16_t n,
                            uint64_t *sent_bytes, uint16_t *no_mbuf)
{
    struct rte_mbuf *pkts[64];
    uint16_t plen[64];
    if (n > 64)
        n = 64;
    *no_mbuf = 0;
    *sent_bytes = 0;
    uint16_t ready = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = mbufs[i];
        if (m != NULL) {
            m->data_off = offs[i];
            m->data_len = lens[i];
            m->pkt_len = lens[i];
            m->ol_flags &= RTE_MBUF_F_EXTERNAL; /* no offload asked of the driver */
        } else {
            m = rte_pktmbuf_alloc(mp);
            if (m == NULL) {
                (*no_mbuf)++;
                continue;
            }
            char *d = rte_pktmbuf_append(m, lens[i]);
            if (d == NULL) {
                rte_pktmbuf_free(m);
                (*no_mbuf)++;
                continue;
            }
            memcpy(d, frames[i], lens[i]);
        }
        plen[ready] = lens[i];
        pkts[ready++] = m;
    }
    uint16_t sent = ready ? rte_eth_tx_burst(port, queue, pkts, ready) : 0;
    for (uint16_t i = 0; i < sent; i++)
        *sent_bytes += plen[i];
    if (sent < ready)
        rte_pktmbuf_free_bulk(pkts + sent, ready - sent);
    return sent;
}

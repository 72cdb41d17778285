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
/* Asks for RSS over `nb_rx` queues with `key` (key_len bytes; a device
 * taking a longer key gets it padded with zeros, which IPv4 hashing does
 * not reach): IPv4 addresses, and ports for TCP and UDP, as far as the
 * device hashes them. The key is copied into `key_buf` (64 bytes), which
 * must live until the device is configured. Returns the hash types
 * asked for (0: one queue, or the device hashes nothing; conf unchanged). */
uint64_t vs_eth_conf_rss(struct rte_eth_conf *conf, const struct rte_eth_dev_info *info,
                         uint16_t nb_rx, const uint8_t *key, uint8_t key_len, uint8_t *key_buf);
/* A frame received in its mbuf, for processing in place. */
struct vs_rx_frame {
    struct rte_mbuf *mbuf;
    uint8_t *buf;      /* the mbuf's data buffer */
    uint16_t buf_len;  /* its size */
    uint16_t data_off; /* where the frame starts in it */
    uint16_t data_len; /* the frame's length */
};
/* Receives up to `n` frames from (port, queue) and describes each in
 * out[]; chained (multi-segment) frames are freed and counted in
 * *chained, not described. Returns how many were described. */
uint16_t vs_rx_burst_frames(uint16_t port, uint16_t queue, struct vs_rx_frame *out, uint16_t n,
                            uint16_t *chained);
/* Frees one mbuf (chain). */
void vs_mbuf_free(struct rte_mbuf *m);
/* Sends `n` frames on (port, queue). Frame i is either an mbuf of ours,
 * mbufs[i] != NULL, whose frame now starts at offs[i] and is lens[i]
 * bytes (sent as is, no copy), or bytes at frames[i] (mbufs[i] == NULL),
 * copied into an mbuf of `mp`. Frees what the driver did not take.
 * Returns how many were sent, their bytes in *sent_bytes; *no_mbuf
 * counts frames that got no mbuf. */
uint16_t vs_tx_burst_frames(uint16_t port, uint16_t queue, struct rte_mempool *mp,
                            struct rte_mbuf **mbufs, const uint8_t *const *frames,
                            const uint16_t *offs, const uint16_t *lens, uint16_t n,
                            uint64_t *sent_bytes, uint16_t *no_mbuf);

/*
 * The DPDK API surface palisade binds. bindgen reads this header; the shim
 * (shim.c) includes it too so both see exactly the same declarations.
 */
#ifndef PALISADE_DPDK_WRAPPER_H
#define PALISADE_DPDK_WRAPPER_H

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_bus_vdev.h>
#include <rte_prefetch.h>
#include <rte_version.h>

/*
 * Non-inline wrappers for DPDK's static-inline functions: Rust cannot call
 * a C inline function, so each one gets a real symbol here.
 */
uint16_t palisade_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t palisade_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

struct rte_mbuf *palisade_pktmbuf_alloc(struct rte_mempool *mp);
void palisade_pktmbuf_free(struct rte_mbuf *m);
int palisade_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count);
void palisade_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);

void *palisade_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t palisade_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t palisade_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t palisade_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint16_t palisade_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t palisade_pktmbuf_tailroom(const struct rte_mbuf *m);
char *palisade_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *palisade_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *palisade_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int palisade_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
struct rte_mempool *palisade_pktmbuf_pool(const struct rte_mbuf *m);

unsigned int palisade_lcore_id(void);
uint64_t palisade_get_tsc_cycles(void);
int palisade_errno(void);

unsigned int palisade_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
                                         unsigned int n, unsigned int *free_space);
unsigned int palisade_ring_dequeue_burst(struct rte_ring *r, void **objs,
                                         unsigned int n, unsigned int *available);
unsigned int palisade_ring_count(const struct rte_ring *r);

void palisade_prefetch0(const volatile void *p);

/*
 * 64-bit constants DPDK defines with function-like macros (RTE_BIT64),
 * which bindgen cannot evaluate; these it can.
 */
static const uint64_t PALISADE_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t PALISADE_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t PALISADE_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
static const uint32_t PALISADE_ETH_LINK_SPEED_UNKNOWN = RTE_ETH_SPEED_NUM_UNKNOWN;

#endif

/*
 * Out-of-line copies of DPDK's static-inline fast-path functions, compiled
 * with exactly the cflags of `pkg-config --cflags libdpdk` so that struct
 * layouts and inlined code match the installed DPDK. Each wrapper is a single
 * call; the compiler inlines the DPDK body into it.
 */
#include "wrapper.h"

uint16_t palisade_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t palisade_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                               struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *palisade_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void palisade_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

int palisade_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                                unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void palisade_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count)
{
	/* Exported (not inline) since DPDK 21.02; wrapped for one naming scheme. */
	rte_pktmbuf_free_bulk(mbufs, count);
}

void *palisade_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

uint16_t palisade_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t palisade_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t palisade_pktmbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

uint16_t palisade_pktmbuf_headroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_headroom(m);
}

uint16_t palisade_pktmbuf_tailroom(const struct rte_mbuf *m)
{
	return rte_pktmbuf_tailroom(m);
}

char *palisade_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_prepend(m, len);
}

char *palisade_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

char *palisade_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_adj(m, len);
}

int palisade_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

struct rte_mempool *palisade_pktmbuf_pool(const struct rte_mbuf *m)
{
	return m->pool;
}

unsigned int palisade_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t palisade_get_tsc_cycles(void)
{
	return rte_get_tsc_cycles();
}

int palisade_errno(void)
{
	return rte_errno;
}

unsigned int palisade_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
                                         unsigned int n, unsigned int *free_space)
{
	return rte_ring_enqueue_burst(r, objs, n, free_space);
}

unsigned int palisade_ring_dequeue_burst(struct rte_ring *r, void **objs,
                                         unsigned int n, unsigned int *available)
{
	return rte_ring_dequeue_burst(r, objs, n, available);
}

unsigned int palisade_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

void palisade_prefetch0(const volatile void *p)
{
	rte_prefetch0(p);
}

//! Mbufs, batches and rings against a real mempool: length operations,
//! ownership (every buffer comes back exactly once) and order.

mod common;

use palisade_dpdk::{Eal, Mbuf, MbufBatch, MbufError, Mempool, Ring, RingSync};

fn packet(pool: &Mempool<'_>, tag: u8, len: u16) -> Mbuf {
    let mut mbuf = pool.alloc().expect("pool has room");
    mbuf.append(len).unwrap().fill(tag);
    mbuf
}

#[test]
fn mbufs_batches_and_rings_keep_ownership_and_order() {
    if !common::can_run_dpdk("mbufs_batches_and_rings_keep_ownership_and_order") {
        return;
    }
    let eal = Eal::init(&common::eal_args("mbufring", &[])).unwrap();
    let pool = Mempool::new(&eal, "mbufring", 255, 0, 2176, None).unwrap();
    assert_eq!(pool.available(), 255);

    // Length operations, checked against DPDK's own accounting.
    let mut mbuf = pool.alloc().unwrap();
    assert!(mbuf.is_empty());
    assert_eq!(mbuf.headroom(), 128);
    assert_eq!(mbuf.tailroom(), 2048);
    mbuf.append(100).unwrap().copy_from_slice(&[7; 100]);
    assert_eq!(mbuf.data(), &[7; 100][..]);
    mbuf.prepend(14).unwrap().copy_from_slice(&[1; 14]);
    assert_eq!(mbuf.len(), 114);
    assert_eq!(mbuf.packet_len(), 114);
    assert_eq!(
        &mbuf.data()[..15],
        &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 7]
    );
    assert_eq!(mbuf.prepend(115).unwrap_err(), MbufError::NoHeadroom);
    assert_eq!(mbuf.append(2048).unwrap_err(), MbufError::NoTailroom);
    mbuf.adj(14).unwrap();
    mbuf.trim(50).unwrap();
    assert_eq!(mbuf.data(), &[7; 50][..]);
    assert_eq!(mbuf.adj(51).unwrap_err(), MbufError::TooShort);
    assert_eq!(mbuf.trim(51).unwrap_err(), MbufError::TooShort);
    mbuf.data_mut()[0] = 9;
    assert_eq!(mbuf.data()[0], 9);
    assert_eq!(mbuf.segment_count(), 1);
    mbuf.prefetch_data();
    assert_eq!(pool.in_use(), 1);
    // into_raw / from_raw hand ownership out and back without a free.
    let raw = mbuf.into_raw();
    assert_eq!(pool.in_use(), 1);
    // SAFETY: `raw` came from into_raw just above and nothing else owns it.
    let mbuf = unsafe_from_raw(raw);
    drop(mbuf);
    assert_eq!(pool.in_use(), 0);

    // Batches: push until full, order, retain frees exactly the rejects.
    let mut batch: MbufBatch<8> = MbufBatch::new();
    for tag in 0..8 {
        batch.push(packet(&pool, tag, 60)).unwrap();
    }
    let overflow = batch.push(packet(&pool, 99, 60)).unwrap_err();
    assert_eq!(overflow.data()[0], 99);
    drop(overflow);
    assert_eq!(pool.in_use(), 8);
    batch.retain(|m| m.data()[0] % 2 == 0);
    let tags: Vec<u8> = batch.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(tags, [0, 2, 4, 6]);
    assert_eq!(pool.in_use(), 4);
    assert_eq!(batch.pop().unwrap().data()[0], 6);
    assert_eq!(pool.in_use(), 3);
    assert!(pool.alloc_into(&mut batch, 5));
    assert!(!pool.alloc_into(&mut batch, 1), "batch full");
    assert_eq!(pool.in_use(), 8);
    batch.clear();
    assert_eq!(pool.in_use(), 0);

    // Drain hands every packet over in order, exactly once.
    for tag in 20..26 {
        batch.push(packet(&pool, tag, 60)).unwrap();
    }
    let mut kept = Vec::new();
    batch.drain(|index, m| {
        assert_eq!(usize::from(m.data()[0]), 20 + index);
        if index % 2 == 0 {
            kept.push(m);
        }
    });
    assert!(batch.is_empty());
    assert_eq!(pool.in_use(), 3);
    drop(kept);
    assert_eq!(pool.in_use(), 0);

    // Rings: single producer/consumer handles cannot be cloned; what the
    // ring cannot take stays in the batch, in order; order is kept across.
    let (mut producer, mut consumer) =
        Ring::new(&eal, "mbufring", 5, RingSync::Single, RingSync::Single).unwrap();
    assert!(producer.try_clone().is_none() && consumer.try_clone().is_none());
    let mut batch: MbufBatch<8> = MbufBatch::new();
    for tag in 10..18 {
        batch.push(packet(&pool, tag, 64)).unwrap();
    }
    assert_eq!(producer.enqueue_burst(&mut batch), 5);
    assert_eq!(producer.len(), 5);
    let left: Vec<u8> = batch.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(left, [15, 16, 17]);
    let mut out: MbufBatch<4> = MbufBatch::new();
    assert_eq!(consumer.dequeue_burst(&mut out), 4);
    let got: Vec<u8> = out.as_slice().iter().map(|m| m.data()[0]).collect();
    assert_eq!(got, [10, 11, 12, 13]);
    drop(out);
    assert!(producer.enqueue(batch.pop().unwrap()).is_ok());
    assert_eq!(pool.in_use(), 2 + 2, "two in the batch, two in the ring");
    // Dropping both ends frees what the ring still holds.
    drop((producer, consumer));
    assert_eq!(pool.in_use(), 2);
    drop(batch);
    assert_eq!(pool.in_use(), 0);

    let (producer, consumer) =
        Ring::new(&eal, "mbufring-mpmc", 64, RingSync::Multi, RingSync::Multi).unwrap();
    assert!(producer.try_clone().is_some() && consumer.try_clone().is_some());
    drop((producer, consumer));

    // The mempool handle has no drop: its memory goes with the EAL.
    eal.cleanup().unwrap();
}

#[allow(unsafe_code)]
fn unsafe_from_raw(raw: std::ptr::NonNull<palisade_dpdk::sys::rte_mbuf>) -> Mbuf {
    // SAFETY: the caller passes a pointer fresh from `Mbuf::into_raw`.
    unsafe { Mbuf::from_raw(raw) }
}

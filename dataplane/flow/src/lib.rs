//! Per-core connection tracking for palisade's packet path.
//!
//! Step 6 of the packet path (DESIGN.md) asks "does this packet belong to a
//! connection the policy already admitted?"; step 7 records the answer for
//! the connections it admits. This crate is that memory, one instance per
//! worker core, sans-IO: no clock (every call takes `now`), no I/O, no
//! allocation after creation, no `unsafe`, and no panic on any input.
//!
//! - [`key`]: the symmetric, VPC-scoped [`FlowKey`] and its hash, which also
//!   picks the core that owns a flow.
//! - [`state`]: TCP / UDP / ICMP / other state machines and the per-ENI
//!   [`Timeouts`] of SEMANTICS.md.
//! - [`table`]: the [`FlowTable`] with its cached per-flow verdict area.
//! - [`fragment`]: the [`FragmentTable`] that lets later IP fragments follow
//!   the first one's verdict.
//! - [`pages`]: the tables' arrays in a mapping advised to huge pages.
//! - [`prefetch`]: the injected prefetch instruction ([`Prefetch`]) and its
//!   stand-in without `unsafe` ([`PlainLoad`]).
//! - `index` (private): the bucketed, bounded-probing slot index both
//!   tables share; its sizing constants are re-exported.

pub mod fragment;
mod index;
pub mod key;
pub mod pages;
pub mod prefetch;
pub mod state;
pub mod table;

pub use fragment::{
    DEFAULT_FRAGMENT_TIMEOUT, FirstFragmentVerdict, FragmentCounters, FragmentError, FragmentKey,
    FragmentTable, FragmentVerdict,
};
pub use index::{CapacityError, IndexLines, MAX_ENTRIES, PROBE_BUCKETS, SLOTS_PER_BUCKET, Tagged};
pub use key::{
    AddressFamily, DEFAULT_HASH_SEED, Direction, FlowKey, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_TCP, IPPROTO_UDP, KeyError, Side,
};
pub use prefetch::{PlainLoad, Prefetch};
pub use state::{FlowState, FlowUpdate, Seconds, TcpFlags, TimeoutError, Timeouts};
pub use table::{
    FlowEntry, FlowInit, FlowLines, FlowTable, FlowTableCounters, InsertError, Presence, Unscoped,
};

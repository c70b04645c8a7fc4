//! Step 6: the rewrite of a forwarded frame for its next hop — TTL or hop
//! limit (with an incremental checksum update), MACs (the router's as the
//! source, the next hop's as the destination), VLAN tag of the output —
//! and the port it leaves by.

use palisade_policy::{EniPath, PolicySnapshot, UplinkSpec};
use palisade_wire::{MacAddr, decrement_ip_ttl, rewrite_macs};

use super::{Endpoint, Pending};
use crate::buffer::PacketBuf;
use crate::verdict::DropReason;

/// Where a forwarded frame leaves: port, VLAN and next hop's MAC.
#[derive(Clone, Copy)]
pub(super) struct Output {
    port: u16,
    vlan: Option<u16>,
    mac: [u8; 6],
}

impl Output {
    #[inline(always)]
    pub(super) fn eni(path: &EniPath) -> Self {
        Self {
            port: path.port,
            vlan: path.vlan(),
            mac: path.mac,
        }
    }

    #[inline(always)]
    pub(super) fn uplink(uplink: &UplinkSpec) -> Self {
        Self {
            port: uplink.port,
            vlan: uplink.vlan,
            mac: uplink.mac,
        }
    }
}

/// Rewrites a frame for its next hop, `p.dst`: TTL, VLAN tag, MACs.
/// Returns the output port.
#[inline(always)]
pub(super) fn forward<P: PacketBuf>(
    pkt: &mut P,
    p: &Pending,
    snapshot: &PolicySnapshot,
) -> Result<u16, DropReason> {
    let output = match p.dst {
        Endpoint::Eni(e) => snapshot.eni_path(e).map(Output::eni),
        Endpoint::Uplink => snapshot.uplink().map(Output::uplink),
    };
    forward_through(pkt, output.ok_or(DropReason::NoRoute)?, p, snapshot)
}

/// The rewrite of a forwarded frame (TTL or hop limit, MACs, VLAN tag)
/// for `output`, which the established lane resolves from the flow;
/// returns the output port.
#[inline(always)]
pub(super) fn forward_through<P: PacketBuf>(
    pkt: &mut P,
    output: Output,
    p: &Pending,
    snapshot: &PolicySnapshot,
) -> Result<u16, DropReason> {
    let frame = pkt.data_mut();
    decrement_ip_ttl(frame, usize::from(p.l3_offset), p.ipv6)
        .map_err(|_| DropReason::TtlExpired)?;
    // Before the tag changes, through the same view of the frame: `retag`
    // moves the addresses along with the rest of the Ethernet header.
    rewrite_macs(frame, MacAddr(output.mac), MacAddr(snapshot.router_mac()))
        .map_err(|_| DropReason::Malformed)?;
    retag(pkt, p.vlan, output.vlan)?;
    Ok(output.port)
}

const TPID_8021Q: [u8; 2] = [0x81, 0x00];

/// Gives the frame the output VLAN tag (or none), keeping the priority bits
/// of an existing tag. Inlined for the common case, a frame that keeps its
/// tag (or stays untagged).
#[inline(always)]
fn retag<P: PacketBuf>(pkt: &mut P, from: Option<u16>, to: Option<u16>) -> Result<(), DropReason> {
    if from == to {
        return Ok(());
    }
    change_tag(pkt, from, to)
}

/// [`retag`] for a frame whose tag changes.
fn change_tag<P: PacketBuf>(
    pkt: &mut P,
    from: Option<u16>,
    to: Option<u16>,
) -> Result<(), DropReason> {
    match (from, to) {
        (None, None) => Ok(()),
        (Some(_), Some(vid)) => {
            let data = pkt.data_mut();
            let tci = u16::from_be_bytes([data[14], data[15]]);
            let tci = (tci & 0xf000) | (vid & 0x0fff);
            data[14..16].copy_from_slice(&tci.to_be_bytes());
            Ok(())
        }
        (Some(_), None) => {
            pkt.data_mut().copy_within(0..12, 4);
            if pkt.adj(4) {
                Ok(())
            } else {
                Err(DropReason::Malformed)
            }
        }
        (None, Some(vid)) => {
            if !pkt.prepend(4) {
                return Err(DropReason::NoHeadroom);
            }
            let data = pkt.data_mut();
            data.copy_within(4..16, 0);
            data[12..14].copy_from_slice(&TPID_8021Q);
            data[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
            Ok(())
        }
    }
}

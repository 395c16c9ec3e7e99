//! Connection slots shared by the RTMP and HTTP listeners: a cap on all connections, a cap per
//! address (an IPv6 /64 counts as one address, IPv4-mapped IPv6 as IPv4), and slots held back
//! for privileged addresses (the dashboard CIDR), so that one address, or many outside the
//! dashboard CIDR, cannot take every slot.

use crate::security::ip_filter::address_block;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps of one listener family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotLimits {
    /// Most connections open at once.
    pub total: usize,
    /// Most connections open at once from one address (IPv6: one /64).
    pub per_address: usize,
    /// Slots of `total` only privileged addresses may take.
    pub reserved: usize,
}

/// Why a connection gets no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every slot is taken.
    #[error("{0} connections open")]
    Full(usize),
    /// The slots left are held back for privileged addresses.
    #[error("the last {0} slots are kept for the dashboard CIDR")]
    Reserved(usize),
    /// The address holds as many connections as one address may.
    #[error("{0} connections open from this address")]
    AddressFull(usize),
}

/// The slots of a listener family; [`Slots::take`] hands out a [`Slot`] that frees itself.
#[derive(Debug)]
pub struct Slots {
    limits: SlotLimits,
    state: Mutex<State>,
}

/// The connections open now; the map holds only addresses with a connection open, so it is
/// never larger than the total cap.
#[derive(Debug, Default)]
struct State {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One connection's slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    block: IpAddr,
}

impl Slots {
    /// Slots under `limits`.
    pub fn new(limits: SlotLimits) -> Arc<Self> {
        Arc::new(Slots { limits, state: Mutex::default() })
    }

    /// A slot for a connection from `ip`; `privileged` addresses may take the reserved slots.
    pub fn take(self: &Arc<Self>, ip: IpAddr, privileged: bool) -> Result<Slot, Refusal> {
        let SlotLimits { total, per_address, reserved } = self.limits;
        let block = address_block(ip);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.open >= total {
            return Err(Refusal::Full(total));
        }
        if !privileged && state.open >= total.saturating_sub(reserved) {
            return Err(Refusal::Reserved(reserved));
        }
        let held = state.by_address.get(&block).copied().unwrap_or(0);
        if held >= per_address {
            return Err(Refusal::AddressFull(per_address));
        }
        state.by_address.insert(block, held.saturating_add(1));
        state.open += 1;
        Ok(Slot { slots: self.clone(), block })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).open
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock().unwrap_or_else(|e| e.into_inner());
        state.open = state.open.saturating_sub(1);
        if let Some(held) = state.by_address.get_mut(&self.block) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                state.by_address.remove(&self.block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_address_takes_at_most_its_share() {
        let slots = Slots::new(SlotLimits { total: 10, per_address: 3, reserved: 0 });
        let held: Vec<Slot> = (0..3).map(|_| slots.take(ip("192.0.2.1"), false).unwrap()).collect();
        assert_eq!(slots.take(ip("192.0.2.1"), false).unwrap_err(), Refusal::AddressFull(3));
        assert_eq!(slots.take(ip("::ffff:192.0.2.1"), true).unwrap_err(), Refusal::AddressFull(3), "mapped is IPv4");
        let other = slots.take(ip("192.0.2.2"), false).unwrap();
        drop(held);
        assert_eq!(slots.open(), 1);
        assert!(slots.take(ip("192.0.2.1"), false).is_ok());
        drop(other);
        assert!(slots.state.lock().unwrap().by_address.is_empty(), "free addresses are forgotten");
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let slots = Slots::new(SlotLimits { total: 10, per_address: 2, reserved: 0 });
        let _a = slots.take(ip("2001:db8:1:2::1"), false).unwrap();
        let _b = slots.take(ip("2001:db8:1:2:ffff::9"), false).unwrap();
        assert_eq!(slots.take(ip("2001:db8:1:2::77"), false).unwrap_err(), Refusal::AddressFull(2));
        assert!(slots.take(ip("2001:db8:1:3::1"), false).is_ok());
    }

    #[test]
    fn reserved_slots_go_only_to_privileged_addresses() {
        let slots = Slots::new(SlotLimits { total: 4, per_address: 10, reserved: 2 });
        let _outside: Vec<Slot> = (0..2).map(|_| slots.take(ip("203.0.113.9"), false).unwrap()).collect();
        assert_eq!(slots.take(ip("203.0.113.10"), false).unwrap_err(), Refusal::Reserved(2));
        let _inside: Vec<Slot> = (0..2).map(|_| slots.take(ip("10.0.0.1"), true).unwrap()).collect();
        assert_eq!(slots.take(ip("10.0.0.2"), true).unwrap_err(), Refusal::Full(4));
        let all_reserved = Slots::new(SlotLimits { total: 2, per_address: 10, reserved: 5 });
        assert_eq!(all_reserved.take(ip("203.0.113.9"), false).unwrap_err(), Refusal::Reserved(5));
        assert!(all_reserved.take(ip("10.0.0.1"), true).is_ok());
    }
}

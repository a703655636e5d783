//! Giving memory back after a crowd has left (issue 14, join storms).
//!
//! Why: a `Vec` or `HashMap` keeps its capacity when its entries go, so after 10,000
//! users have come and gone the registry would keep room for 10,000 for ever (about
//! 2 MiB: the member list, the nickname and lookalike indexes, the slot table), and the
//! allocator cannot return pages that such a table still holds, whatever `malloc_trim`
//! does. So when the hub decides a crowd has left (see `Slot`'s drop), it first shrinks
//! its own tables to what they hold, and only then asks the allocator to give memory
//! back (`crate::allocator`).

use std::collections::HashMap;
use std::hash::Hash;

use super::Registry;

/// Tables are left alone below this capacity: shrinking them is not worth the churn.
const SMALL: usize = 64;

/// True when a table of capacity `capacity` holding `len` entries is worth shrinking:
/// at most a quarter full (so that a crowd that comes back soon does not pay for a
/// regrow after every leave).
pub(super) fn too_roomy(len: usize, capacity: usize) -> bool {
    capacity > SMALL && len.saturating_mul(4) <= capacity
}

/// Shrinks `map` to twice what it holds when [`too_roomy`].
pub(super) fn shrink_map<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    if too_roomy(map.len(), map.capacity()) {
        map.shrink_to(map.len() * 2);
    }
}

/// Shrinks `v` to twice what it holds when [`too_roomy`].
pub(super) fn shrink_vec<T>(v: &mut Vec<T>) {
    if too_roomy(v.len(), v.capacity()) {
        v.shrink_to(v.len() * 2);
    }
}

impl Registry {
    /// Shrinks the registry's tables to what they hold. The slot table can only lose its
    /// free places at the end (a [`super::Slot`] holds its index), which is where they
    /// are once the crowd has gone: places are reused lowest-freed-last, and with every
    /// connection closed the table empties whole.
    pub(super) fn shrink(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let len = self.slots.len();
        self.free_slots.retain(|&i| i < len);
        shrink_vec(&mut self.slots);
        shrink_vec(&mut self.free_slots);
        shrink_vec(&mut self.members);
        shrink_map(&mut self.index);
        shrink_map(&mut self.skeletons);
        self.moderation.shrink();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tables_at_most_a_quarter_full_shrink() {
        assert!(!too_roomy(0, SMALL));
        assert!(too_roomy(0, 1024));
        assert!(too_roomy(256, 1024));
        assert!(!too_roomy(257, 1024));
        let mut m: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        m.retain(|&k, _| k < 10);
        shrink_map(&mut m);
        assert!(m.capacity() < 100, "capacity {}", m.capacity());
        let mut v: Vec<u32> = (0..10_000).collect();
        v.truncate(10);
        shrink_vec(&mut v);
        assert!(v.capacity() < 100);
    }
}

//! A bounded "seen" set: remembers the most recent ids, forgets the oldest.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// Remembers up to `capacity` ids; inserting past that forgets the oldest.
#[derive(Debug)]
pub struct Dedup<T> {
    order: VecDeque<T>,
    set: HashSet<T>,
    capacity: usize,
}

impl<T: Clone + Eq + Hash> Dedup<T> {
    /// An empty set holding at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Dedup {
            order: VecDeque::new(),
            set: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `id`; returns `false` if it was already seen.
    pub fn insert(&mut self, id: T) -> bool {
        if self.set.contains(&id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.set.insert(id);
        true
    }

    /// Forgets `id` (an item to be judged again when it comes back).
    pub fn remove(&mut self, id: &T) {
        if self.set.remove(id) {
            self.order.retain(|x| x != id);
        }
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &T) -> bool {
        self.set.contains(id)
    }

    /// Number of ids remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Dedup;

    #[test]
    fn duplicates_are_reported_and_capacity_is_kept() {
        let mut seen = Dedup::new(2);
        assert!(seen.insert(1));
        assert!(!seen.insert(1));
        assert!(seen.insert(2));
        assert!(seen.insert(3));
        assert_eq!(seen.len(), 2);
        assert!(seen.insert(1), "oldest was forgotten");
    }
}

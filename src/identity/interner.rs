//! One shared copy of each id that many cached callers repeat.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

/// Most distinct ids kept for sharing. Ids come from token-info answers for
/// this app, so they are bounded by its installations; past this many the
/// set starts over (ids in use stay alive in their callers).
const MAX_IDS: usize = 1 << 16;

/// Hands out a shared `Arc<str>` per distinct id.
#[derive(Default)]
pub(super) struct Interner(Mutex<HashSet<Arc<str>>>);

impl Interner {
    /// The shared copy of `id`.
    pub(super) fn intern(&self, id: &str) -> Arc<str> {
        let mut ids = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = ids.get(id) {
            return shared.clone();
        }
        if ids.len() >= MAX_IDS {
            ids.clear();
        }
        let shared: Arc<str> = id.into();
        ids.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_ids_share_one_copy() {
        let interner = Interner::default();
        let first = interner.intern("instance-1");
        let second = interner.intern("instance-1");
        assert!(Arc::ptr_eq(&first, &second));
        assert!(!Arc::ptr_eq(&first, &interner.intern("instance-2")));
    }
}

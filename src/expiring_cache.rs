//! Bounded caches of answers that expire, filled one call per key at a
//! time: the identity cache (token-info answers) and the two token caches
//! (app tokens, pass-through tokens) are all this.
//!
//! Built on quick_cache: a few bytes of bookkeeping per entry, sharded
//! locks, and single flight through placeholders. A failed fill is handed to
//! the callers that waited on it, then removed: a failure is never cached,
//! and a burst during an outage still makes one call.

use std::{future::Future, hash::Hash, time::Duration};

use quick_cache::{sync::Cache, DefaultHashBuilder, Equivalent, Lifecycle, UnitWeighter};

use prometheus_client::metrics::counter::Counter;

use crate::metrics::{CacheEvents, Metrics};

/// One cached answer.
#[derive(Clone)]
enum Slot<V, E> {
    /// Usable until `until_ms`, on the cache's own clock.
    Fresh { value: V, until_ms: u64 },
    /// The fill failed; only ever seen by the callers that waited on it.
    Failed(E),
}

/// Counts evictions in the cache's metric.
#[derive(Clone)]
struct CountEvictions(Counter);

impl<K, V, E> Lifecycle<K, Slot<V, E>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: K, _slot: Slot<V, E>) {
        self.0.inc();
    }
}

/// A bounded cache whose entries expire, counted in the metrics as `name`
/// (hits, misses, evictions).
pub struct ExpiringCache<K, V, E> {
    cache: Cache<K, Slot<V, E>, UnitWeighter, DefaultHashBuilder, CountEvictions>,
    name: &'static str,
    events: CacheEvents,
}

impl<K, V, E> std::fmt::Debug for ExpiringCache<K, V, E>
where
    K: Eq + Hash + Clone,
    V: Clone,
    E: Clone,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpiringCache")
            .field("name", &self.name)
            .field("entries", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl<K, V, E> ExpiringCache<K, V, E>
where
    K: Eq + Hash + Clone,
    V: Clone,
    E: Clone,
{
    /// A cache of up to `capacity` entries.
    pub fn new(capacity: u64, name: &'static str, metrics: &Metrics) -> Self {
        let capacity = capacity.max(1);
        let events = metrics.cache_events(name);
        Self {
            cache: Cache::with(
                usize::try_from(capacity).unwrap_or(usize::MAX),
                capacity,
                UnitWeighter,
                DefaultHashBuilder::default(),
                CountEvictions(events.eviction.clone()),
            ),
            name,
            events,
        }
    }

    /// Lifetimes are minutes long: the coarse clock is precise enough, and
    /// it is read on every lookup.
    fn now_ms(&self) -> u64 {
        crate::clock::monotonic_millis()
    }

    /// The fresh answer for `key`, if the cache holds one (counted as a hit).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        match self.cache.get(key)? {
            Slot::Fresh { value, until_ms } if until_ms > self.now_ms() => {
                self.events.hit.inc();
                Some(value)
            }
            _ => None,
        }
    }

    /// The answer for `key`: cached if fresh, otherwise from the future
    /// `fill` makes, which gives the answer and how long it stays fresh.
    /// Callers asking for the same key meanwhile wait for that one fill, and
    /// get its error too if it fails.
    ///
    /// Warm, this is a hit and nothing more. The miss is boxed: inline, the
    /// fill's future (a call to Wix) would make every caller's future
    /// several KiB larger.
    pub async fn get_or_fill<Q, F, Fut>(&self, key: &Q, fill: F) -> Result<V, E>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Duration), E>>,
    {
        match self.get(key) {
            Some(value) => Ok(value),
            None => Box::pin(self.fill(key, fill)).await,
        }
    }

    async fn fill<Q, F, Fut>(&self, key: &Q, fill: F) -> Result<V, E>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Duration), E>>,
    {
        // A stale answer goes first, or the placeholder below would find it;
        // so does a failure left by a fill that ended before this caller
        // came (between its insertion for the waiters and its removal), so
        // that only callers that waited on a failed fill ever see it.
        let now_ms = self.now_ms();
        self.cache.remove_if(key, |slot| match slot {
            Slot::Fresh { until_ms, .. } => *until_ms <= now_ms,
            Slot::Failed(_) => true,
        });
        let guard = match self.cache.get_value_or_guard_async(key).await {
            Ok(Slot::Fresh { value, .. }) => {
                self.events.hit.inc();
                return Ok(value);
            }
            Ok(Slot::Failed(error)) => {
                self.events.miss.inc();
                return Err(error);
            }
            Err(guard) => guard,
        };
        self.events.miss.inc();
        match fill().await {
            Ok((value, fresh_for)) => {
                let until_ms = self.now_ms().saturating_add(fresh_for.as_millis() as u64);
                let _ = guard.insert(Slot::Fresh {
                    value: value.clone(),
                    until_ms,
                });
                Ok(value)
            }
            Err(error) => {
                // The waiters take the failure from the placeholder; the
                // cache must not keep it.
                let _ = guard.insert(Slot::Failed(error.clone()));
                self.cache
                    .remove_if(key, |slot| matches!(slot, Slot::Failed(_)));
                Err(error)
            }
        }
    }

    /// Forgets the answer for `key` if `stale` says it is the stale one.
    pub fn remove_if<Q>(&self, key: &Q, stale: impl FnOnce(&V) -> bool)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.cache.remove_if(key, |slot| match slot {
            Slot::Fresh { value, .. } => stale(value),
            Slot::Failed(_) => false,
        });
    }

    /// How many answers are cached.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no answer is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use super::*;

    type Cache = ExpiringCache<String, u32, &'static str>;

    fn cache() -> Arc<Cache> {
        Arc::new(ExpiringCache::new(10, "test", &Metrics::new()))
    }

    /// The cache's (hits, misses) so far.
    fn counted(cache: &Cache) -> (u64, u64) {
        (cache.events.hit.get(), cache.events.miss.get())
    }

    /// Ten callers at once for `key`; returns how many fills ran and what
    /// each caller got.
    async fn burst(
        cache: &Arc<Cache>,
        key: &'static str,
        answer: Result<u32, &'static str>,
        fresh_for: Duration,
    ) -> (usize, Vec<Result<u32, &'static str>>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let callers = (0..10).map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fill(key, || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        answer.map(|value| (value, fresh_for))
                    })
                    .await
            })
        });
        let mut fills = Vec::new();
        for caller in callers.collect::<Vec<_>>() {
            fills.push(caller.await.unwrap());
        }
        (calls.load(Ordering::SeqCst), fills)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_makes_one_fill_and_its_answer_is_kept() {
        let cache = cache();
        let (calls, fills) = burst(&cache, "k", Ok(7), Duration::from_secs(60)).await;
        assert_eq!(calls, 1);
        assert!(fills.iter().all(|f| *f == Ok(7)));
        assert_eq!(counted(&cache), (9, 1), "one filled, nine waited");
        assert_eq!(cache.get("k"), Some(7));
        cache.remove_if("k", |value| *value == 8);
        assert_eq!(cache.get("k"), Some(7), "not the stale one: kept");
        cache.remove_if("k", |value| *value == 7);
        assert_eq!(cache.get("k"), None);
    }

    #[tokio::test]
    async fn every_answer_pushed_out_by_a_full_cache_is_counted() {
        let cache = cache();
        for key in 0..50 {
            let value = cache
                .get_or_fill(&key.to_string(), || async move {
                    Ok::<_, &'static str>((key, Duration::from_secs(60)))
                })
                .await;
            assert_eq!(value, Ok(key));
        }
        let kept = cache.len() as u64;
        assert!(kept <= 10, "bounded: {kept}");
        assert_eq!(cache.events.eviction.get(), 50 - kept);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_reaches_every_waiter_and_is_never_kept() {
        let cache = cache();
        let (calls, fills) = burst(&cache, "k", Err("down"), Duration::from_secs(60)).await;
        assert_eq!(calls, 1);
        assert!(fills.iter().all(|f| *f == Err("down")));
        assert_eq!(counted(&cache), (0, 10), "a wait on a failure is a miss");
        assert_eq!(cache.get("k"), None);
        assert!(cache.is_empty());
        let (calls, _) = burst(&cache, "k", Ok(1), Duration::from_secs(60)).await;
        assert_eq!(calls, 1, "the next caller asks again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_answer_is_filled_again() {
        let cache = cache();
        let (calls, _) = burst(&cache, "k", Ok(1), Duration::ZERO).await;
        assert_eq!(calls, 1);
        assert_eq!(
            cache.get("k"),
            None,
            "a zero lifetime is for the waiters only"
        );
        let (calls, _) = burst(&cache, "k", Ok(2), Duration::from_millis(100)).await;
        assert_eq!(calls, 1);
        assert_eq!(cache.get("k"), Some(2));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(cache.get("k"), None);
        let before = counted(&cache);
        let (calls, fills) = burst(&cache, "k", Ok(3), Duration::from_secs(60)).await;
        assert_eq!(calls, 1);
        assert!(
            fills.iter().all(|f| *f == Ok(3)),
            "nobody is handed the expired 2"
        );
        let after = counted(&cache);
        assert_eq!((after.0 - before.0, after.1 - before.1), (9, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_left_in_the_cache_is_never_handed_to_a_later_caller() {
        let cache = cache();
        // As between a failed fill's hand-over to its waiters and its removal.
        cache.cache.insert("k".to_owned(), Slot::Failed("down"));
        let (calls, fills) = burst(&cache, "k", Ok(1), Duration::from_secs(60)).await;
        assert_eq!(calls, 1);
        assert!(fills.iter().all(|f| *f == Ok(1)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fill_whose_caller_goes_away_is_taken_over_by_a_waiter() {
        let cache = cache();
        let calls = Arc::new(AtomicUsize::new(0));
        // The first caller's fill says when it has started, then never ends.
        let (started, has_started) = tokio::sync::oneshot::channel();
        let first = {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fill("k", || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let _ = started.send(());
                        std::future::pending::<Result<(u32, Duration), &'static str>>().await
                    })
                    .await
            })
        };
        has_started.await.unwrap();
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let (cache, calls) = (cache.clone(), calls.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_fill("k", || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok((7, Duration::from_secs(60)))
                        })
                        .await
                })
            })
            .collect();
        // The waiters are parked on the first fill before it goes away.
        tokio::time::sleep(Duration::from_millis(20)).await;
        first.abort();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Ok(7));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "the abandoned fill and one more"
        );
    }
}

//! Work on all cores, results in input order: a large project has thousands
//! of files and nodes, each independent of the others.

use std::sync::Mutex;

/// `f` applied to every item, on up to 8 threads; the results in the order of
/// `items`. Starting a thread costs tens of microseconds: callers pass only
/// work that is worth it.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_owned(items.iter().collect(), f)
}

/// [`map`] for owned items: `f` takes each item by value.
///
/// Items are handed out in small batches to whichever thread is free, so a
/// thread that draws cheap items, or more of a busy machine's CPU, takes
/// more of the work instead of waiting for the slowest fixed share.
pub fn map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = thread_count();
    let len = items.len();
    if threads == 1 || len < 2 {
        return items.into_iter().map(f).collect();
    }
    // Enough batches per thread to even out, few enough that taking one is
    // rare next to the work in it.
    let batch = (len / (threads * 16)).clamp(1, 256);
    let queue = Mutex::new(items.into_iter().enumerate());
    let work = || {
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let taken: Vec<(usize, T)> = queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .by_ref()
                .take(batch)
                .collect();
            let Some(&(first, _)) = taken.first() else {
                return done;
            };
            done.push((first, taken.into_iter().map(|(_, item)| f(item)).collect()));
        }
    };
    let mut batches = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(len)).map(|_| scope.spawn(work)).collect();
        let mut batches = work();
        for helper in helpers {
            match helper.join() {
                Ok(done) => batches.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        batches
    });
    batches.sort_unstable_by_key(|(first, _)| *first);
    let mut results = Vec::with_capacity(len);
    for (_, part) in batches {
        results.extend(part);
    }
    results
}

/// `first` on another thread while `second` runs on this one; both results.
pub fn both<A: Send, B>(first: impl FnOnce() -> A + Send, second: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|scope| {
        let first = scope.spawn(first);
        let second = second();
        match first.join() {
            Ok(first) => (first, second),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Asked once: the standard library reads the cgroup files on every call.
fn thread_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_input() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = super::map(&items, |n| n * 2);
        assert_eq!(doubled, (0..1000).map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(super::map(&items[..3], |n| n + 1), vec![1, 2, 3]);
        let owned = super::map_owned(items.clone(), |n| n.to_string());
        assert_eq!(owned, items.iter().map(u32::to_string).collect::<Vec<_>>());
        assert_eq!(super::map_owned(vec![7], |n| n), vec![7]);
    }
}

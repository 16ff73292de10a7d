//! Bounded condition-variable waits.

use std::sync::{Condvar, MutexGuard};
use std::time::Instant;

/// Wait on `cv` while `blocked(state)` holds, until `deadline` (none: no
/// bound). Returns the guard and whether the wait ended at the deadline
/// with the state still blocked.
pub(crate) fn wait_while<'a, T>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, T>,
    deadline: Option<Instant>,
    mut blocked: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    while blocked(&mut guard) {
        guard = match deadline {
            None => cv.wait(guard).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return (guard, true);
                }
                cv.wait_timeout(guard, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
    }
    (guard, false)
}

//! The user names a run spreads its requests over: `USER` alone, or `USER-0` .. `USER-(N-1)`
//! cycled by every worker from its own offset, so that the requests in flight at one time
//! carry different names (as an appliance's many users would) rather than all being one
//! user's, the worst case for a per-user throttle.

/// The names of a run: `user` alone when `count` is at most 1, else `user-0` ..
/// `user-(count-1)`. Built once, before the run.
pub fn names(user: &str, count: usize) -> Vec<String> {
    if count <= 1 {
        vec![user.to_string()]
    } else {
        (0..count).map(|i| format!("{user}-{i}")).collect()
    }
}

/// Where worker `worker` of `workers` starts in a list of `len` names: the workers' starts
/// spread evenly over the list, so each is `len / workers` names ahead of the previous one
/// (distinct starts while `workers <= len`).
pub fn start(len: usize, worker: usize, workers: usize) -> usize {
    if len == 0 || workers == 0 {
        return 0;
    }
    // In u128: `worker * len` cannot overflow; the result is below `len`.
    let at = (worker as u128 % workers as u128) * len as u128 / workers as u128;
    usize::try_from(at).unwrap_or(0) % len
}

/// A position in a list of `len` names that goes round and round.
#[derive(Debug, Clone)]
pub struct Cycle {
    next: usize,
    len: usize,
}

impl Cycle {
    /// The cycle of worker `worker` of `workers` over `len` names (see [`start`]).
    pub fn new(len: usize, worker: usize, workers: usize) -> Cycle {
        Cycle {
            next: start(len, worker, workers),
            len: len.max(1),
        }
    }

    /// The index of the name for the next request.
    pub fn next_index(&mut self) -> usize {
        let index = self.next;
        self.next = if index + 1 >= self.len { 0 } else { index + 1 };
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn one_user_is_the_name_itself() {
        assert_eq!(names("alice", 1), ["alice"]);
        assert_eq!(names("alice", 0), ["alice"]);
        let mut cycle = Cycle::new(1, 3, 4);
        assert!((0..10).all(|_| cycle.next_index() == 0));
    }

    #[test]
    fn many_users_are_numbered_from_zero() {
        let n = names("alice", 3);
        assert_eq!(n, ["alice-0", "alice-1", "alice-2"]);
        assert_eq!(
            names("bob", 1000).last().map(String::as_str),
            Some("bob-999")
        );
    }

    #[test]
    fn a_cycle_visits_every_name_once_per_lap_and_wraps() {
        let mut cycle = Cycle::new(5, 1, 2);
        let lap: Vec<usize> = (0..5).map(|_| cycle.next_index()).collect();
        assert_eq!(lap, [2, 3, 4, 0, 1]);
        assert_eq!(
            cycle.next_index(),
            2,
            "the second lap starts where the first did"
        );
    }

    #[test]
    fn workers_start_at_distinct_evenly_spread_offsets() {
        assert_eq!(
            (0..4).map(|w| start(1000, w, 4)).collect::<Vec<_>>(),
            [0, 250, 500, 750]
        );
        // More workers than names: the starts repeat, but stay in range.
        assert!((0..64).all(|w| start(10, w, 64) < 10));
        assert_eq!(start(0, 3, 4), 0);
        assert_eq!(start(7, 3, 0), 0);
        // 64 login connections over 1000 names: all starts differ.
        let starts: HashSet<usize> = (0..64).map(|w| start(1000, w, 64)).collect();
        assert_eq!(starts.len(), 64);
    }

    #[test]
    fn workers_in_step_never_share_a_name() {
        // 64 connections each with one request at a time, advancing together: at every step
        // the 64 names in flight are different.
        let mut cycles: Vec<Cycle> = (0..64).map(|w| Cycle::new(1000, w, 64)).collect();
        for _ in 0..2500 {
            let step: HashSet<usize> = cycles.iter_mut().map(Cycle::next_index).collect();
            assert_eq!(step.len(), 64);
        }
        // 4 sockets each with a window of 16: the first 64 requests all differ.
        let mut cycles: Vec<Cycle> = (0..4).map(|w| Cycle::new(1000, w, 4)).collect();
        let first: HashSet<usize> = cycles
            .iter_mut()
            .flat_map(|c| (0..16).map(|_| c.next_index()).collect::<Vec<_>>())
            .collect();
        assert_eq!(first.len(), 64);
    }
}

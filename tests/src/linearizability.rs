//! A linearizability checker for client histories of ConfigMap operations (issue 17): the
//! Wing–Gong–Lowe search with memoization over (linearized set, model state), split per key
//! (linearizability is compositional), against a register model whose state is
//! `Option<(value, resourceVersion)>`.
//!
//! An operation whose outcome is unknown (a timeout, a broken connection, a 5xx that may or may
//! not have been applied) is treated as Jepsen does: it returns at +infinity with any result, so
//! it may take effect at any point after its invocation, or never.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// POST of a new object with `value`.
    Create {
        /// The value written (unique per write, so a read names the write it saw).
        value: String,
    },
    /// PUT with `metadata.resourceVersion` as a precondition.
    Update {
        /// The value written.
        value: String,
        /// The resourceVersion the client expects the object to have.
        precondition: u64,
    },
    /// DELETE without preconditions.
    Delete,
    /// GET of the one object.
    Get,
}

/// What the server answered, when the answer is definite.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// 201 for a create: the new object's resourceVersion.
    Created {
        /// resourceVersion of the new object.
        rv: u64,
    },
    /// 200 for an update: the object's new resourceVersion.
    Updated {
        /// resourceVersion after the update.
        rv: u64,
    },
    /// 200 for a delete.
    Deleted,
    /// 200 for a get.
    Found {
        /// The value read.
        value: String,
        /// The resourceVersion read.
        rv: u64,
    },
    /// 404: the object does not exist.
    NotFound,
    /// 409: the object exists (create) or has another resourceVersion (update).
    Conflict,
    /// No definite answer (timeout, connection error, 5xx): may or may not have taken effect.
    Unknown,
}

/// One operation of a history. Times are in any monotonic unit (the tests use nanoseconds
/// since the start of the run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// Which client issued it (for reports only).
    pub client: usize,
    /// The object (ConfigMap name) it is on.
    pub key: String,
    /// What was asked.
    pub call: Call,
    /// What was answered (ignored when `returned_at` is `None`).
    pub result: Outcome,
    /// When the request was sent.
    pub invoked_at: u64,
    /// When the answer arrived; `None` when the outcome is unknown.
    pub returned_at: Option<u64>,
}

impl Op {
    /// Whether the outcome is unknown (no return time, or no definite answer).
    pub fn is_unknown(&self) -> bool {
        self.returned_at.is_none() || self.result == Outcome::Unknown
    }

    /// The return time, +infinity for an unknown outcome.
    fn return_time(&self) -> u64 {
        if self.is_unknown() {
            u64::MAX
        } else {
            self.returned_at.unwrap_or(u64::MAX)
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let returned = if self.is_unknown() {
            "?".to_string()
        } else {
            self.return_time().to_string()
        };
        write!(
            f,
            "[{}..{}] client {} {} {:?} -> {}",
            self.invoked_at,
            returned,
            self.client,
            self.key,
            self.call,
            if self.is_unknown() {
                "unknown".to_string()
            } else {
                format!("{:?}", self.result)
            }
        )
    }
}

/// A history that no linearization explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The object whose history is not linearizable.
    pub key: String,
    /// The operation the search could not place (the one that returned while every order of
    /// the operations before it had failed), at the deepest point the search reached.
    pub stuck: Op,
    /// A short window of the key's operations around `stuck`, by invocation time.
    pub window: Vec<Op>,
    /// How many of the key's operations the longest linearizable prefix held.
    pub linearized: usize,
    /// How many operations the key has.
    pub total: usize,
    /// The search gave up after [`SEARCH_BUDGET`] states: the history is neither proven nor
    /// refuted (reported rather than hanging the test).
    pub exhausted: bool,
}

/// How many (linearized set, state) pairs one key's search may explore.
pub const SEARCH_BUDGET: usize = 4_000_000;

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.exhausted {
            "search budget exhausted"
        } else {
            "not linearizable"
        };
        writeln!(
            f,
            "key {}: {verdict} (longest prefix {} of {} ops); cannot place: {}",
            self.key, self.linearized, self.total, self.stuck
        )?;
        for op in &self.window {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// The register's state: absent, or a value with its resourceVersion (`None` when the object
/// was written by an operation whose answer was lost, until a read tells the resourceVersion).
type Register = Option<(String, Option<u64>)>;

/// Every state `op` can lead to from `state`; empty when `op`'s answer is impossible there.
fn step(state: &Register, op: &Op) -> Vec<Register> {
    let rv_matches = |rv: &Option<u64>, want: u64| rv.is_none_or(|rv| rv == want);
    if op.is_unknown() {
        // The effect the call would have had: an unknown operation that had none is simply
        // never linearized (the search does not need to place it).
        let mut next = Vec::new();
        match (&op.call, state) {
            (Call::Create { value }, None) => next.push(Some((value.clone(), None))),
            (
                Call::Update {
                    value,
                    precondition,
                },
                Some((_, rv)),
            ) if rv_matches(rv, *precondition) => {
                next.push(Some((value.clone(), None)));
            }
            (Call::Delete, Some(_)) => next.push(None),
            _ => {}
        }
        return next;
    }
    let next = match (&op.call, &op.result, state) {
        (Call::Create { value }, Outcome::Created { rv }, None) => Some((value.clone(), Some(*rv))),
        (Call::Create { .. }, Outcome::Conflict, Some(_)) => state.clone(),
        (
            Call::Update {
                value,
                precondition,
            },
            Outcome::Updated { rv },
            Some((_, old)),
        ) if rv_matches(old, *precondition) => Some((value.clone(), Some(*rv))),
        (Call::Update { precondition, .. }, Outcome::Conflict, Some((_, old)))
            if old.is_none_or(|old| old != *precondition) =>
        {
            state.clone()
        }
        (Call::Update { .. } | Call::Delete | Call::Get, Outcome::NotFound, None) => None,
        (Call::Delete, Outcome::Deleted, Some(_)) => None,
        (Call::Get, Outcome::Found { value, rv }, Some((have, old)))
            if have == value && rv_matches(old, *rv) =>
        {
            Some((value.clone(), Some(*rv)))
        }
        _ => return Vec::new(),
    };
    vec![next]
}

/// The set of states reachable by applying `op` in any of `states` (sorted, no duplicates:
/// the powerset construction that makes the nondeterministic model deterministic).
fn step_all(states: &[Register], op: &Op) -> Vec<Register> {
    let mut next: Vec<Register> = states.iter().flat_map(|s| step(s, op)).collect();
    next.sort();
    next.dedup();
    next
}

/// Checks every key's history separately; the first key that is not linearizable (boxed: a
/// report is large and rare).
pub fn check(history: &[Op]) -> Result<(), Box<Violation>> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for op in history {
        // A read whose answer was lost tells nothing and changes nothing.
        if op.is_unknown() && op.call == Call::Get {
            continue;
        }
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    for (key, mut ops) in by_key {
        settle_observed_writes(&mut ops);
        check_key(key, &ops)?;
    }
    Ok(())
}

/// An unknown create or update whose (unique) value a read returned did take effect, with the
/// resourceVersion that read saw, before that read returned: it becomes a definite operation
/// ending at the first such return. This is exact, and it keeps the search small: an
/// operation pending until +infinity can be placed anywhere after its invocation.
fn settle_observed_writes(ops: &mut [Op]) {
    let mut first_seen: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for op in ops.iter().filter(|op| !op.is_unknown()) {
        if let (Outcome::Found { value, rv }, Some(returned)) = (&op.result, op.returned_at) {
            let seen = first_seen.entry(value.clone()).or_insert((returned, *rv));
            if returned < seen.0 {
                *seen = (returned, *rv);
            }
        }
    }
    for op in ops.iter_mut().filter(|op| op.is_unknown()) {
        let (value, created) = match &op.call {
            Call::Create { value } => (value, true),
            Call::Update { value, .. } => (value, false),
            Call::Delete | Call::Get => continue,
        };
        let Some(&(returned, rv)) = first_seen.get(value) else {
            continue;
        };
        op.result = if created {
            Outcome::Created { rv }
        } else {
            Outcome::Updated { rv }
        };
        op.returned_at = Some(returned.max(op.invoked_at));
    }
}

/// A fixed-size set of operation indexes.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The WGL search over one key's operations: a doubly linked list of call and return entries
/// in time order; linearizing an operation lifts its two entries out, backtracking puts them
/// back. A (linearized set, states) pair already explored is not explored again.
fn check_key(key: &str, ops: &[Op]) -> Result<(), Box<Violation>> {
    let n = ops.len();
    if n == 0 {
        return Ok(());
    }
    // Entries 1..=2n: (time, is_return, op); 0 is the head and 2n+1 the tail sentinel. At equal
    // times calls come first: touching intervals count as concurrent.
    let mut order: Vec<(u64, bool, usize)> = ops
        .iter()
        .enumerate()
        .flat_map(|(i, op)| [(op.invoked_at, false, i), (op.return_time(), true, i)])
        .collect();
    order.sort();
    let tail = 2 * n + 1;
    let mut op_of = vec![usize::MAX; 2 * n + 2];
    let mut is_return = vec![false; 2 * n + 2];
    let mut matching = vec![0usize; 2 * n + 2];
    let mut call_entry = vec![0usize; n];
    for (pos, &(_, ret, i)) in order.iter().enumerate() {
        let e = pos + 1;
        op_of[e] = i;
        is_return[e] = ret;
        if !ret {
            call_entry[i] = e;
        }
    }
    for e in 1..=2 * n {
        if is_return[e] {
            let c = call_entry[op_of[e]];
            matching[c] = e;
            matching[e] = c;
        }
    }
    let mut next: Vec<usize> = (1..=2 * n + 2).collect();
    let mut prev: Vec<usize> = (0..2 * n + 2).map(|e| e.saturating_sub(1)).collect();
    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize, m: usize| {
        next[prev[e]] = next[e];
        prev[next[e]] = prev[e];
        next[prev[m]] = next[m];
        prev[next[m]] = prev[m];
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize, m: usize| {
        next[prev[m]] = m;
        prev[next[m]] = m;
        next[prev[e]] = e;
        prev[next[e]] = e;
    };

    let mut cache: HashSet<(Bits, Vec<Register>)> = HashSet::new();
    let mut linearized = Bits::new(n);
    let mut states: Vec<Register> = vec![None];
    let mut stack: Vec<(usize, Vec<Register>)> = Vec::new();
    let mut deepest: (usize, usize) = (0, usize::MAX);
    // Unknown operations need not be placed: done when every definite one is.
    let mut definite_left = ops.iter().filter(|op| !op.is_unknown()).count();
    let mut entry = next[0];
    loop {
        if definite_left == 0 || next[0] == tail {
            return Ok(());
        }
        if !is_return[entry] {
            let i = op_of[entry];
            let after = step_all(&states, &ops[i]);
            if !after.is_empty() {
                let mut with = linearized.clone();
                with.set(i);
                if cache.len() >= SEARCH_BUDGET {
                    let at = if deepest.1 == usize::MAX {
                        (stack.len(), i)
                    } else {
                        deepest
                    };
                    let mut v = violation(key, ops, at);
                    v.exhausted = true;
                    return Err(Box::new(v));
                }
                if cache.insert((with.clone(), after.clone())) {
                    stack.push((entry, std::mem::replace(&mut states, after)));
                    linearized = with;
                    if !ops[i].is_unknown() {
                        definite_left -= 1;
                    }
                    lift(&mut next, &mut prev, entry, matching[entry]);
                    entry = next[0];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            if deepest.1 == usize::MAX || stack.len() > deepest.0 {
                deepest = (stack.len(), op_of[entry]);
            }
            let Some((call, before)) = stack.pop() else {
                return Err(Box::new(violation(key, ops, deepest)));
            };
            linearized.clear(op_of[call]);
            if !ops[op_of[call]].is_unknown() {
                definite_left += 1;
            }
            states = before;
            unlift(&mut next, &mut prev, call, matching[call]);
            entry = next[call];
        }
    }
}

/// The report for a key whose search failed: the operation that blocked the deepest prefix,
/// with the operations around it.
fn violation(key: &str, ops: &[Op], (linearized, stuck): (usize, usize)) -> Violation {
    let stuck_op = ops[stuck].clone();
    let mut by_invocation: Vec<&Op> = ops.iter().collect();
    by_invocation.sort_by_key(|op| (op.invoked_at, op.return_time()));
    // The operations concurrent with the stuck one, and the few that finished just before it.
    let mut window: Vec<Op> = by_invocation
        .iter()
        .filter(|op| {
            op.invoked_at <= stuck_op.return_time() && op.return_time() >= stuck_op.invoked_at
        })
        .map(|op| (*op).clone())
        .collect();
    let mut before: Vec<&Op> = by_invocation
        .iter()
        .copied()
        .filter(|op| op.return_time() < stuck_op.invoked_at)
        .collect();
    before.sort_by_key(|op| op.return_time());
    let earlier: Vec<Op> = before
        .iter()
        .rev()
        .take(4)
        .map(|op| (*op).clone())
        .collect();
    window.extend(earlier);
    window.sort_by_key(|op| (op.invoked_at, op.return_time()));
    window.truncate(16);
    Violation {
        key: key.to_string(),
        stuck: stuck_op,
        window,
        linearized,
        total: ops.len(),
        exhausted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, call: Call, result: Outcome, invoked: u64, returned: u64) -> Op {
        Op {
            client,
            key: "k".into(),
            call,
            result,
            invoked_at: invoked,
            returned_at: Some(returned),
        }
    }

    fn unknown(client: usize, call: Call, invoked: u64) -> Op {
        Op {
            client,
            key: "k".into(),
            call,
            result: Outcome::Unknown,
            invoked_at: invoked,
            returned_at: None,
        }
    }

    fn create(v: &str) -> Call {
        Call::Create { value: v.into() }
    }

    fn update(v: &str, precondition: u64) -> Call {
        Call::Update {
            value: v.into(),
            precondition,
        }
    }

    fn found(v: &str, rv: u64) -> Outcome {
        Outcome::Found {
            value: v.into(),
            rv,
        }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            op(0, Call::Get, Outcome::NotFound, 0, 1),
            op(0, create("a"), Outcome::Created { rv: 5 }, 2, 3),
            op(1, Call::Get, found("a", 5), 4, 5),
            op(1, update("b", 5), Outcome::Updated { rv: 7 }, 6, 7),
            op(0, update("c", 5), Outcome::Conflict, 8, 9),
            op(0, Call::Delete, Outcome::Deleted, 10, 11),
            op(1, Call::Get, Outcome::NotFound, 12, 13),
            op(1, Call::Delete, Outcome::NotFound, 14, 15),
            op(1, create("d"), Outcome::Created { rv: 9 }, 16, 17),
            op(0, create("e"), Outcome::Conflict, 18, 19),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn concurrent_reads_may_see_either_side_of_a_write() {
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(1, update("b", 5), Outcome::Updated { rv: 6 }, 2, 10),
            op(2, Call::Get, found("b", 6), 3, 4),
            op(3, Call::Get, found("a", 5), 3, 11),
        ];
        // The second read may have happened before the update, the first after it.
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn stale_read_after_an_acknowledged_write_is_caught() {
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(0, update("b", 5), Outcome::Updated { rv: 6 }, 2, 3),
            op(1, Call::Get, found("a", 5), 4, 5),
        ];
        let v = check(&h).unwrap_err();
        assert_eq!(v.key, "k");
        assert_eq!(v.stuck.call, Call::Get);
        assert!(v.window.iter().any(|op| op.call == update("b", 5)));
    }

    #[test]
    fn lost_update_is_caught() {
        // Two updates from the same resourceVersion both acknowledged: one must have failed.
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(1, update("b", 5), Outcome::Updated { rv: 6 }, 2, 4),
            op(2, update("c", 5), Outcome::Updated { rv: 7 }, 3, 5),
        ];
        assert!(check(&h).is_err());
        // An acknowledged delete that a later read does not see is lost too.
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(1, Call::Delete, Outcome::Deleted, 2, 3),
            op(2, Call::Get, found("a", 5), 4, 5),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn read_of_a_value_no_write_wrote_is_caught() {
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(1, Call::Get, found("z", 5), 2, 3),
        ];
        assert!(check(&h).is_err());
        // The right value with a resourceVersion no write returned.
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(1, Call::Get, found("a", 4), 2, 3),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn unknown_write_that_later_appears_is_fine() {
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            unknown(1, update("b", 5), 2),
            op(2, Call::Get, found("a", 5), 10, 11),
            op(2, Call::Get, found("b", 8), 12, 13),
            op(2, update("c", 8), Outcome::Updated { rv: 9 }, 14, 15),
        ];
        assert_eq!(check(&h), Ok(()));
        // An unknown create is read, and its resourceVersion learnt from the read.
        let h = vec![
            unknown(0, create("a"), 0),
            op(1, Call::Get, Outcome::NotFound, 1, 2),
            op(1, update("b", 3), Outcome::Updated { rv: 4 }, 5, 6),
            op(1, Call::Get, found("b", 4), 7, 8),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn unknown_write_that_never_appears_is_fine() {
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            unknown(1, update("b", 5), 2),
            unknown(1, Call::Delete, 3),
            op(2, Call::Get, found("a", 5), 10, 11),
            op(2, update("c", 5), Outcome::Updated { rv: 9 }, 12, 13),
            unknown(0, Call::Get, 14),
        ];
        assert_eq!(check(&h), Ok(()));
    }

    #[test]
    fn unknown_write_cannot_take_effect_before_it_was_sent() {
        let h = vec![
            op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1),
            op(1, Call::Get, found("b", 6), 2, 3),
            unknown(2, update("b", 5), 4),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn keys_are_checked_separately() {
        let mut other = op(0, Call::Get, found("a", 5), 0, 1);
        other.key = "other".into();
        let h = vec![op(0, create("a"), Outcome::Created { rv: 5 }, 0, 1), other];
        let v = check(&h).unwrap_err();
        assert_eq!(v.key, "other");
    }

    /// A small deterministic generator (xorshift) so the cross-check needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Whether some order of `ops` respecting real time explains every answer: tries every
    /// permutation and every choice of which unknown operations took effect, on a plain
    /// register written independently of `step`.
    fn brute_force(ops: &[Op]) -> bool {
        let ops: Vec<&Op> = ops
            .iter()
            .filter(|op| !(op.is_unknown() && op.call == Call::Get))
            .collect();
        let n = ops.len();
        let unknowns: Vec<usize> = (0..n).filter(|&i| ops[i].is_unknown()).collect();
        let mut order: Vec<usize> = (0..n).collect();
        let mut found = false;
        permute(&mut order, 0, &mut |order| {
            if found {
                return;
            }
            for (a, &i) in order.iter().enumerate() {
                for &j in &order[a + 1..] {
                    // j runs after i in this order, so j must not have returned before i began.
                    if ops[j].return_time() < ops[i].invoked_at {
                        return;
                    }
                }
            }
            for mask in 0..(1u32 << unknowns.len()) {
                let applied = |i: usize| {
                    unknowns
                        .iter()
                        .position(|&u| u == i)
                        .is_some_and(|p| mask & (1 << p) != 0)
                };
                if replay(&ops, order, applied) {
                    found = true;
                    return;
                }
            }
        });
        found
    }

    fn replay(ops: &[&Op], order: &[usize], applied: impl Fn(usize) -> bool) -> bool {
        let mut reg: Option<(String, Option<u64>)> = None;
        for &i in order {
            let op = ops[i];
            if op.is_unknown() {
                if !applied(i) {
                    continue;
                }
                match &op.call {
                    Call::Create { value } => {
                        if reg.is_none() {
                            reg = Some((value.clone(), None));
                        }
                    }
                    Call::Update {
                        value,
                        precondition,
                    } => {
                        if let Some((_, rv)) = &reg
                            && (rv.is_none() || *rv == Some(*precondition))
                        {
                            reg = Some((value.clone(), None));
                        }
                    }
                    Call::Delete => reg = None,
                    Call::Get => {}
                }
                continue;
            }
            match (&op.call, &op.result) {
                (Call::Create { value }, Outcome::Created { rv }) => {
                    if reg.is_some() {
                        return false;
                    }
                    reg = Some((value.clone(), Some(*rv)));
                }
                (Call::Create { .. }, Outcome::Conflict) => {
                    if reg.is_none() {
                        return false;
                    }
                }
                (
                    Call::Update {
                        value,
                        precondition,
                    },
                    Outcome::Updated { rv },
                ) => match &reg {
                    Some((_, old)) if old.is_none() || *old == Some(*precondition) => {
                        reg = Some((value.clone(), Some(*rv)));
                    }
                    _ => return false,
                },
                (Call::Update { precondition, .. }, Outcome::Conflict) => match &reg {
                    Some((_, old)) if *old != Some(*precondition) => {}
                    _ => return false,
                },
                (Call::Delete, Outcome::Deleted) => {
                    if reg.is_none() {
                        return false;
                    }
                    reg = None;
                }
                (Call::Get, Outcome::Found { value, rv }) => match &reg {
                    Some((v, old)) if v == value && (old.is_none() || *old == Some(*rv)) => {
                        reg = Some((value.clone(), Some(*rv)));
                    }
                    _ => return false,
                },
                (_, Outcome::NotFound) => {
                    if reg.is_some() || matches!(op.call, Call::Create { .. }) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }

    fn permute(items: &mut Vec<usize>, k: usize, visit: &mut impl FnMut(&[usize])) {
        if k == items.len() {
            visit(items);
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permute(items, k + 1, visit);
            items.swap(k, i);
        }
    }

    /// A history from a real register run (each op takes effect at a random point inside its
    /// interval), then sometimes corrupted: a changed answer, an answer lost.
    fn random_history(rng: &mut Rng) -> Vec<Op> {
        let n = 1 + rng.below(7) as usize;
        let mut ops = Vec::new();
        let mut points = Vec::new();
        for i in 0..n {
            let invoked = rng.below(20);
            let returned = invoked + rng.below(8);
            let point = invoked * 4 + rng.below((returned - invoked) * 4 + 1);
            let call = match rng.below(4) {
                0 => create(&format!("v{i}")),
                1 => update(&format!("v{i}"), 1 + rng.below(6)),
                2 => Call::Delete,
                _ => Call::Get,
            };
            ops.push(op(i, call, Outcome::Unknown, invoked, returned));
            points.push((point, i));
        }
        points.sort();
        let mut reg: Option<(String, u64)> = None;
        let mut rv = 0;
        for &(_, i) in &points {
            let result = match (&ops[i].call, &reg) {
                (Call::Create { value }, None) => {
                    rv += 1;
                    reg = Some((value.clone(), rv));
                    Outcome::Created { rv }
                }
                (Call::Create { .. }, Some(_)) => Outcome::Conflict,
                (
                    Call::Update {
                        value,
                        precondition,
                    },
                    Some((_, old)),
                ) => {
                    if old == precondition {
                        rv += 1;
                        reg = Some((value.clone(), rv));
                        Outcome::Updated { rv }
                    } else {
                        Outcome::Conflict
                    }
                }
                (Call::Delete, Some(_)) => {
                    rv += 1;
                    reg = None;
                    Outcome::Deleted
                }
                (Call::Get, Some((v, r))) => found(v, *r),
                (_, None) => Outcome::NotFound,
            };
            ops[i].result = result;
        }
        // Updates mostly aim at a resourceVersion that exists, or the run is all conflicts.
        for op in &mut ops {
            match rng.below(10) {
                0 | 1 => {
                    op.result = Outcome::Unknown;
                    op.returned_at = None;
                }
                2 => {
                    op.result = match rng.below(6) {
                        0 => Outcome::Created { rv: rng.below(6) },
                        1 => Outcome::Updated { rv: rng.below(6) },
                        2 => Outcome::Deleted,
                        3 => found(&format!("v{}", rng.below(n as u64 + 1)), rng.below(6)),
                        4 => Outcome::NotFound,
                        _ => Outcome::Conflict,
                    }
                }
                _ => {}
            }
        }
        ops
    }

    #[test]
    fn agrees_with_brute_force_on_random_small_histories() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut yes, mut no) = (0, 0);
        for round in 0..6000 {
            let h = random_history(&mut rng);
            let wgl = check(&h).is_ok();
            let brute = brute_force(&h);
            assert_eq!(
                wgl,
                brute,
                "round {round}: WGL says {wgl}, brute force {brute}:\n{}",
                h.iter().map(|op| format!("  {op}\n")).collect::<String>()
            );
            if wgl {
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(
            yes > 1000 && no > 1000,
            "both verdicts are exercised: {yes} linearizable, {no} not"
        );
    }

    #[test]
    fn long_concurrent_history_is_checked_quickly() {
        // 4 clients, 2,000 ops on one key, each overlapping its neighbours.
        let mut h = Vec::new();
        let mut rv = 1;
        h.push(op(0, create("v0"), Outcome::Created { rv }, 0, 1));
        for i in 1..2000u64 {
            let t = i * 10;
            let client = (i % 4) as usize;
            if i % 3 == 0 {
                h.push(op(
                    client,
                    Call::Get,
                    found(&format!("v{}", i - 1), rv),
                    t,
                    t + 25,
                ));
            } else {
                let next = rv + 1;
                h.push(op(
                    client,
                    update(&format!("v{i}"), rv),
                    Outcome::Updated { rv: next },
                    t,
                    t + 15,
                ));
                rv = next;
            }
        }
        // Reads name the latest write before them; fix the values to follow the chain.
        let mut last = ("v0".to_string(), 1);
        for op in &mut h {
            match (&op.call, &mut op.result) {
                (Call::Update { value, .. }, Outcome::Updated { rv }) => {
                    last = (value.clone(), *rv);
                }
                (Call::Get, Outcome::Found { value, rv }) => {
                    *value = last.0.clone();
                    *rv = last.1;
                }
                _ => {}
            }
        }
        let started = std::time::Instant::now();
        assert_eq!(check(&h), Ok(()));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}

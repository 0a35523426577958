//! A checker for one watch stream against the writes clients made (issue 17): revisions
//! strictly increase, every acknowledged write after the start revision and up to the last
//! revision seen is delivered exactly once, no event stands for a write nobody made, and each
//! event carries what its write wrote.
//!
//! A write whose answer was lost (timeout, broken connection, 5xx) has no known revision: an
//! event may stand for it (matched by name, kind and its unique value) or it may never appear.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What kind of change a write or an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// A create (`ADDED`).
    Added,
    /// An update (`MODIFIED`).
    Modified,
    /// A delete (`DELETED`).
    Deleted,
}

/// One event a watch stream delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type.
    pub change: Change,
    /// The object's name.
    pub name: String,
    /// The object's resourceVersion in the event.
    pub rv: u64,
    /// The object's value (for `DELETED`, the value it had when deleted).
    pub value: String,
}

/// One write a client made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// What kind of write.
    pub change: Change,
    /// The object's name.
    pub name: String,
    /// The value written (unique per write); `None` for a delete.
    pub value: Option<String>,
    /// The revision the server answered; `None` when the answer was lost.
    pub rv: Option<u64>,
    /// Whether the server acknowledged it (a definite success answer).
    pub acknowledged: bool,
}

/// One way a stream broke its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchViolation {
    /// An event's revision is not above the start revision or the event before it (a
    /// duplicate when equal, time travel when lower).
    NotIncreasing {
        /// The revision before (the start revision for the first event).
        previous: u64,
        /// The event that did not go up.
        event: Event,
    },
    /// An acknowledged write inside the stream's range that it never delivered.
    Missing {
        /// The write.
        write: Write,
    },
    /// An event that no write (acknowledged or unknown) accounts for.
    Phantom {
        /// The event.
        event: Event,
    },
    /// An event at an acknowledged write's revision that does not carry that write.
    Mismatch {
        /// The write at that revision.
        write: Write,
        /// What the stream delivered at that revision.
        event: Event,
    },
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotIncreasing { previous, event } => {
                write!(f, "revision does not increase after {previous}: {event:?}")
            }
            Self::Missing { write } => write!(f, "acknowledged write never delivered: {write:?}"),
            Self::Phantom { event } => write!(f, "event for a write nobody made: {event:?}"),
            Self::Mismatch { write, event } => {
                write!(f, "event {event:?} does not carry the write {write:?}")
            }
        }
    }
}

/// Checks the events one stream delivered after it started from revision `start` (a stream
/// restarted from its last revision counts as the same stream) against every write made on
/// the objects it covers. Every violation found, in stream order, then the missing writes.
pub fn check(start: u64, events: &[Event], writes: &[Write]) -> Result<(), Vec<WatchViolation>> {
    let mut violations = Vec::new();
    let by_rv: HashMap<u64, &Write> = writes
        .iter()
        .filter_map(|w| w.rv.map(|rv| (rv, w)))
        .collect();
    // Writes without a known revision, by (name, change, value); a delete has no value, so
    // deletes of one name are counted rather than told apart.
    let mut unplaced: HashMap<(&str, Change, Option<&str>), usize> = HashMap::new();
    for w in writes.iter().filter(|w| w.rv.is_none()) {
        let value = if w.change == Change::Deleted {
            None
        } else {
            w.value.as_deref()
        };
        *unplaced.entry((&w.name, w.change, value)).or_default() += 1;
    }
    let mut delivered: BTreeMap<u64, usize> = BTreeMap::new();
    let mut previous = start;
    for event in events {
        if event.rv <= previous {
            violations.push(WatchViolation::NotIncreasing {
                previous,
                event: event.clone(),
            });
        }
        previous = previous.max(event.rv);
        *delivered.entry(event.rv).or_default() += 1;
        if let Some(write) = by_rv.get(&event.rv) {
            let carries = write.name == event.name
                && write.change == event.change
                && (write.change == Change::Deleted
                    || write.value.as_deref() == Some(event.value.as_str()));
            if !carries {
                violations.push(WatchViolation::Mismatch {
                    write: (*write).clone(),
                    event: event.clone(),
                });
            }
            continue;
        }
        let value = if event.change == Change::Deleted {
            None
        } else {
            Some(event.value.as_str())
        };
        match unplaced.get_mut(&(event.name.as_str(), event.change, value)) {
            Some(left) if *left > 0 => *left -= 1,
            _ => violations.push(WatchViolation::Phantom {
                event: event.clone(),
            }),
        }
    }
    let last = previous;
    let mut missing: Vec<&Write> = writes
        .iter()
        .filter(|w| w.acknowledged)
        .filter(|w| w.rv.is_some_and(|rv| rv > start && rv <= last))
        .filter(|w| w.rv.is_some_and(|rv| !delivered.contains_key(&rv)))
        .collect();
    missing.sort_by_key(|w| w.rv);
    violations.extend(
        missing
            .into_iter()
            .map(|w| WatchViolation::Missing { write: w.clone() }),
    );
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(change: Change, name: &str, value: Option<&str>, rv: Option<u64>) -> Write {
        Write {
            change,
            name: name.into(),
            value: value.map(str::to_string),
            rv,
            acknowledged: rv.is_some(),
        }
    }

    fn event(change: Change, name: &str, rv: u64, value: &str) -> Event {
        Event {
            change,
            name: name.into(),
            rv,
            value: value.into(),
        }
    }

    fn writes() -> Vec<Write> {
        vec![
            write(Change::Added, "a", Some("a1"), Some(10)),
            write(Change::Added, "b", Some("b1"), Some(11)),
            write(Change::Modified, "a", Some("a2"), Some(12)),
            write(Change::Deleted, "b", None, Some(13)),
            write(Change::Modified, "a", Some("a3"), Some(14)),
        ]
    }

    fn all_events() -> Vec<Event> {
        vec![
            event(Change::Added, "a", 10, "a1"),
            event(Change::Added, "b", 11, "b1"),
            event(Change::Modified, "a", 12, "a2"),
            event(Change::Deleted, "b", 13, "b1"),
            event(Change::Modified, "a", 14, "a3"),
        ]
    }

    #[test]
    fn complete_stream_passes_from_any_start() {
        assert_eq!(check(9, &all_events(), &writes()), Ok(()));
        assert_eq!(check(11, &all_events()[2..], &writes()), Ok(()));
        // A stream that has seen only part of the range is not blamed for what comes after.
        assert_eq!(check(9, &all_events()[..3], &writes()), Ok(()));
        assert_eq!(check(14, &[], &writes()), Ok(()));
    }

    #[test]
    fn gap_is_caught() {
        let mut events = all_events();
        events.remove(2);
        let err = check(9, &events, &writes()).unwrap_err();
        assert_eq!(
            err,
            vec![WatchViolation::Missing {
                write: writes()[2].clone()
            }]
        );
    }

    #[test]
    fn duplicate_is_caught() {
        let mut events = all_events();
        events.insert(3, events[2].clone());
        let err = check(9, &events, &writes()).unwrap_err();
        assert!(
            matches!(&err[..], [WatchViolation::NotIncreasing { previous: 12, event }] if event.rv == 12),
            "{err:?}"
        );
    }

    #[test]
    fn time_travel_is_caught() {
        let mut events = all_events();
        events.swap(1, 2);
        let err = check(9, &events, &writes()).unwrap_err();
        assert!(
            matches!(&err[..], [WatchViolation::NotIncreasing { previous: 12, event }] if event.rv == 11),
            "{err:?}"
        );
        // An event at or below the start revision is time travel too.
        let err = check(10, &all_events(), &writes()).unwrap_err();
        assert!(matches!(
            &err[..],
            [WatchViolation::NotIncreasing { previous: 10, .. }]
        ));
    }

    #[test]
    fn phantom_is_caught() {
        let mut events = all_events();
        events.push(event(Change::Modified, "a", 20, "a9"));
        let err = check(9, &events, &writes()).unwrap_err();
        assert!(matches!(&err[..], [WatchViolation::Phantom { event }] if event.rv == 20));
    }

    #[test]
    fn mismatched_object_is_caught() {
        let mut events = all_events();
        events[2].value = "a1".into();
        let err = check(9, &events, &writes()).unwrap_err();
        assert!(matches!(&err[..], [WatchViolation::Mismatch { event, .. }] if event.rv == 12));
        let mut events = all_events();
        events[3].change = Change::Modified;
        let err = check(9, &events, &writes()).unwrap_err();
        assert!(matches!(&err[..], [WatchViolation::Mismatch { event, .. }] if event.rv == 13));
    }

    #[test]
    fn unknown_writes_may_appear_once_or_never() {
        let mut ws = writes();
        ws.push(write(Change::Modified, "a", Some("a4"), None));
        ws.push(write(Change::Deleted, "a", None, None));
        // Never delivered: fine.
        assert_eq!(check(9, &all_events(), &ws), Ok(()));
        // Delivered once: fine.
        let mut events = all_events();
        events.push(event(Change::Modified, "a", 15, "a4"));
        events.push(event(Change::Deleted, "a", 16, "a4"));
        assert_eq!(check(9, &events, &ws), Ok(()));
        // Delivered twice: the second is a phantom.
        events.push(event(Change::Modified, "a", 17, "a4"));
        let err = check(9, &events, &ws).unwrap_err();
        assert!(matches!(&err[..], [WatchViolation::Phantom { event }] if event.rv == 17));
    }
}

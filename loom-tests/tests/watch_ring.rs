//! loom model of the watch ring: one writer appending past capacity, two readers following it.
//! Every interleaving must give each reader a gap-free, ordered run of revisions, or `Expired`
//! exactly when the revision it needs has been evicted.
#![cfg(loom)]

use std::sync::Arc as StdArc;

use loom::sync::Arc;
use loom::thread;
use nautilus_core::resource::ResourceId;
use nautilus_core::store::{ObjectIndex, ObjectKey, StoredObject};
use nautilus_core::watch::{EventType, WatchEvent, WatchRing};

fn event(revision: u64) -> WatchEvent {
    WatchEvent {
        kind: EventType::Modified,
        key: ObjectKey::new(ResourceId::Pods, "default", "p"),
        object: StoredObject::whole(b"{}".to_vec(), revision),
        previous: None,
    }
}

/// Reads until it has seen revision `last` or is told it expired; returns what it saw.
fn follow(ring: &WatchRing, last: u64) -> (Vec<u64>, bool) {
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..6 {
        batch.clear();
        match ring.read_after(cursor, 8, &mut batch) {
            Ok(_) => {
                for e in &batch {
                    assert_eq!(
                        e.revision(),
                        cursor + 1,
                        "a reader must see revisions without gaps"
                    );
                    cursor = e.revision();
                    seen.push(cursor);
                }
                if cursor == last {
                    return (seen, false);
                }
            }
            Err(expired) => {
                assert_eq!(expired.requested, cursor);
                assert!(
                    expired.oldest > cursor,
                    "expired only when the next revision is gone"
                );
                return (seen, true);
            }
        }
        thread::yield_now();
    }
    (seen, false)
}

#[test]
fn one_writer_two_readers_wrap_around() {
    loom::model(|| {
        let ring = Arc::new(WatchRing::new(2));
        let writer = {
            let ring = ring.clone();
            thread::spawn(move || {
                for rev in 1..=3 {
                    ring.push(event(rev));
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                thread::spawn(move || follow(&ring, 3))
            })
            .collect();
        writer.join().unwrap();
        for reader in readers {
            let (seen, expired) = reader.join().unwrap();
            assert!(seen.windows(2).all(|w| w[1] == w[0] + 1));
            if expired {
                assert!(!seen.contains(&3));
            }
        }
        assert_eq!(ring.newest(), 3);
        assert_eq!(
            ring.oldest(),
            1,
            "capacity 2 after 3 pushes keeps revisions 2 and 3"
        );
    });
}

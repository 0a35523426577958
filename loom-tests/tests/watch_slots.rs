//! loom model of the open-watch slots: watches are taken on request threads and given back on
//! whichever thread drops the stream. In every interleaving no more than the budget is ever
//! held, a refused take changes nothing, and every slot comes back.
#![cfg(loom)]

use loom::thread;
use nautilus_core::watch::WatchSlots;

#[test]
fn slots_never_exceed_the_budget_and_all_come_back() {
    loom::model(|| {
        let slots = WatchSlots::new(2);
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let slots = slots.clone();
                thread::spawn(move || {
                    let slot = slots.take();
                    assert!(slots.open() <= 2, "more watches open than the budget");
                    let held = slot.is_ok();
                    drop(slot);
                    held
                })
            })
            .collect();
        let held = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&h| h)
            .count();
        assert!(held >= 2, "a slot was refused while one was free");
        assert_eq!(slots.open(), 0, "every slot came back");
    });
}

//! Connections refused for want of a slot are held open, unread, for a while before they are
//! closed. Closed at once, a flooding client reconnects at once: 5,000 silent connects from one
//! source came back 15,000 times a second, filled the kernel's accept queue, and another
//! source's connects waited behind them (or were dropped and retried a second later). Held, each
//! costs the flood one connect per hold period, and costs the proxy one file descriptor (the
//! socket is never read or registered), within a fixed number of them.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long a refused connection is held before it is closed.
pub(crate) const HOLD: Duration = Duration::from_secs(10);

/// The held connections, oldest first.
pub(crate) struct PenaltyBox {
    held: VecDeque<(Instant, std::net::TcpStream)>,
    max: usize,
}

impl PenaltyBox {
    /// A box for at most `max` connections (0: refused connections are closed at once).
    pub(crate) fn new(max: usize) -> Self {
        Self {
            held: VecDeque::new(),
            max,
        }
    }

    /// Holds `tcp` until [`HOLD`] after `now`; when the box is full, its oldest connection is
    /// closed to make room.
    pub(crate) fn hold(&mut self, now: Instant, tcp: std::net::TcpStream) {
        if self.max == 0 {
            return;
        }
        while self.held.len() >= self.max {
            self.held.pop_front();
        }
        self.held.push_back((now + HOLD, tcp));
    }

    /// Closes the connections whose time is up at `now`.
    pub(crate) fn release_due(&mut self, now: Instant) {
        while self.held.front().is_some_and(|(until, _)| *until <= now) {
            self.held.pop_front();
        }
    }

    /// When the next held connection is due to close.
    pub(crate) fn next_release(&self) -> Option<Instant> {
        self.held.front().map(|(until, _)| *until)
    }

    /// Connections held now.
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

/// How many refused connections the proxy may hold: a quarter of its file-descriptor limit
/// (after raising the soft limit to the hard one, as Go's runtime does), at most 4,096, so that
/// held connections never take the descriptors that serving needs.
pub(crate) fn capacity() -> usize {
    (raise_nofile() / 4).min(4096)
}

/// Raises the soft open-file limit to the hard limit; the soft limit in force after.
fn raise_nofile() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> std::net::TcpStream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn holds_until_due_and_closes_the_oldest_when_full() {
        let mut pen = PenaltyBox::new(2);
        let start = Instant::now();
        pen.hold(start, connection());
        pen.hold(start + Duration::from_secs(1), connection());
        assert_eq!(pen.next_release(), Some(start + HOLD));
        // Full: the oldest goes to make room.
        pen.hold(start + Duration::from_secs(2), connection());
        assert_eq!(pen.len(), 2);
        assert_eq!(
            pen.next_release(),
            Some(start + Duration::from_secs(1) + HOLD)
        );
        pen.release_due(start + Duration::from_secs(1) + HOLD);
        assert_eq!(pen.len(), 1);
        pen.release_due(start + Duration::from_secs(2) + HOLD);
        assert_eq!(pen.len(), 0);
        assert_eq!(pen.next_release(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_box_of_zero_holds_nothing() {
        let mut pen = PenaltyBox::new(0);
        pen.hold(Instant::now(), connection());
        assert_eq!(pen.len(), 0);
    }
}

//! Controllers that run inside core on the runtime's timers (`ApiServer::handle_timeout`): they
//! read and write through the same store paths as requests and do no I/O of their own.

pub(crate) mod event_ttl;
pub(crate) mod events;
pub(crate) mod node_lifecycle;

#[cfg(test)]
mod tests;

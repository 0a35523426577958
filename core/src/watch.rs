//! The watch log: a bounded ring of change events that writers append to without waiting.

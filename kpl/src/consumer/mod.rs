//! The consumer core.

//! producer (being built).

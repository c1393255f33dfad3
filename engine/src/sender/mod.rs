//! sender (being built).

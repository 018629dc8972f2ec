//! The streaming backup engine.

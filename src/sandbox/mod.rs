//! The Wix emulator.

//! Pieces the bench programs share: the fixed-response upstream, process
//! helpers, RSS and CPU readings. Everything talks to loopback only.

#![allow(dead_code)]

pub mod client;
pub mod fixed;
pub mod process;

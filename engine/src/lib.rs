//! kbench engine

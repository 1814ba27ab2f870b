//! baleen-init: PID 1 inside every baleen image.
fn main() {}

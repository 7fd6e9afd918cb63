//! `emporium`: the all-in-one binary and admin CLI.
fn main() {}

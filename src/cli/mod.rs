//! The command line: one module per subcommand, each a thin call into the operations the
//! console and the admin API use.

pub mod upstream;

//! One message through a config: the pipeline that runs the stages in order, fits their
//! actions and holds the output to the content rules, and the loader that builds it from
//! TOML. Uses every part below it; transports and the command line call it.

pub mod load;
pub mod pipeline;

pub use load::{load, load_with, parse};

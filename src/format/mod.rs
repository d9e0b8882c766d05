//! The file format: `state.json` as the Python skill wrote it, checked before anything runs,
//! and the text it holds made safe where it goes. Pure: bytes in, typed values or a message
//! naming the field out.

pub mod graph;
pub mod item_run;
pub mod refs;
pub mod schema;
pub mod text;
pub mod timefmt;
pub mod typos;
pub mod validate;

//! The toolbox: what the rest of the extension uses and that knows nothing about shops. Errors
//! with their SQLSTATEs, quoting, conversions between the core's values and PostgreSQL's,
//! settings changed for a piece of work, writing statements and rows to insert, the backend's
//! worker threads, and a slot that hands a value from one piece of code to another in the same
//! backend.

pub mod convert;
pub mod errors;
pub mod ident;
pub mod settings;
pub mod statement;
pub mod token_slot;
pub mod workers;

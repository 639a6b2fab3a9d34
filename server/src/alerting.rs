//! Rules and alerts: rule files read and checked ([`rulefile`]), the template language of
//! alert texts ([`template`]).

pub mod rulefile;
pub mod template;

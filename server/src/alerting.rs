//! Rules and alerts: rule files read and checked ([`rulefile`]), the template language of
//! alert texts ([`template`]), rules and their alert states ([`rule`]) and rule groups
//! evaluated in order ([`group`]).

pub mod group;
pub mod rule;
pub mod rulefile;
pub mod template;

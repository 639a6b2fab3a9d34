//! Rules and alerts: rule files read and checked ([`rulefile`]), the template language of
//! alert texts ([`template`]), rules and their alert states ([`rule`]), rule groups evaluated
//! in order ([`group`]), and the groups' tasks, reloads and durable alert states
//! ([`manager`]); alerts sent to Alertmanager ([`alertmanager`]); `/api/v1/rules` and `/api/v1/alerts` ([`api`]); `strata rules check` ([`check`]) and `strata rules test` ([`unittest`]).

pub mod alertmanager;
pub mod api;
pub mod check;
pub mod group;
pub mod manager;
pub mod rule;
pub mod rulefile;
pub mod template;
pub mod unittest;

//! Rules and alerts: rule files read and checked ([`rulefile`]), the template language of
//! alert texts ([`template`]), rules and their alert states ([`rule`]), rule groups evaluated
//! in order ([`group`]), and the groups' tasks, reloads and durable alert states
//! ([`manager`]); alerts sent to Alertmanager ([`alertmanager`]) or, without one, routed to Slack and webhooks
//! ([`route`], [`dispatch`]) unless silenced ([`silences`]); `/api/v1/rules` and `/api/v1/alerts` ([`api`]); `strata rules check` ([`check`]) and `strata rules test` ([`unittest`]).

pub mod alertmanager;
pub mod api;
pub mod check;
pub mod dispatch;
pub mod group;
pub mod manager;
pub mod route;
pub mod rule;
pub mod rulefile;
pub mod silences;
pub mod template;
pub mod time;
pub mod unittest;
pub mod worker;
